#pragma once
// The admin listener (SPEC.md, "Admin listener"): health, readiness, Prometheus
// metrics, the status page, and the inspect/reset API. It runs on its own thread and
// io_context, so a slow scrape never delays a request, and listens on loopback unless
// configured otherwise.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "limiter/memory_backend.hpp"
#include "limiter/redis_backend.hpp"

namespace phlow::gateway {

struct Snapshot;

// What the admin listener reads from the running gateway. Every function is called
// on the admin thread and must be thread-safe.
struct AdminSources {
  std::function<std::shared_ptr<const Snapshot>()> snapshot;
  std::function<std::string()> metrics_text;  // Prometheus exposition
  std::function<std::string()> status_json;   // the status page's data
  std::function<std::string()> redis_state;   // "connected" | "fallback" | "disabled"
  std::function<double()> uptime_seconds;
  std::shared_ptr<limiter::MemoryBackend> memory;
  // Makes every worker's fallback forget the Redis rejection of a key (posted).
  std::function<void(const std::string& key)> forget_rejection;
  std::shared_ptr<limiter::RedisHealth> redis_health;  // null without Redis
};

class AdminServer {
 public:
  AdminServer(const config::Config& config, AdminSources sources);
  ~AdminServer();

  // Binds admin.listen; false (with a log line) when it cannot.
  bool start(const config::ListenAddress& listen);
  void stop();
  std::uint16_t port() const { return port_; }

 private:
  class Connection;

  boost::asio::io_context io_{1};
  AdminSources sources_;
  std::unique_ptr<limiter::AsyncStore> redis_;  // for inspect/reset in Redis
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace phlow::gateway
