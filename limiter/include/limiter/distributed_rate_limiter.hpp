#pragma once
// The seed's DistributedRateLimiter for C++ services: synchronous and thread-safe.
//
//   phlow::limiter::DistributedRateLimiter api(100, 60'000);   // REDIS_URL or memory
//   api.check_and_raise(client_ip);                            // throws RateLimitError

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "limiter/backend.hpp"
#include "limiter/error.hpp"
#include "limiter/fallback_backend.hpp"
#include "limiter/key_layout.hpp"
#include "limiter/limit.hpp"
#include "limiter/redis_health.hpp"
#include "limiter/redis_options.hpp"

namespace phlow::limiter {

struct LimiterOptions {
  std::string name = "default";                 // Redis key: <prefix><name>:<id>
  std::string key_prefix = std::string(kDefaultKeyPrefix);
  Algorithm algorithm = Algorithm::sliding_log;
  std::int64_t burst = 0;                       // token_bucket only
  std::chrono::milliseconds timeout{50};        // deadline of one Redis check
  FailureMode on_failure = FailureMode::fallback;
  std::shared_ptr<const Clock> clock;           // in-memory time; null = system
  RedisTls tls;                                 // for a rediss URL (redis_options.hpp)
  std::string sentinel_password;                // for a redis+sentinel URL
};

class DistributedRateLimiter {
 public:
  // `redis_url` empty: REDIS_URL from the environment if set, else in memory.
  // Throws std::invalid_argument for a limit <= 0, a malformed URL or TLS files
  // (options.tls) that do not load.
  DistributedRateLimiter(std::int64_t max_requests, std::int64_t window_ms,
                         std::string redis_url = "", LimiterOptions options = {});
  // A custom store (the seed's RateLimitBackend).
  DistributedRateLimiter(std::int64_t max_requests, std::int64_t window_ms,
                         std::shared_ptr<RateLimitBackend> backend, LimiterOptions options = {});
  ~DistributedRateLimiter();
  DistributedRateLimiter(const DistributedRateLimiter&) = delete;
  DistributedRateLimiter& operator=(const DistributedRateLimiter&) = delete;

  // Counts one request for `identifier` and says whether it is allowed. Throws
  // std::invalid_argument for an empty identifier; never for a store failure.
  bool is_allowed(std::string_view identifier);
  // The whole decision (remaining, reset, retry-after, source).
  Decision check(std::string_view identifier);
  // Throws RateLimitError("Rate limit exceeded: 100 requests per 60.0 seconds").
  void check_and_raise(std::string_view identifier);
  // Forgets the usage of `identifier`.
  void reset(std::string_view identifier);

  const Limit& limit() const { return limit_; }
  std::string key_for(std::string_view identifier) const;
  RedisState redis_state() const;

 private:
  class RedisRuntime;  // the I/O thread and connection used when Redis is configured

  Limit limit_;
  LimiterOptions options_;
  KeyLayout keys_;  // options_.key_prefix
  std::shared_ptr<RateLimitBackend> backend_;  // memory or custom, when no Redis
  std::unique_ptr<RedisRuntime> redis_;
};

}  // namespace phlow::limiter
