#pragma once
// The shared store behind the in-memory fallback: decides limits with I/O, for every
// gateway instance at once. RedisBackend (standalone, Sentinel) and ClusterStore
// implement it; a new topology is a new class behind this interface plus a line in
// make_store() (store_factory.hpp). The over-limit cache is not a store: it answers
// before any I/O (FallbackBackend::try_check_now, rejected_keys.hpp).
// One per I/O thread (executor); not thread-safe: call it on its executor only.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "limiter/decision.hpp"
#include "limiter/descriptor.hpp"
#include "limiter/redis_health.hpp"

namespace phlow::limiter {

// What a check does: only report usage, consume when every enforced limit allows, or
// consume each descriptor's cost unconditionally (a debit: what a response used).
enum class CheckMode : std::uint8_t { peek, consume, debit };

class AsyncStore {
 public:
  using CheckHandler =
      boost::asio::any_completion_handler<void(boost::system::error_code, Decision)>;
  using ResetHandler = boost::asio::any_completion_handler<void(boost::system::error_code)>;

  virtual ~AsyncStore() = default;

  virtual void start() = 0;  // connects in the background; reconnects with backoff
  virtual void stop() = 0;
  // Connected: checks go to the store (else the failure policy decides at once).
  virtual bool ready() const = 0;

  // Decides `descriptors` atomically (see RateLimitBackend::check), each weighing its
  // cost, as `mode` says. Completes within the check deadline; on any failure with an
  // error and no decision. The descriptors must stay alive until the handler runs.
  virtual void async_check(std::span<const Descriptor> descriptors, CheckMode mode,
                           CheckHandler handler) = 0;
  // Deletes `key`.
  virtual void async_reset(std::string_view key, ResetHandler handler) = 0;
  // A concurrency limit's slot `slot` at `key` (taken by a check): gives it back, or
  // extends its lease to `window_ms` from now (then the error is
  // StoreError::bad_reply when the slot no longer exists: its lease ran out).
  virtual void async_release(std::string_view key, std::string_view slot, ResetHandler handler) = 0;
  virtual void async_renew(std::string_view key, std::string_view slot, std::int64_t window_ms,
                           ResetHandler handler) = 0;
  // Announces this instance in the presence set `key` (KeyLayout::presence_key) and
  // keeps the health's live_instances up to date, until stop().
  virtual void start_presence(std::string key, std::string member) = 0;

  // The store's state as the process sees it (shared by the instances of all threads).
  virtual const RedisHealth* health() const = 0;
};

}  // namespace phlow::limiter
