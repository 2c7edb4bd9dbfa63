// The `limits:` section: named limits, each a limiter::Limit plus its identifier key.

#include <limits>

#include "sections.hpp"

namespace phlow::config {
namespace {

// Which key of the limit's mapping a limiter::validate() message is about.
std::string_view field_of(std::string_view message, bool has_window_ms) {
  if (message.starts_with("burst")) return "burst";
  if (message.starts_with("cost")) return "cost";
  if (message.starts_with("limit name")) return "";
  if (message.starts_with("window")) {
    return has_window_ms ? "window_ms" : "window";
  }
  return "requests";
}

std::chrono::milliseconds read_window(ObjectReader& reader) {
  const bool has_window = reader.has("window");
  const bool has_window_ms = reader.has("window_ms");
  if (has_window && has_window_ms) {
    reader.diagnostics().error(reader.path().key("window_ms"),
                               "give either window or window_ms, not both");
  }
  if (has_window_ms) {
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    return std::chrono::milliseconds(reader.integer("window_ms", 0, 1, kMax));
  }
  if (!has_window) {
    reader.diagnostics().error(reader.path(),
                               "missing window (a duration such as 1m) or window_ms");
    return std::chrono::milliseconds(0);
  }
  return reader.duration("window", std::chrono::milliseconds(0));
}

IdentifierKey read_key(ObjectReader& reader) {
  constexpr std::string_view kExpected =
      "token_hash, agent_id, ip, api_key or header:NAME";
  auto text = reader.optional_string("key");
  if (!text) {
    if (!reader.has("key")) {
      reader.diagnostics().error(reader.path(), "missing key (" + std::string(kExpected) + ")");
    }
    return {};
  }
  if (auto key = parse_identifier_key(*text)) return *key;
  reader.diagnostics().error(reader.path().key("key"), "unknown identifier key \"" + *text +
                                                           "\" (expected " +
                                                           std::string(kExpected) + ")");
  return {};
}

limiter::Algorithm read_algorithm(ObjectReader& reader) {
  auto text = reader.optional_string("algorithm");
  if (!text) return limiter::Algorithm::sliding_log;
  if (auto algorithm = limiter::parse_algorithm(*text)) return *algorithm;
  reader.diagnostics().error(reader.path().key("algorithm"),
                             "unknown algorithm \"" + *text +
                                 "\" (expected sliding_log, sliding_window, token_bucket or concurrency)");
  return limiter::Algorithm::sliding_log;
}

// `cost` / `cost_from_response`: "header:NAME" into NAME, else an error naming the key.
std::string read_header_source(ObjectReader& reader, std::string_view key) {
  auto text = reader.optional_string(key);
  if (!text) return {};
  if (auto name = parse_header_source(*text)) return *name;
  reader.diagnostics().error(reader.path().key(key),
                             "expected header:NAME (the request or response header holding a "
                             "whole number of units), got \"" + *text + "\"");
  return {};
}

// Reads one limit. A limit with errors is still added, so that routes naming it are
// not also reported as referring to an undefined limit.
void read_limit(ObjectReader& reader, const std::string& name, std::vector<LimitSpec>& out) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  LimitSpec spec;
  spec.limit.name = name;
  const auto errors_before = reader.diagnostics().count();
  spec.limit.requests = reader.integer("requests", 0, 1, kMax);
  if (!reader.has("requests")) reader.diagnostics().error(reader.path(), "missing requests");
  spec.limit.window_ms = read_window(reader).count();
  spec.key = read_key(reader);
  spec.limit.algorithm = read_algorithm(reader);
  spec.limit.burst = reader.integer("burst", 0, 1, kMax);
  spec.limit.shadow = reader.boolean("shadow", false);
  spec.cost_header = read_header_source(reader, "cost");
  spec.response_cost_header = read_header_source(reader, "cost_from_response");
  spec.limit.weighted = !spec.cost_header.empty() || !spec.response_cost_header.empty();
  reader.finish();
  if (reader.diagnostics().count() == errors_before) {
    // The limiter's own checks (bounds, burst only for token_bucket): one source of truth.
    const std::string problem = limiter::validate(spec.limit);
    if (!problem.empty()) {
      auto field = field_of(problem, reader.has("window_ms"));
      if (field == "cost" && !reader.has("cost")) field = "cost_from_response";
      reader.diagnostics().error(field.empty() ? reader.path() : reader.path().key(field), problem);
    }
  }
  out.push_back(std::move(spec));
}

}  // namespace

std::vector<LimitSpec> default_limits() {
  using limiter::Algorithm;
  return {
      {{"auth", 60, 60'000, Algorithm::sliding_log, 0, false}, {IdentifierKind::token_hash, {}}},
      {{"role", 10, 60'000, Algorithm::sliding_log, 0, false}, {IdentifierKind::agent_id, {}}},
  };
}

void read_limits(ObjectReader& top, std::vector<LimitSpec>& out) {
  if (!top.has("limits")) {
    out = default_limits();
    return;
  }
  ObjectReader limits = top.object("limits");
  for (const auto& name : limits.keys()) {
    ObjectReader reader = limits.object(name);
    read_limit(reader, name, out);
  }
}

}  // namespace phlow::config
