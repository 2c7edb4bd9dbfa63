// Allows exactly N of N+3 calls in memory through the installed library. Prints
// "allowed A of T" and exits 0 only when A == N.
#include <limiter/distributed_rate_limiter.hpp>

#include <cstdio>

int main() {
  constexpr int kLimit = 5;
  constexpr int kCalls = kLimit + 3;
  phlow::limiter::DistributedRateLimiter limiter(kLimit, 60'000, "");
  int allowed = 0;
  for (int i = 0; i < kCalls; ++i) {
    if (limiter.is_allowed("agent-7")) ++allowed;
  }
  std::printf("allowed %d of %d\n", allowed, kCalls);
  return allowed == kLimit ? 0 : 1;
}
