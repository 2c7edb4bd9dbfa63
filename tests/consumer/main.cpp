#include <limiter/distributed_rate_limiter.hpp>

int main() {
  phlow::limiter::DistributedRateLimiter limiter(2, 60'000, "");
  const bool ok = limiter.is_allowed("a") && limiter.is_allowed("a") && !limiter.is_allowed("a");
  try {
    limiter.check_and_raise("a");
    return 1;
  } catch (const phlow::limiter::RateLimitError&) {
  }
  return ok ? 0 : 1;
}
