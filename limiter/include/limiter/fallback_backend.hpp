#pragma once
// What the gateway's workers call: Redis when it is up, else the failure policy
// (in-memory fallback by default). Never throws, never waits past the Redis
// deadline. One per I/O thread; the MemoryBackend is shared by all of them.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <optional>
#include <span>

#include "limiter/memory_backend.hpp"
#include "limiter/redis_backend.hpp"

namespace phlow::limiter {

enum class FailureMode : std::uint8_t { fallback, allow, deny };

class FallbackBackend {
 public:
  // `redis` may be null: limits are then in memory only.
  FallbackBackend(boost::asio::any_io_executor executor, std::shared_ptr<MemoryBackend> memory,
                  std::unique_ptr<RedisBackend> redis, FailureMode on_failure);

  // The decision when it needs no I/O (no Redis configured, or Redis down), else
  // nullopt: then call async_check.
  std::optional<Decision> try_check_now(std::span<const Descriptor> descriptors);

  // Completes with the decision (signature void(Decision)), never on the caller's
  // stack. `descriptors` must stay alive until it completes.
  template <class Token>
  auto async_check(std::span<const Descriptor> descriptors, Token&& token) {
    return boost::asio::async_initiate<Token, void(Decision)>(
        [this](auto handler, std::span<const Descriptor> d) {
          start_check(d, boost::asio::any_completion_handler<void(Decision)>(std::move(handler)));
        },
        token, descriptors);
  }

  MemoryBackend& memory() { return *memory_; }
  RedisBackend* redis() { return redis_.get(); }
  FailureMode on_failure() const { return on_failure_; }

 private:
  void start_check(std::span<const Descriptor> descriptors,
                   boost::asio::any_completion_handler<void(Decision)> handler);
  Decision on_redis_failure(std::span<const Descriptor> descriptors);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<MemoryBackend> memory_;
  std::unique_ptr<RedisBackend> redis_;
  FailureMode on_failure_;
};

// The decision `mode` gives when the store failed (allow or deny everything).
Decision failure_decision(std::span<const Descriptor> descriptors, FailureMode mode,
                          std::int64_t now_ms);

}  // namespace phlow::limiter
