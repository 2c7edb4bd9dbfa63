// The config loader on arbitrary bytes, read as YAML and as JSON through
// load_config_string(), the entry point --config and SIGHUP use. The loader documents
// that it never throws for a bad config: every problem is a ConfigError. A config it
// accepts must also survive what the gateway then does with it (summary for --check,
// the redacted JSON of /admin/config) and hold the invariants the data path relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "config/loader.hpp"
#include "config/summary.hpp"
#include "fuzz_assert.hpp"

namespace {

using phlow::config::Config;
using phlow::config::Format;
using phlow::config::LoadResult;

// A fixed environment, so that ${VAR} and ${VAR:-default} expand the same every run.
std::optional<std::string> fake_env(const std::string& name) {
  if (name == "REDIS_URL") return "redis://:secret@127.0.0.1:6379/1";
  if (name == "PORT") return "8080";
  if (name == "EMPTY") return "";
  return std::nullopt;
}

void check_config(const Config& config) {
  for (const auto& route : config.routes) {
    FUZZ_ASSERT(route.upstream_index < config.upstreams.size());
    FUZZ_ASSERT(route.limits.size() <= 16);
    for (std::size_t index : route.limits) FUZZ_ASSERT(index < config.limits.size());
  }
  for (const auto& spec : config.limits) {
    FUZZ_ASSERT(phlow::limiter::validate(spec.limit).empty());
  }
  // --check prints this; /admin/config serves this, dumped without a UTF-8 handler.
  (void)phlow::config::summarize(config);
  (void)phlow::config::to_redacted_json(config).dump(2);
}

void load(std::string_view text, Format format) {
  const LoadResult result = phlow::config::load_config_string(text, format, "fuzz.cfg", fake_env);
  // Either a config and no errors, or errors and no config.
  FUZZ_ASSERT(result.ok() == result.errors.empty());
  for (const auto& error : result.errors) {
    FUZZ_ASSERT(error.file == "fuzz.cfg");
    FUZZ_ASSERT(error.line >= 0);
    FUZZ_ASSERT(!error.message.empty());
  }
  (void)phlow::config::format_errors(result.errors);
  if (result.ok()) check_config(*result.config);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  load(text, Format::yaml);
  load(text, Format::json);
  return 0;
}
