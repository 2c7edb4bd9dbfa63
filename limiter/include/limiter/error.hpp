#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace phlow::limiter {

// Thrown by DistributedRateLimiter::check_and_raise when a request is over its limit.
class RateLimitError : public std::runtime_error {
 public:
  RateLimitError(const std::string& message, std::int64_t retry_after_ms)
      : std::runtime_error(message), retry_after_ms_(retry_after_ms) {}
  std::int64_t retry_after_ms() const { return retry_after_ms_; }

 private:
  std::int64_t retry_after_ms_;
};

}  // namespace phlow::limiter
