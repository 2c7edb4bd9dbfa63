#pragma once
// One I/O thread: its io_context, its acceptor (SO_REUSEPORT on the shared port), its
// limiter front (own Redis connection), its upstream pool and its config snapshot.
// Everything here is touched only on the worker's thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <random>
#include <thread>
#include <unordered_set>

#include "gateway/access_log.hpp"
#include "gateway/metrics.hpp"
#include "gateway/snapshot.hpp"
#include "gateway/upstream_pool.hpp"
#include "limiter/fallback_backend.hpp"

namespace phlow::gateway {

class Server;

class Worker {
 public:
  Worker(Server& server, std::shared_ptr<const Snapshot> snapshot,
         std::shared_ptr<limiter::MemoryBackend> memory,
         std::shared_ptr<limiter::RedisHealth> redis_health,
         std::shared_ptr<AccessLogSink> access_log);
  ~Worker();

  boost::asio::io_context& io() { return io_; }
  Server& server() { return server_; }
  const std::shared_ptr<const Snapshot>& snapshot() const { return snapshot_; }
  limiter::FallbackBackend& limiter() { return *limiter_; }
  UpstreamPool& upstreams() { return pool_; }
  std::mt19937_64& random() { return random_; }
  WorkerStats& stats() { return stats_; }
  // Null when access_log is off: then no record is even formatted.
  AccessLogBuffer* access_log() { return access_log_.get(); }

  // Takes over a bound, listening acceptor and accepts on it until stop_accepting().
  void start(boost::asio::ip::tcp::acceptor acceptor);
  // Serves the connections the kernel has already completed, then closes the acceptor.
  void stop_accepting();                                       // thread-safe
  void replace_snapshot(std::shared_ptr<const Snapshot> next);  // thread-safe
  void stop();                                                 // thread-safe
  void join();
  // Sessions waiting for a next request register their socket, so that a drain can
  // end them at once (on the worker's thread only).
  void add_idle(boost::asio::ip::tcp::socket* socket) { idle_.insert(socket); }
  void remove_idle(boost::asio::ip::tcp::socket* socket) { idle_.erase(socket); }
  void close_idle();  // thread-safe

 private:
  boost::asio::awaitable<void> accept_loop();
  void serve(boost::asio::ip::tcp::socket socket);  // a session, or a 503 past capacity
  boost::asio::awaitable<void> flush_access_log();
  static boost::asio::awaitable<void> reject_over_capacity(boost::asio::ip::tcp::socket socket);

  Server& server_;
  boost::asio::io_context io_{1};
  std::shared_ptr<const Snapshot> snapshot_;
  std::unique_ptr<limiter::FallbackBackend> limiter_;
  WorkerStats stats_;  // before pool_, which counts into it
  UpstreamPool pool_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::mt19937_64 random_;
  std::unique_ptr<AccessLogBuffer> access_log_;
  std::unordered_set<boost::asio::ip::tcp::socket*> idle_;
  std::thread thread_;
};

}  // namespace phlow::gateway
