// phlow-gateway: command line (SPEC.md, "Command line").
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "config/loader.hpp"
#include "config/summary.hpp"
#include "gateway/build_info.hpp"
#include "gateway/server.hpp"
#include "gateway/snapshot.hpp"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  phlow-gateway --config FILE [--log-level LEVEL]    run (FILE is .yaml/.yml or .json)\n"
    "  phlow-gateway --config FILE --check                validate, print a summary\n"
    "  phlow-gateway --upstream URL [--listen ADDR:PORT]  zero-config mode\n"
    "  phlow-gateway --version | --help\n"
    "exit codes: 0 ok, 1 invalid configuration, 2 bad command line\n";

struct Options {
  std::string config;
  std::string upstream;
  std::string listen = "0.0.0.0:8080";
  std::optional<std::string> log_level;
  bool check = false;
  bool listen_given = false;
};

int bad_command_line(const std::string& why) {
  std::fprintf(stderr, "phlow-gateway: %s\n%s", why.c_str(), kUsage);
  return 2;
}

// Returns the exit code when the command line says to exit now.
std::optional<int> parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    if (arg == "--version") {
      const auto v = phlow::gateway::version();
      const auto commit = phlow::gateway::git_commit();
      const auto type = phlow::gateway::build_type();
      std::printf("phlow-gateway %.*s (commit %.*s, %.*s build)\n", static_cast<int>(v.size()),
                  v.data(), static_cast<int>(commit.size()), commit.data(),
                  static_cast<int>(type.size()), type.data());
      return 0;
    }
    if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (arg == "--check") {
      o.check = true;
      continue;
    }
    if (arg != "--config" && arg != "--upstream" && arg != "--listen" && arg != "--log-level") {
      return bad_command_line("unknown argument '" + arg + "'");
    }
    const std::optional<std::string> v = value();
    if (!v) return bad_command_line(arg + " needs a value");
    if (arg == "--config") o.config = *v;
    if (arg == "--upstream") o.upstream = *v;
    if (arg == "--listen") {
      o.listen = *v;
      o.listen_given = true;
    }
    if (arg == "--log-level") o.log_level = *v;
  }
  if (o.config.empty() == o.upstream.empty()) {
    return bad_command_line("give exactly one of --config FILE and --upstream URL");
  }
  if (o.check && o.config.empty()) return bad_command_line("--check needs --config FILE");
  if (o.listen_given && !o.config.empty()) {
    return bad_command_line("--listen goes with --upstream; with --config, set listen in the file");
  }
  return std::nullopt;
}

void setup_logging(const phlow::config::Config& config, const std::optional<std::string>& cli) {
  auto logger = spdlog::stderr_color_mt("phlow-gateway");
  spdlog::set_default_logger(logger);
  spdlog::set_level(cli ? spdlog::level::from_str(*cli)
                        : static_cast<spdlog::level::level_enum>(config.log_level));
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (auto code = parse(argc, argv, options)) return *code;
  if (options.log_level && spdlog::level::from_str(*options.log_level) == spdlog::level::off &&
      *options.log_level != "off") {
    return bad_command_line("--log-level must be trace, debug, info, warn, error, critical or off");
  }
  const auto loaded = options.config.empty()
                          ? phlow::config::zero_config(options.upstream, options.listen)
                          : phlow::config::load_config_file(options.config);
  if (!loaded.ok()) {
    std::fputs(phlow::config::format_errors(loaded.errors).c_str(), stderr);
    return 1;
  }
  if (options.check) {
    // What the running gateway loads beside the config (the listener's certificate and
    // key, the upstreams' TLS files, the JWT key files), so that --check before a
    // SIGHUP catches a bad file too.
    try {
      phlow::gateway::NameTable routes, limits;
      phlow::gateway::Snapshot snapshot(loaded.config, 0, routes, limits);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
    std::fputs(phlow::config::summarize(*loaded.config).c_str(), stdout);
    return 0;
  }
  setup_logging(*loaded.config, options.log_level);
  phlow::gateway::Server server(loaded.config, options.config);
  return server.run();
}
