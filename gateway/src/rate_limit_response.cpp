#include "gateway/rate_limit_response.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace phlow::gateway {
namespace {

// Whole seconds, rounded up; negative durations count as 0.
std::int64_t ceil_seconds(std::int64_t ms) {
  return ms <= 0 ? 0 : (ms + 999) / 1000;
}

// Retry-After and the body's retry_after: rounded up so a client that waits that long
// is allowed, and at least 1 because "0" would invite an immediate retry.
std::int64_t retry_after_seconds(std::int64_t retry_after_ms) {
  return std::max<std::int64_t>(1, ceil_seconds(retry_after_ms));
}

// An RFC 8941 sf-string. Limit names are validated as tokens, so the escaping is a
// safety net; bytes a sf-string cannot hold become '?' rather than break the field.
std::string sf_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c >= 0x20 && c <= 0x7E ? c : '?');
  }
  out.push_back('"');
  return out;
}

// dump() throws on invalid UTF-8 by default; a name never should, but a response body
// must not be the place an exception starts.
std::string dump(const nlohmann::ordered_json& json) {
  return json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

void for_each_rate_limit_header(const config::ResponseHeaders& families,
                                const limiter::Decision& decision, int index,
                                const std::string& limit_name, std::int64_t window_ms,
                                const HeaderSink& out) {
  // A route without limits has no most restrictive one (kNone): nothing to say.
  if (index < 0 || static_cast<std::size_t>(index) >= decision.count) return;
  const limiter::LimitResult& r = decision.results[static_cast<std::size_t>(index)];
  const bool rejected = !decision.allowed && !r.allowed && !r.shadow;
  const std::int64_t remaining = std::max<std::int64_t>(0, r.remaining);
  const std::int64_t retry = retry_after_seconds(r.retry_after_ms);
  if (families.x_ratelimit) {
    out("X-RateLimit-Limit", std::to_string(r.limit));
    out("X-RateLimit-Remaining", std::to_string(remaining));
    out("X-RateLimit-Reset", std::to_string(ceil_seconds(r.reset_ms)));
  }
  if (families.ietf) {
    const std::string name = sf_string(limit_name);
    const std::int64_t reset_in = rejected ? retry : ceil_seconds(r.reset_ms - decision.now_ms);
    // A concurrency limit (window_ms 0 here) is no quota per time window: no w.
    out("RateLimit-Policy", name + ";q=" + std::to_string(r.limit) +
                                (window_ms > 0 ? ";w=" + std::to_string(ceil_seconds(window_ms)) : ""));
    out("RateLimit", name + ";r=" + std::to_string(remaining) +
                                      ";t=" + std::to_string(reset_in));
  }
  // Retry-After is plain HTTP (RFC 9110), not part of either family: every 429 has it.
  if (rejected) out("Retry-After", std::to_string(retry));
}

void append_rate_limit_headers(const config::ResponseHeaders& families,
                               const limiter::Decision& decision, int index,
                               const std::string& limit_name, std::int64_t window_ms,
                               HeaderList& out) {
  for_each_rate_limit_header(families, decision, index, limit_name, window_ms,
                             [&out](std::string_view name, std::string_view value) {
                               out.emplace_back(name, value);
                             });
}

std::string rate_limited_body(const std::string& limit_name, std::int64_t retry_after_ms) {
  nlohmann::ordered_json body;
  body["error"] = "Rate limit exceeded";
  body["code"] = "RATE_LIMIT";
  body["limit"] = limit_name;
  body["retry_after"] = retry_after_seconds(retry_after_ms);
  return dump(body);
}

std::string error_body(std::string_view message, std::string_view code) {
  nlohmann::ordered_json body;
  body["error"] = message;
  body["code"] = code;
  return dump(body);
}

}  // namespace phlow::gateway
