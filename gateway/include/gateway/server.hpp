#pragma once
// The running gateway: workers, the shared in-memory limits, Redis health, signals
// (SIGTERM/SIGINT drain, SIGHUP reload) and the config generation.

#include <atomic>
#include <chrono>
#include <mutex>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/metrics.hpp"
#include "limiter/memory_backend.hpp"
#include "limiter/redis_health.hpp"

namespace phlow::gateway {

class AccessLogSink;
class AdminServer;
class Worker;
struct Snapshot;

class Server {
 public:
  // `config_path` is reloaded on SIGHUP; empty in zero-config mode.
  Server(std::shared_ptr<const config::Config> config, std::string config_path);
  ~Server();

  // Binds, serves until SIGTERM/SIGINT, drains, and returns the exit code.
  int run();

  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  // Counts a downstream connection; false when max_connections is reached.
  bool try_open_connection(std::uint64_t max_connections);
  void close_connection() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }
  std::uint64_t open_connections() const { return open_connections_.load(); }

  // The admin listener's views (called on its thread).
  std::string metrics_text() const;
  std::string status_json() const;
  std::string redis_state() const;
  double uptime_seconds() const;
  std::shared_ptr<const Snapshot> current_snapshot() const;

 private:
  GlobalStats global_stats() const;
  bool start_admin();
  bool bind_all();
  void reload();
  void drain_and_stop();

  std::shared_ptr<const config::Config> config_;
  std::string config_path_;
  std::uint64_t generation_ = 1;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  NameTable route_names_;
  NameTable limit_names_;
  mutable std::mutex snapshot_mutex_;  // control plane only: reloads and admin reads
  std::shared_ptr<const Snapshot> snapshot_;
  std::shared_ptr<AccessLogSink> access_log_;
  std::unique_ptr<AdminServer> admin_;
  std::atomic<std::uint64_t> reloads_ok_{0};
  std::atomic<std::uint64_t> reloads_failed_{0};
  std::shared_ptr<limiter::MemoryBackend> memory_;
  std::shared_ptr<limiter::RedisHealth> redis_health_;
  // redis.fallback_share as started (Redis settings change only with a restart).
  std::uint32_t fallback_share_ = 0;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> draining_{false};
  std::atomic<std::uint64_t> open_connections_{0};
};

}  // namespace phlow::gateway
