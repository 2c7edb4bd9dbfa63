#pragma once
// What the end-to-end tests (real gateway processes) share.

#include <chrono>
#include <functional>
#include <thread>

#include "support/process.hpp"

namespace phlow::test {

// Sanitized builds run about 50 times slower: tests that load the gateway scale down.
#ifdef PHLOW_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// Hermetic: a REDIS_URL of the environment must not reach a gateway under test.
inline const EnvVars kNoRedis = {{"REDIS_URL", ""}};

// Polls `done` every 5 ms until it holds (true) or `timeout` passes (false).
inline bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace phlow::test
