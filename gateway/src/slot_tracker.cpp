#include "gateway/slot_tracker.hpp"

#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <random>

namespace phlow::gateway {

namespace {

using Clock = std::chrono::steady_clock;

// A release to Redis with its retries: until it succeeds, or until the slot's lease
// would have ended anyway (then it is lost, and counted).
struct Release : std::enable_shared_from_this<Release> {
  Release(boost::asio::any_io_executor executor, limiter::AsyncStore& store, WorkerStats& stats,
          const limiter::Descriptor& d)
      : timer(std::move(executor)),
        store(store),
        stats(stats),
        key(d.key),
        slot(d.slot),
        give_up(Clock::now() + std::chrono::milliseconds(d.limit->window_ms)) {}

  void attempt() {
    if (!store.ready()) return retry();
    store.async_release(key, slot, [self = shared_from_this()](boost::system::error_code ec) {
      if (ec) self->retry();
    });
  }
  void retry() {
    if (Clock::now() >= give_up) {
      bump(stats.slot_releases_lost);
      return;
    }
    bump(stats.slot_release_retries);
    timer.expires_after(SlotTracker::kTick);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->attempt();
    });
  }

  boost::asio::steady_timer timer;
  limiter::AsyncStore& store;
  WorkerStats& stats;
  std::string key;
  std::string slot;
  Clock::time_point give_up;
};

}  // namespace

struct SlotTracker::Ticker {
  explicit Ticker(const boost::asio::any_io_executor& executor) : timer(executor) {}
  boost::asio::steady_timer timer;
  bool stopped = false;
};

SlotTracker::SlotTracker(boost::asio::any_io_executor executor, limiter::FallbackBackend& limiter,
                         WorkerStats& stats)
    : executor_(std::move(executor)), limiter_(limiter), stats_(stats) {
  std::random_device device;
  const std::uint64_t random = (std::uint64_t{device()} << 32) ^ device();
  char buffer[24];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, random & 0xFFFF'FFFF'FFFFULL, 16).ptr;
  prefix_.assign(buffer, end);
  prefix_.push_back('.');
}

SlotTracker::~SlotTracker() {
  if (ticker_) {
    ticker_->stopped = true;
    ticker_->timer.cancel();
  }
  while (!held_.empty()) forget(held_.front());
}

void SlotTracker::next_slot_id(std::string& out) {
  out.assign(prefix_);
  char buffer[20];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, next_id_++, 16).ptr;
  out.append(buffer, end);
}

void SlotTracker::count_held(HeldSlots& held, std::int64_t delta) {
  held.for_each([&](const SlotRef& s) {
    const std::size_t id = std::min(s.limit_id, kOtherId);
    stats_.slots_used[id].store(true, std::memory_order_relaxed);
    auto& gauge = stats_.slots_held[id];
    gauge.store(gauge.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  });
}

void SlotTracker::hold(HeldSlots& held) {
  held.renewed = Clock::now();
  count_held(held, 1);
  held_.push_back(held);
  if (held.in_redis && !ticker_) {
    ticker_ = std::make_shared<Ticker>(executor_);
    schedule_tick();
  }
}

void SlotTracker::release(HeldSlots& held) {
  if (!held.is_linked()) return;
  held.unlink();
  count_held(held, -1);
  held.for_each([&](const SlotRef& s) {
    if (held.in_redis) {
      release_in_redis(*s.descriptor);
    } else {
      limiter_.memory().release(*s.descriptor);
    }
  });
}

void SlotTracker::forget(HeldSlots& held) {
  if (!held.is_linked()) return;
  held.unlink();
  count_held(held, -1);
}

void SlotTracker::release_in_redis(const limiter::Descriptor& d) {
  limiter::AsyncStore* store = limiter_.store();
  if (store == nullptr) return;
  std::make_shared<Release>(executor_, *store, stats_, d)->attempt();
}

void SlotTracker::schedule_tick() {
  ticker_->timer.expires_after(kTick);
  ticker_->timer.async_wait([this, ticker = ticker_](boost::system::error_code ec) {
    if (ec || ticker->stopped) return;
    tick();
  });
}

// Renews the leases of requests that have held their Redis slots for half a window
// since the last renewal; stops when no request holds a slot in Redis.
void SlotTracker::tick() {
  const auto now = Clock::now();
  bool any = false;
  for (HeldSlots& held : held_) {
    if (!held.in_redis) continue;
    any = true;
    if (now - held.renewed < std::chrono::milliseconds(held.renew_every_ms)) continue;
    held.renewed = now;
    held.for_each([&](const SlotRef& s) { renew(*s.descriptor); });
  }
  if (!any) {
    ticker_.reset();
    return;
  }
  schedule_tick();
}

void SlotTracker::renew(const limiter::Descriptor& d) {
  limiter::AsyncStore* store = limiter_.store();
  if (store == nullptr || !store->ready()) {
    bump(stats_.slot_renewals[2]);
    return;
  }
  store->async_renew(d.key, d.slot, d.limit->window_ms, [&stats = stats_](boost::system::error_code ec) {
    // bad_reply: the slot is gone (its lease ran out before this renewal).
    const std::size_t result = !ec ? 0 : ec == limiter::StoreError::bad_reply ? 1 : 2;
    bump(stats.slot_renewals[result]);
  });
}

}  // namespace phlow::gateway
