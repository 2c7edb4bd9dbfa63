#include "limiter/fallback_backend.hpp"

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
                                 std::unique_ptr<RedisBackend> redis, FailureMode on_failure)
    : executor_(std::move(executor)),
      memory_(std::move(memory)),
      redis_(std::move(redis)),
      on_failure_(on_failure) {}

std::optional<Decision> FallbackBackend::try_check_now(std::span<const Descriptor> descriptors) {
  if (!redis_) return memory_->check(descriptors);
  if (!redis_->ready()) return on_redis_failure(descriptors);
  return std::nullopt;
}

namespace {

Decision decide_without_redis(MemoryBackend& memory, std::span<const Descriptor> descriptors,
                              FailureMode mode) {
  if (mode == FailureMode::fallback) return memory.check(descriptors);
  return failure_decision(descriptors, mode, memory.now_us() / 1000);
}

StoreFailure store_failure_of(const boost::system::error_code& ec) {
  using redis::errc;
  if (ec == errc::timeout) return StoreFailure::timeout;
  if (ec == errc::server_error) return StoreFailure::server_error;
  if (ec == errc::bad_reply) return StoreFailure::bad_reply;
  if (ec == errc::not_connected) return StoreFailure::not_connected;
  return StoreFailure::connection;
}

}  // namespace

Decision FallbackBackend::on_redis_failure(std::span<const Descriptor> descriptors) {
  Decision d = decide_without_redis(*memory_, descriptors, on_failure_);
  d.store_failure = StoreFailure::not_connected;
  return d;
}

void FallbackBackend::start_check(std::span<const Descriptor> descriptors,
                                  boost::asio::any_completion_handler<void(Decision)> handler) {
  if (auto now = try_check_now(descriptors)) {
    boost::asio::post(executor_, [h = std::move(handler), d = *now]() mutable { std::move(h)(d); });
    return;
  }
  redis_->async_check(descriptors, true,
                      [memory = memory_, mode = on_failure_, descriptors,
                       h = std::move(handler)](boost::system::error_code ec, Decision d) mutable {
                        if (ec) {
                          d = decide_without_redis(*memory, descriptors, mode);
                          d.store_failure = store_failure_of(ec);
                        }
                        std::move(h)(d);
                      });
}

}  // namespace phlow::limiter
