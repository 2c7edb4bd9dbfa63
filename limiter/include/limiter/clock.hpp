#pragma once
// Time source for the in-memory backend, injectable for tests.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace phlow::limiter {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds since the Unix epoch.
  virtual std::int64_t now_us() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::int64_t now_us() const override {
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
  }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_us = 1'700'000'000'000'000) : now_(start_us) {}
  std::int64_t now_us() const override { return now_.load(std::memory_order_relaxed); }
  void advance_ms(std::int64_t ms) { now_.fetch_add(ms * 1000, std::memory_order_relaxed); }
  void set_us(std::int64_t us) { now_.store(us, std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace phlow::limiter
