#pragma once
// The running gateway: workers, the shared in-memory limits, Redis health, signals
// (SIGTERM/SIGINT drain, SIGHUP reload) and the config generation.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "limiter/memory_backend.hpp"
#include "limiter/redis_health.hpp"

namespace phlow::gateway {

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

 private:
  bool bind_all();
  void reload();
  void drain_and_stop();

  std::shared_ptr<const config::Config> config_;
  std::string config_path_;
  std::uint64_t generation_ = 1;
  std::shared_ptr<limiter::MemoryBackend> memory_;
  std::shared_ptr<limiter::RedisHealth> redis_health_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> draining_{false};
  std::atomic<std::uint64_t> open_connections_{0};
};

}  // namespace phlow::gateway
