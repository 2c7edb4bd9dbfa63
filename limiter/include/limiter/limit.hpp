#pragma once
// A named rate-limit policy: how many requests per window, decided by which algorithm.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace phlow::limiter {

enum class Algorithm : std::uint8_t {
  sliding_log = 0,     // exact: at most `requests` in any window-long interval
  sliding_window = 1,  // weighted previous + current fixed window, O(1) state
  token_bucket = 2,    // GCRA: rate requests/window, bursts of up to `burst`
  concurrency = 3,     // at most `requests` in flight; a slot's lease lasts `window`
};

// Returns the algorithm named `name` ("sliding_log", ...), or nullopt.
std::optional<Algorithm> parse_algorithm(std::string_view name);
std::string_view to_string(Algorithm algorithm);

struct Limit {
  std::string name;              // appears in Redis keys, headers and 429 bodies
  std::int64_t requests = 0;     // > 0
  std::int64_t window_ms = 0;    // > 0
  Algorithm algorithm = Algorithm::sliding_log;
  std::int64_t burst = 0;        // token_bucket only; 0 means `requests`
  bool shadow = false;           // evaluated and reported, never enforced
  // A request may weigh more than one unit (config `cost`, `cost_from_response`):
  // in Redis, its sliding_log then keeps the units of each entry (check.lua).
  bool weighted = false;

  std::int64_t effective_burst() const { return burst > 0 ? burst : requests; }
  // The number a client sees as X-RateLimit-Limit.
  std::int64_t quota() const {
    return algorithm == Algorithm::token_bucket ? effective_burst() : requests;
  }
};

// The part of `limit` one of `share` instances enforces while Redis is unreachable
// (redis.fallback_share): requests and burst divided by `share`, at least 1 each.
// The name is left empty: algorithms do not read it.
Limit share_of(const Limit& limit, std::uint32_t share);

// The most units one response can add to a limit (cost_from_response): `requests`,
// one window's budget, so that one answer blocks its key for about a window at most.
inline std::int64_t max_debit(const Limit& limit) { return limit.requests; }

// Returns an empty string when `limit` is usable, else what is wrong with it.
std::string validate(const Limit& limit);

}  // namespace phlow::limiter
