#include "limiter/limit.hpp"

#include <algorithm>
#include <string>

namespace phlow::limiter {

std::optional<Algorithm> parse_algorithm(std::string_view name) {
  if (name == "sliding_log") return Algorithm::sliding_log;
  if (name == "sliding_window") return Algorithm::sliding_window;
  if (name == "token_bucket") return Algorithm::token_bucket;
  if (name == "concurrency") return Algorithm::concurrency;
  return std::nullopt;
}

std::string_view to_string(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::sliding_log: return "sliding_log";
    case Algorithm::sliding_window: return "sliding_window";
    case Algorithm::token_bucket: return "token_bucket";
    case Algorithm::concurrency: return "concurrency";
  }
  return "unknown";
}

Limit share_of(const Limit& limit, std::uint32_t share) {
  Limit part;
  part.window_ms = limit.window_ms;
  part.algorithm = limit.algorithm;
  part.shadow = limit.shadow;
  part.weighted = limit.weighted;
  const std::int64_t n = std::max<std::int64_t>(share, 1);
  part.requests = std::max<std::int64_t>(limit.requests / n, 1);
  part.burst = limit.burst > 0 ? std::max<std::int64_t>(limit.burst / n, 1) : 0;
  return part;
}

std::string validate(const Limit& limit) {
  // Bounds keep every intermediate of the Lua arithmetic below 2^53, where Lua's
  // doubles are still exact integers.
  constexpr std::int64_t kMaxRequests = 1'000'000'000;
  constexpr std::int64_t kMaxWindowMs = 366LL * 24 * 3600 * 1000;
  if (limit.name.empty()) return "limit name must not be empty";
  if (limit.name.find(':') != std::string::npos) return "limit name must not contain ':'";
  if (limit.requests <= 0) return "requests must be a positive integer";
  if (limit.requests > kMaxRequests) return "requests must be at most 1000000000";
  if (limit.window_ms <= 0) return "window must be positive";
  if (limit.window_ms > kMaxWindowMs) return "window must be at most 366 days";
  if (limit.burst < 0) return "burst must not be negative";
  if (limit.burst > kMaxRequests) return "burst must be at most 1000000000";
  if (limit.burst > 0 && limit.algorithm != Algorithm::token_bucket) {
    return "burst applies to token_bucket only";
  }
  if (limit.algorithm == Algorithm::sliding_window &&
      limit.requests > (std::int64_t{1} << 53) / limit.window_ms) {
    return "requests x window_ms too large for sliding_window";
  }
  if (limit.algorithm == Algorithm::concurrency && limit.window_ms < 1000) {
    return "window must be at least 1s for concurrency (it is how long a slot's lease lasts)";
  }
  if (limit.weighted && limit.algorithm == Algorithm::concurrency) {
    return "cost does not apply to concurrency (a request takes one slot)";
  }
  // Room for what responses add past the limit (kWindowUnitsCap in algorithm.cpp).
  if (limit.weighted && limit.algorithm == Algorithm::sliding_window &&
      limit.requests > (std::int64_t{1} << 51) / limit.window_ms) {
    return "requests x window_ms too large for a sliding_window with a cost";
  }
  return {};
}

}  // namespace phlow::limiter
