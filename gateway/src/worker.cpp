#include "gateway/worker.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/steady_timer.hpp>

#include "gateway/server.hpp"
#include "gateway/session.hpp"
#include "limiter/store_factory.hpp"

namespace phlow::gateway {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

std::unique_ptr<limiter::AsyncStore> make_redis(net::any_io_executor executor,
                                                  const config::Config& cfg,
                                                  const std::shared_ptr<limiter::RedisHealth>& health) {
  if (cfg.redis.url.empty() || !health) return nullptr;
  auto redis = limiter::make_store(std::move(executor), cfg.redis.store_options(), health);
  redis->start();
  return redis;
}

}  // namespace

Worker::Worker(Server& server, std::shared_ptr<const Snapshot> snapshot,
               std::shared_ptr<limiter::MemoryBackend> memory,
               std::shared_ptr<limiter::RedisHealth> redis_health,
               std::shared_ptr<AccessLogSink> access_log, const StoreFactory& store_factory)
    : server_(server), snapshot_(std::move(snapshot)),
      pool_(io_.get_executor(), &stats_.upstream_connections, &stats_.upstream_tls_handshakes),
      random_(std::random_device{}()) {
  if (access_log) access_log_ = std::make_unique<AccessLogBuffer>(std::move(access_log));
  const config::Config& cfg = *snapshot_->config;
  limiter_ = std::make_unique<limiter::FallbackBackend>(
      io_.get_executor(), std::move(memory),
      store_factory ? store_factory(io_.get_executor()) : make_redis(io_.get_executor(), cfg, redis_health),
      cfg.redis.on_failure, cfg.redis.fallback_share);
  slots_ = std::make_unique<SlotTracker>(io_.get_executor(), *limiter_, stats_);
}

void Worker::run() {
  thread_ = std::thread([this] {
    try {
      io_.run();
    } catch (const std::exception& e) {
      spdlog::critical("worker stopped by an unexpected error: {}", e.what());
    }
  });
}

Worker::~Worker() {
  stop();
  join();
  io_.shutdown();  // the thread is gone: destroys what is still suspended (see worker.hpp)
}

void Worker::start(tcp::acceptor acceptor) {
  net::post(io_, [this, a = std::move(acceptor)]() mutable {
    acceptor_ = std::make_unique<tcp::acceptor>(std::move(a));
    net::co_spawn(io_, accept_loop(), net::detached);
    if (access_log_) net::co_spawn(io_, flush_access_log(), net::detached);
  });
}

void Worker::start_presence(std::string key, std::string member) {
  net::post(io_, [this, key = std::move(key), member = std::move(member)]() mutable {
    if (limiter_->store()) limiter_->store()->start_presence(std::move(key), std::move(member));
  });
}

net::awaitable<void> Worker::accept_loop() {
  constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
  while (acceptor_ && acceptor_->is_open()) {
    auto [ec, socket] = co_await acceptor_->async_accept(use_tuple);
    if (!ec) {
      serve(std::move(socket));  // even when the acceptor closed meanwhile: the client sees it open
      continue;
    }
    if (ec == net::error::operation_aborted || !acceptor_->is_open()) break;
    // EMFILE and friends: back off a little instead of spinning.
    spdlog::warn("accept failed: {}", ec.message());
    net::steady_timer pause(io_, std::chrono::milliseconds(50));
    co_await pause.async_wait(use_tuple);
  }
}

void Worker::serve(tcp::socket socket) {
  const auto max = snapshot_->config->http.max_connections;
  if (!server_.try_open_connection(max)) {
    net::co_spawn(io_, reject_over_capacity(std::move(socket)), net::detached);
    return;
  }
  net::co_spawn(io_, [this, s = std::move(socket)]() mutable -> net::awaitable<void> {
    stats_.client_connections.fetch_add(1, std::memory_order_relaxed);
    co_await serve_connection(*this, std::move(s));
    stats_.client_connections.fetch_sub(1, std::memory_order_relaxed);
    server_.close_connection();
  }, net::detached);
}

net::awaitable<void> Worker::reject_over_capacity(tcp::socket socket) {
  static constexpr std::string_view kBody =
      R"({"error":"Too many connections","code":"OVER_CAPACITY"})";
  static const std::string response =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
      "Connection: close\r\nRetry-After: 1\r\nContent-Length: " +
      std::to_string(kBody.size()) + "\r\n\r\n" + std::string(kBody);
  co_await net::async_write(socket, net::buffer(response), net::as_tuple(net::use_awaitable));
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
}

std::unique_ptr<char[]> Worker::take_relay_chunk() {
  if (spare_chunks_.empty()) return std::make_unique_for_overwrite<char[]>(kRelayChunk);
  auto chunk = std::move(spare_chunks_.back());
  spare_chunks_.pop_back();
  return chunk;
}

void Worker::give_relay_chunk(std::unique_ptr<char[]> chunk) {
  // A burst of large bodies may have borrowed many; keep a few for the next ones.
  constexpr std::size_t kKept = 64;
  if (chunk && spare_chunks_.size() < kKept) spare_chunks_.push_back(std::move(chunk));
}

void Worker::close_idle() {
  net::post(io_, [this] {
    for (auto& entry : idle_) {
      boost::system::error_code ignored;
      entry.socket->cancel(ignored);
    }
  });
}

// Hands buffered access-log lines to the writer at least every 200 ms.
net::awaitable<void> Worker::flush_access_log() {
  net::steady_timer timer(io_);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(200));
    auto [ec] = co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    access_log_->flush();
    if (ec) co_return;
  }
}

void Worker::stop_accepting() {
  net::post(io_, [this] {
    if (!acceptor_) return;
    // A connection in the backlog is one the client sees as open, likely with its
    // request sent: closing the listening socket would reset it. Serve those first.
    boost::system::error_code ec;
    acceptor_->non_blocking(true, ec);
    while (!ec) {
      tcp::socket socket(io_);
      acceptor_->accept(socket, ec);
      if (!ec) serve(std::move(socket));
    }
    acceptor_->close(ec);
  });
}

void Worker::replace_snapshot(std::shared_ptr<const Snapshot> next) {
  net::post(io_, [this, next = std::move(next)]() mutable {
    snapshot_ = std::move(next);
    limiter_->forget_rejections();  // limits may have changed: ask Redis again
  });
}

void Worker::stop() {
  net::post(io_, [this] {
    if (limiter_ && limiter_->store()) limiter_->store()->stop();
  });
  io_.stop();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
  if (access_log_) access_log_->flush();  // the thread is gone: safe from here
}

}  // namespace phlow::gateway
