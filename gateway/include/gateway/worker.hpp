#pragma once
// One I/O thread: its io_context, its acceptor (SO_REUSEPORT on the shared port), its
// limiter front (own Redis connection), its upstream pool and its config snapshot.
// Everything here is touched only on the worker's thread.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <boost/intrusive/list.hpp>

#include "gateway/access_log.hpp"
#include "gateway/metrics.hpp"
#include "gateway/slot_tracker.hpp"
#include "gateway/snapshot.hpp"
#include "gateway/upstream_pool.hpp"
#include "limiter/fallback_backend.hpp"

namespace phlow::gateway {

class Server;

class Worker {
 public:
  // Builds this worker's shared store on its executor (nullptr: limits in memory
  // only). Empty: the store redis.url names (limiter::make_store), started.
  using StoreFactory =
      std::function<std::unique_ptr<limiter::AsyncStore>(boost::asio::any_io_executor)>;

  Worker(Server& server, std::shared_ptr<const Snapshot> snapshot,
         std::shared_ptr<limiter::MemoryBackend> memory,
         std::shared_ptr<limiter::RedisHealth> redis_health,
         std::shared_ptr<AccessLogSink> access_log, const StoreFactory& store_factory = {});
  ~Worker();

  boost::asio::io_context& io() { return io_; }
  Server& server() { return server_; }
  const std::shared_ptr<const Snapshot>& snapshot() const { return snapshot_; }
  limiter::FallbackBackend& limiter() { return *limiter_; }
  SlotTracker& slots() { return *slots_; }
  UpstreamPool& upstreams() { return pool_; }
  std::mt19937_64& random() { return random_; }
  WorkerStats& stats() { return stats_; }
  // Null when access_log is off: then no record is even formatted.
  AccessLogBuffer* access_log() { return access_log_.get(); }

  // Starts the worker's thread, before it accepts: its Redis connection is made
  // meanwhile, so that the server can wait for it before it listens. Call once every
  // worker exists: a RedisHealth counts as connected when every connection
  // registered so far is up.
  void run();
  // Takes over a bound, listening acceptor and accepts on it until stop_accepting().
  void start(boost::asio::ip::tcp::acceptor acceptor);  // thread-safe
  // Registers this gateway in Redis' presence set (AsyncStore::start_presence).
  void start_presence(std::string key, std::string member);  // thread-safe
  // Serves the connections the kernel has already completed, then closes the acceptor.
  void stop_accepting();                                       // thread-safe
  void replace_snapshot(std::shared_ptr<const Snapshot> next);  // thread-safe
  void stop();                                                 // thread-safe
  void join();
  // Sessions waiting for a next request register their socket, so that a drain can
  // end them at once (on the worker's thread only). The entry lives in the session and
  // leaves the list when it is destroyed: no allocation per request.
  struct IdleEntry : boost::intrusive::list_base_hook<
                         boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
    boost::asio::ip::tcp::socket* socket = nullptr;
  };
  void add_idle(IdleEntry& entry) { idle_.push_back(entry); }
  static void remove_idle(IdleEntry& entry) {
    if (entry.is_linked()) entry.unlink();
  }
  void close_idle();  // thread-safe

  // Buffers of kRelayChunk bytes that a body relay borrows for its duration and gives
  // back (on the worker's thread only): bodies are copied through one, and keeping
  // them off the coroutine frames keeps those small enough for Asio to recycle.
  static constexpr std::size_t kRelayChunk = 16 * 1024;
  std::unique_ptr<char[]> take_relay_chunk();
  void give_relay_chunk(std::unique_ptr<char[]> chunk);

 private:
  boost::asio::awaitable<void> accept_loop();
  void serve(boost::asio::ip::tcp::socket socket);  // a session, or a 503 past capacity
  boost::asio::awaitable<void> flush_access_log();
  static boost::asio::awaitable<void> reject_over_capacity(boost::asio::ip::tcp::socket socket);

  Server& server_;
  // An io_context whose services the worker shuts down itself: that destroys the
  // coroutines still suspended (a tunnel or a relay cut by the end of the grace) while
  // the members their frames use (relay chunks, stats, the pool) are alive; the
  // io_context's own destructor runs after those members are gone.
  struct IoContext : boost::asio::io_context {
    using boost::asio::io_context::io_context;
    using boost::asio::execution_context::shutdown;
  };
  // Only this worker's thread touches its sockets and timers (other threads post), so
  // the reactor's per-descriptor locking is off; posting from other threads stays safe.
  IoContext io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  // Keeps io_.run() going until stop(), also before there is anything to do.
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  std::shared_ptr<const Snapshot> snapshot_;
  std::unique_ptr<limiter::FallbackBackend> limiter_;
  WorkerStats stats_;  // before pool_, which counts into it
  std::unique_ptr<SlotTracker> slots_;  // after limiter_ and stats_, which it uses
  UpstreamPool pool_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::mt19937_64 random_;
  std::unique_ptr<AccessLogBuffer> access_log_;
  boost::intrusive::list<IdleEntry, boost::intrusive::constant_time_size<false>> idle_;
  std::vector<std::unique_ptr<char[]>> spare_chunks_;
  std::thread thread_;
};

}  // namespace phlow::gateway
