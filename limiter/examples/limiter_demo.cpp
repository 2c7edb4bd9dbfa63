// Shows the library API: 8 requests against a limit of 5 per 10 s, in memory, or in
// Redis when REDIS_URL (or the first argument) names one.
#include <cstdio>
#include <string>

#include "limiter/distributed_rate_limiter.hpp"

int main(int argc, char** argv) {
  using namespace phlow::limiter;
  const std::string url = argc > 1 ? argv[1] : "";
  LimiterOptions options;
  options.name = "demo";
  DistributedRateLimiter limiter(5, 10'000, url, options);
  std::printf("limit: 5 requests per 10 s, store: %s\n",
              limiter.redis_state() == RedisState::disabled ? "in-memory"
                                                            : std::string(to_string(limiter.redis_state())).c_str());
  for (int i = 1; i <= 8; ++i) {
    const Decision d = limiter.check("client-42");
    const LimitResult& r = d.results[0];
    std::printf("request %d: %s  remaining=%lld  retry_after_ms=%lld  (%s)\n", i,
                d.allowed ? "allowed " : "REJECTED", static_cast<long long>(r.remaining),
                static_cast<long long>(r.retry_after_ms),
                d.source == DecisionSource::redis ? "redis" : "memory");
  }
  try {
    limiter.check_and_raise("client-42");
  } catch (const RateLimitError& e) {
    std::printf("check_and_raise: %s\n", e.what());
  }
  return 0;
}
