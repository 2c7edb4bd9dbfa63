#pragma once
// The outcome of checking one request against all limits of its route.

#include <array>
#include <cstddef>
#include <cstdint>

#include "limiter/store_error.hpp"

namespace phlow::limiter {

// One check decides at most this many limits; the gateway's config enforces it.
inline constexpr std::size_t kMaxLimitsPerCheck = 16;

struct LimitResult {
  bool allowed = true;             // this limit alone would allow the request
  bool shadow = false;             // the limit is in shadow mode (never enforced)
  std::int64_t limit = 0;          // the quota the client sees (X-RateLimit-Limit)
  std::int64_t remaining = 0;      // requests still allowed now, after this one
  std::int64_t reset_ms = 0;       // Unix ms when usage is back to zero (allowed),
                                   // or when a request is allowed again (rejected)
  std::int64_t retry_after_ms = 0; // 0 when allowed
};

// Where a decision came from.
enum class DecisionSource : std::uint8_t {
  memory,          // the in-memory backend (configured, or as Redis fallback)
  redis,           // the Redis script
  failure_allow,   // Redis failed and on_failure is `allow`
  failure_deny,    // Redis failed and on_failure is `deny`
  custom,          // a user-supplied RateLimitBackend
  cache,           // a rejection Redis gave earlier, still in force (over-limit cache)
};

// What decides while Redis cannot (redis.on_failure): the in-memory fallback, or
// every request allowed, or every request denied.
enum class FailureMode : std::uint8_t { fallback, allow, deny };

inline constexpr int kNone = -1;

struct Decision {
  bool allowed = true;             // every enforced limit allowed the request
  DecisionSource source = DecisionSource::memory;
  StoreError store_failure = StoreError::none;  // why Redis did not decide (then the policy did)
  int rejected_by = kNone;         // enforced limit that rejected it (latest retry)
  int most_restrictive = kNone;    // limit whose headers the response carries
  std::int64_t now_ms = 0;         // the clock the decision was made with
  std::size_t count = 0;           // results[0..count) match the request's limits
  std::array<LimitResult, kMaxLimitsPerCheck> results{};

  // True when some shadow limit would have rejected the request.
  bool shadow_limited() const {
    for (std::size_t i = 0; i < count; ++i) {
      if (results[i].shadow && !results[i].allowed) return true;
    }
    return false;
  }
};

// Fills `allowed`, `rejected_by` and `most_restrictive` from `results`.
// Rejected-by is the enforced rejecting limit with the latest retry time; the
// most restrictive is that one, else the limit with the fewest remaining requests.
void summarize(Decision& decision);

}  // namespace phlow::limiter
