#include "limiter/distributed_rate_limiter.hpp"

#include "limiter/store_factory.hpp"

#include "limiter/key_layout.hpp"

#include <fmt/format.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <future>
#include <stdexcept>
#include <thread>

namespace phlow::limiter {

namespace asio = boost::asio;

class DistributedRateLimiter::RedisRuntime {
 public:
  RedisRuntime(RedisUrl url, const LimiterOptions& options)
      : health_(std::make_shared<RedisHealth>(url.endpoint())),
        work_(io_.get_executor()) {
    RedisOptions ropts{.url = std::move(url), .tls = options.tls,
                       .sentinel_password = options.sentinel_password, .timeout = options.timeout};
    auto redis = make_store(io_.get_executor(), ropts, health_);
    redis->start();
    backend_ = std::make_unique<FallbackBackend>(
        io_.get_executor(), std::make_shared<MemoryBackend>(options.clock), std::move(redis),
        options.on_failure);
    thread_ = std::thread([this] { io_.run(); });
    health_->wait_settled(kStartupWait);
  }

  ~RedisRuntime() {
    asio::post(io_, [this] { backend_->store()->stop(); });
    work_.reset();
    io_.stop();
    thread_.join();
  }

  Decision check(const Descriptor& descriptor) {
    std::promise<Decision> promise;
    auto result = promise.get_future();
    asio::post(io_, [&] {
      backend_->async_check(std::span(&descriptor, 1),
                            [&promise](Decision d) { promise.set_value(d); });
    });
    return result.get();  // bounded: a check completes within the Redis deadline
  }

  void reset(const std::string& key) {
    std::promise<void> promise;
    auto done = promise.get_future();
    asio::post(io_, [&] {
      backend_->reset_local(key);
      backend_->store()->async_reset(key, [&promise](boost::system::error_code) {
        promise.set_value();
      });
    });
    done.get();
  }

  RedisState state() const { return health_->state(); }

 private:
  std::shared_ptr<RedisHealth> health_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<FallbackBackend> backend_;
  std::thread thread_;
};

namespace {

Limit make_limit(std::int64_t max_requests, std::int64_t window_ms, const LimiterOptions& o) {
  Limit limit{.name = o.name, .requests = max_requests, .window_ms = window_ms,
              .algorithm = o.algorithm, .burst = o.burst};
  if (std::string error = validate(limit); !error.empty()) {
    throw std::invalid_argument("DistributedRateLimiter: " + error);
  }
  return limit;
}

RedisUrl parse_or_throw(const std::string& url) {
  auto parsed = parse_redis_url(url);
  if (auto* error = std::get_if<std::string>(&parsed)) {
    throw std::invalid_argument("DistributedRateLimiter: invalid Redis URL: " + *error);
  }
  return std::get<RedisUrl>(std::move(parsed));
}

void require_identifier(std::string_view identifier) {
  if (identifier.empty()) throw std::invalid_argument("rate limit identifier must not be empty");
}

}  // namespace

DistributedRateLimiter::DistributedRateLimiter(std::int64_t max_requests, std::int64_t window_ms,
                                               std::string redis_url, LimiterOptions options)
    : limit_(make_limit(max_requests, window_ms, options)),
      options_(std::move(options)),
      keys_(options_.key_prefix) {
  if (redis_url.empty()) {
    if (const char* env = std::getenv("REDIS_URL"); env != nullptr) redis_url = env;
  }
  if (redis_url.empty()) {
    backend_ = std::make_shared<MemoryBackend>(options_.clock);
  } else {
    redis_ = std::make_unique<RedisRuntime>(parse_or_throw(redis_url), options_);
  }
}

DistributedRateLimiter::DistributedRateLimiter(std::int64_t max_requests, std::int64_t window_ms,
                                               std::shared_ptr<RateLimitBackend> backend,
                                               LimiterOptions options)
    : limit_(make_limit(max_requests, window_ms, options)),
      options_(std::move(options)),
      keys_(options_.key_prefix),
      backend_(std::move(backend)) {
  if (!backend_) throw std::invalid_argument("DistributedRateLimiter: backend is null");
}

DistributedRateLimiter::~DistributedRateLimiter() = default;

std::string DistributedRateLimiter::key_for(std::string_view identifier) const {
  return keys_.key(limit_.name, identifier);
}

Decision DistributedRateLimiter::check(std::string_view identifier) {
  require_identifier(identifier);
  const Descriptor descriptor{&limit_, key_for(identifier)};
  if (redis_) return redis_->check(descriptor);
  return backend_->check(std::span(&descriptor, 1));
}

bool DistributedRateLimiter::is_allowed(std::string_view identifier) {
  return check(identifier).allowed;
}

void DistributedRateLimiter::check_and_raise(std::string_view identifier) {
  const Decision d = check(identifier);
  if (d.allowed) return;
  throw RateLimitError(fmt::format("Rate limit exceeded: {} requests per {:.1f} seconds",
                                   limit_.requests, static_cast<double>(limit_.window_ms) / 1000.0),
                       d.results[0].retry_after_ms);
}

void DistributedRateLimiter::reset(std::string_view identifier) {
  require_identifier(identifier);
  const std::string key = key_for(identifier);
  if (redis_) {
    redis_->reset(key);
  } else {
    backend_->reset(key);
  }
}

RedisState DistributedRateLimiter::redis_state() const {
  return redis_ ? redis_->state() : RedisState::disabled;
}

}  // namespace phlow::limiter
