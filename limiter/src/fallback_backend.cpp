#include "limiter/fallback_backend.hpp"

#include <algorithm>

#include "redis/connection.hpp"

namespace phlow::limiter {

Decision failure_decision(std::span<const Descriptor> descriptors, FailureMode mode,
                          std::int64_t now_ms) {
  constexpr std::int64_t kDenyRetryMs = 1000;
  Decision d;
  d.now_ms = now_ms;
  d.count = std::min(descriptors.size(), kMaxLimitsPerCheck);
  d.source = mode == FailureMode::deny ? DecisionSource::failure_deny : DecisionSource::failure_allow;
  for (std::size_t i = 0; i < d.count; ++i) {
    const Limit& l = *descriptors[i].limit;
    LimitResult& r = d.results[i];
    r.limit = l.quota();
    r.shadow = l.shadow;
    r.allowed = mode != FailureMode::deny;
    r.remaining = r.allowed ? l.quota() : 0;
    r.retry_after_ms = r.allowed ? 0 : kDenyRetryMs;
    r.reset_ms = now_ms + (r.allowed ? l.window_ms : kDenyRetryMs);
  }
  summarize(d);
  return d;
}

FallbackBackend::FallbackBackend(boost::asio::any_io_executor executor,
                                 std::shared_ptr<MemoryBackend> memory,
                                 std::unique_ptr<AsyncStore> store, FailureMode on_failure,
                                 std::uint32_t fallback_share)
    : executor_(std::move(executor)),
      memory_(std::move(memory)),
      store_(std::move(store)),
      on_failure_(on_failure),
      fallback_share_(fallback_share) {}

std::uint32_t fallback_divisor(std::uint32_t configured, const RedisHealth* health) {
  if (health == nullptr) return 1;
  if (configured != 0) return configured;
  return std::max<std::uint32_t>(health->live_instances(), 1);
}

std::uint32_t FallbackBackend::share() const {
  return fallback_divisor(fallback_share_, store_ ? store_->health() : nullptr);
}

std::optional<Decision> FallbackBackend::try_check_now(std::span<const Descriptor> descriptors) {
  if (!store_) return memory_->check(descriptors);
  if (!store_->ready()) return on_redis_failure(descriptors);
  if (!rejected_->empty()) return rejected_->cached_rejection(descriptors, memory_->now_us());
  return std::nullopt;
}

namespace {

// The in-memory fallback (enforcing each limit's `share`), except that keys Redis was
// rejecting stay rejected until the time Redis gave; such a request consumes nothing
// in memory.
Decision decide_without_redis(MemoryBackend& memory, const RejectedKeys& rejected,
                              std::span<const Descriptor> descriptors, FailureMode mode,
                              std::uint32_t share) {
  const std::int64_t now_ms = memory.now_us() / 1000;
  if (mode != FailureMode::fallback) return failure_decision(descriptors, mode, now_ms);
  if (rejected.empty()) return memory.check(descriptors, share);
  std::array<std::int64_t, kMaxLimitsPerCheck> until{};
  const std::size_t n = std::min(descriptors.size(), kMaxLimitsPerCheck);
  bool blocked = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (descriptors[i].limit->shadow) continue;
    until[i] = rejected.rejected_until(descriptors[i].key, now_ms);
    blocked = blocked || until[i] != 0;
  }
  if (!blocked) return memory.check(descriptors, share);
  Decision d;
  d.source = DecisionSource::memory;
  d.now_ms = now_ms;
  d.count = n;
  for (std::size_t i = 0; i < n; ++i) {
    LimitResult& r = d.results[i];
    r = memory.peek(descriptors[i], share);
    if (until[i] == 0) continue;
    r.allowed = false;
    r.remaining = 0;
    r.retry_after_ms = until[i] - now_ms;
    r.reset_ms = until[i];
  }
  summarize(d);
  return d;
}

}  // namespace

Decision FallbackBackend::on_redis_failure(std::span<const Descriptor> descriptors) {
  Decision d = decide_without_redis(*memory_, *rejected_, descriptors, on_failure_, share());
  d.store_failure = StoreError::not_connected;
  return d;
}

void FallbackBackend::start_check(std::span<const Descriptor> descriptors,
                                  boost::asio::any_completion_handler<void(Decision)> handler) {
  if (auto now = try_check_now(descriptors)) {
    boost::asio::post(executor_, [h = std::move(handler), d = *now]() mutable { std::move(h)(d); });
    return;
  }
  store_->async_check(descriptors, CheckMode::consume,
                      [memory = memory_, rejected = rejected_, mode = on_failure_, descriptors,
                       share = share(), checked_at_us = memory_->now_us(),
                       h = std::move(handler)](boost::system::error_code ec, Decision d) mutable {
                        if (ec) {
                          d = decide_without_redis(*memory, *rejected, descriptors, mode, share);
                          d.store_failure = store_error_of(ec);
                        } else if (!d.allowed || !rejected->empty()) {
                          rejected->record(descriptors, d, checked_at_us);
                        }
                        std::move(h)(d);
                      });
}

void FallbackBackend::start_debit(std::span<const Descriptor> descriptors,
                                  boost::asio::any_completion_handler<void(Decision)> handler) {
  if (!store_ || !store_->ready()) {
    Decision d = memory_->debit(descriptors, share());
    if (store_) d.store_failure = StoreError::not_connected;
    boost::asio::post(executor_, [h = std::move(handler), d]() mutable { std::move(h)(d); });
    return;
  }
  store_->async_check(descriptors, CheckMode::debit,
                      [memory = memory_, descriptors, share = share(),
                       h = std::move(handler)](boost::system::error_code ec, Decision d) mutable {
                        if (ec) {
                          // Maybe applied in Redis, maybe not: the fallback counts it, so
                          // that an outage starting now does not forget it.
                          d = memory->debit(descriptors, share);
                          d.store_failure = store_error_of(ec);
                        }
                        std::move(h)(d);
                      });
}

void FallbackBackend::reset_local(std::string_view key) {
  memory_->reset(key);
  forget_rejection(key);
}

}  // namespace phlow::limiter
