#pragma once
// The concurrency slots a worker's requests hold (algorithm: concurrency): given back
// when the request ends, and, in Redis, their leases renewed while the request runs.
//
// A slot taken in Redis lives there with a lease of the limit's window, so that the
// slots of a gateway that dies free themselves. While its request runs, the lease is
// extended every window/2 (one EVAL per slot), so a long LLM call never loses it. The
// release is one ZREM, pipelined on the worker's connection; when it fails (Redis
// down) it is retried every 250 ms until it succeeds or the lease would have ended
// anyway - then it is counted as lost. A slot taken in memory (no Redis, or Redis down)
// is given back there at once.
//
// Per request: the rate-limit filter owns one HeldSlots entry (no allocation to hold);
// a release to Redis copies the key and slot id for its retries. One per worker; on
// its thread only.

#include <boost/asio/any_io_executor.hpp>
#include <boost/intrusive/list.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

#include "gateway/metrics.hpp"
#include "limiter/fallback_backend.hpp"

namespace phlow::gateway {

// One slot a request holds.
struct SlotRef {
  const limiter::Descriptor* descriptor;  // key, slot id, limit (window)
  std::size_t limit_id;                   // metric id
};

// What a request holds, linked into the tracker while it does.
struct HeldSlots : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
  // Calls `fn` with each slot held. Set by the owner.
  std::function<void(const std::function<void(const SlotRef&)>&)> for_each;
  bool in_redis = false;  // taken by a Redis decision (else in memory)
  std::int64_t renew_every_ms = 0;  // the shortest window of the slots, halved
  std::chrono::steady_clock::time_point renewed;
};

class SlotTracker {
 public:
  static constexpr std::chrono::milliseconds kTick{250};

  SlotTracker(boost::asio::any_io_executor executor, limiter::FallbackBackend& limiter, WorkerStats& stats);
  ~SlotTracker();
  SlotTracker(const SlotTracker&) = delete;
  SlotTracker& operator=(const SlotTracker&) = delete;

  // A slot id no other request of any gateway uses: this worker's random prefix and a
  // counter ("3f9a0c1b22e4.1a"), into `out` (its capacity reused).
  void next_slot_id(std::string& out);
  // `held` (its for_each, in_redis, renew_every_ms set) now holds its slots.
  void hold(HeldSlots& held);
  // Gives `held`'s slots back (in Redis or in memory) and forgets it.
  void release(HeldSlots& held);
  // Forgets `held` without giving anything back (its owner is destroyed at shutdown:
  // no I/O then; Redis frees the slots when their leases end).
  void forget(HeldSlots& held);
  std::size_t holding() const { return held_.size(); }

 private:
  void count_held(HeldSlots& held, std::int64_t delta);
  void schedule_tick();
  void tick();
  void release_in_redis(const limiter::Descriptor& d);
  void renew(const limiter::Descriptor& d);

  boost::asio::any_io_executor executor_;
  limiter::FallbackBackend& limiter_;
  WorkerStats& stats_;
  boost::intrusive::list<HeldSlots, boost::intrusive::constant_time_size<false>> held_;
  std::string prefix_;         // random, per worker
  std::uint64_t next_id_ = 0;
  struct Ticker;
  std::shared_ptr<Ticker> ticker_;  // while something is held in Redis
};

}  // namespace phlow::gateway
