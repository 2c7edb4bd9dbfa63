#pragma once
// What the gateway's workers call: Redis when it is up, else the failure policy
// (in-memory fallback by default). Never throws, never waits past the Redis
// deadline. One per I/O thread; the MemoryBackend is shared by all of them.
//
// The in-memory fallback starts from its own counts, which hold only what it decided
// itself. So that a check Redis could not answer in time, or an outage, does not hand
// a fresh budget to a client Redis was rejecting, each FallbackBackend remembers the
// keys Redis last rejected and until when: the fallback rejects them until then. While
// Redis is up, the same memory answers for Redis as the over-limit cache
// (rejected_keys.hpp).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "limiter/memory_backend.hpp"
#include "limiter/async_store.hpp"
#include "limiter/redis_backend.hpp"
#include "limiter/rejected_keys.hpp"

namespace phlow::limiter {

class FallbackBackend {
 public:
  // `store` (make_store(): Redis) may be null: limits are then in memory only. While
  // the store fails, the
  // in-memory fallback enforces share_of(limit, N) of each limit: N is
  // `fallback_share`, or with 0 (auto) the instances last seen live in Redis
  // (RedisHealth::live_instances, at least 1).
  FallbackBackend(boost::asio::any_io_executor executor, std::shared_ptr<MemoryBackend> memory,
                  std::unique_ptr<AsyncStore> store, FailureMode on_failure,
                  std::uint32_t fallback_share = 1);

  // The decision when it needs no I/O (no Redis configured, Redis down, or a key
  // Redis rejected still over its limit: the over-limit cache, rejected_keys.hpp),
  // else nullopt: then call async_check.
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

  // Consumes each descriptor's cost unconditionally, even past its limit: what a
  // response reported using (cost_from_response). In Redis when it is up; else, or
  // when the Redis call fails, in the in-memory counts (which decide while Redis is
  // down). Completes (void(Decision): the usage after it, its source, and the Redis
  // failure if any) never on the caller's stack. `descriptors` must stay alive until
  // then.
  template <class Token>
  auto async_debit(std::span<const Descriptor> descriptors, Token&& token) {
    return boost::asio::async_initiate<Token, void(Decision)>(
        [this](auto handler, std::span<const Descriptor> d) {
          start_debit(d, boost::asio::any_completion_handler<void(Decision)>(std::move(handler)));
        },
        token, descriptors);
  }

  MemoryBackend& memory() { return *memory_; }
  // Forgets `key` locally: its in-memory counts and its last Redis rejection.
  void reset_local(std::string_view key);
  // Forgets only the last Redis rejection of `key` (the MemoryBackend is shared:
  // reset it once, not per thread).
  void forget_rejection(std::string_view key) { rejected_->forget(key); }
  // Forgets every Redis rejection (a new configuration: limits may have changed).
  void forget_rejections() { rejected_->clear(); }
  AsyncStore* store() { return store_.get(); }
  FailureMode on_failure() const { return on_failure_; }
  // N of share_of(limit, N) while Redis fails (1 without Redis).
  std::uint32_t share() const;

 private:
  void start_check(std::span<const Descriptor> descriptors,
                   boost::asio::any_completion_handler<void(Decision)> handler);
  void start_debit(std::span<const Descriptor> descriptors,
                   boost::asio::any_completion_handler<void(Decision)> handler);
  Decision on_redis_failure(std::span<const Descriptor> descriptors);

  boost::asio::any_io_executor executor_;
  std::shared_ptr<MemoryBackend> memory_;
  // Shared with checks in flight, which may complete after this object is gone.
  std::shared_ptr<RejectedKeys> rejected_ = std::make_shared<RejectedKeys>();
  std::unique_ptr<AsyncStore> store_;
  FailureMode on_failure_;
  std::uint32_t fallback_share_;
};

// N of share_of(limit, N) while Redis fails: `configured` (redis.fallback_share), or
// with 0 (auto) the instances last seen live in Redis, at least 1. 1 without Redis.
std::uint32_t fallback_divisor(std::uint32_t configured, const RedisHealth* health);

// The decision `mode` gives when the store failed (allow or deny everything).
Decision failure_decision(std::span<const Descriptor> descriptors, FailureMode mode,
                          std::int64_t now_ms);

}  // namespace phlow::limiter
