#include "gateway/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <random>
#include <thread>

#include "config/loader.hpp"
#include "gateway/access_log.hpp"
#include "gateway/admin_server.hpp"
#include "gateway/build_info.hpp"
#include "gateway/snapshot.hpp"
#include "gateway/worker.hpp"

namespace phlow::gateway {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// How this instance appears in Redis' presence set: readable in redis-cli, unique
// even for containers that share a hostname and a pid.
std::string presence_member() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  std::random_device random;
  return fmt::format("{}:{}:{:08x}", host, ::getpid(), random());
}

// Binds `address` with SO_REUSEPORT so that every worker accepts on the same port and
// the kernel spreads connections without a lock between workers.
tcp::acceptor bind_acceptor(net::io_context& io, const tcp::endpoint& endpoint) {
  tcp::acceptor acceptor(io);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  const int one = 1;
  ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  acceptor.bind(endpoint);
  acceptor.listen(net::socket_base::max_listen_connections);
  return acceptor;
}

// TLS verifies unless told not to, and then says so at every (re)load.
void warn_unverified_upstreams(const config::Config& config) {
  for (const auto& upstream : config.upstreams) {
    if (upstream.url.tls() && !upstream.tls.verify) {
      spdlog::warn("upstreams.{}.tls.verify is false: the certificate of {} is NOT checked; anyone "
                   "on the path can read and change the traffic", upstream.name, upstream.url.to_string());
    }
  }
}

}  // namespace

Server::Server(std::shared_ptr<const config::Config> config, std::string config_path)
    : config_(std::move(config)), config_path_(std::move(config_path)),
      memory_(std::make_shared<limiter::MemoryBackend>()) {
  if (!config_->redis.url.empty()) {
    redis_health_ = std::make_shared<limiter::RedisHealth>(config_->redis.target.endpoint());
    fallback_share_ = config_->redis.fallback_share;
  }
}

Server::~Server() {
  if (admin_) admin_->stop();
  workers_.clear();
  if (access_log_) access_log_->flush_and_stop();
}

std::shared_ptr<const Snapshot> Server::current_snapshot() const {
  std::lock_guard lock(snapshot_mutex_);
  return snapshot_;
}

double Server::uptime_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
}

std::string Server::redis_state() const {
  if (!redis_health_) return "disabled";
  return redis_health_->state() == limiter::RedisState::connected ? "connected" : "fallback";
}

GlobalStats Server::global_stats() const {
  GlobalStats g;
  g.redis_configured = redis_health_ != nullptr;
  g.in_fallback = redis_health_ && redis_health_->state() != limiter::RedisState::connected;
  g.fallback_transitions = redis_health_ ? redis_health_->fallback_transitions() : 0;
  g.recoveries = redis_health_ ? redis_health_->recovery_transitions() : 0;
  g.master_changes = redis_health_ ? redis_health_->master_changes() : 0;
  g.moved = redis_health_ ? redis_health_->moved_redirects() : 0;
  g.asked = redis_health_ ? redis_health_->ask_redirects() : 0;
  g.refunds = redis_health_ ? redis_health_->refunds() : 0;
  g.script_calls = redis_health_ ? redis_health_->script_calls() : 0;
  g.checks_sent = redis_health_ ? redis_health_->checks_sent() : 0;
  g.live_gateways = redis_health_ ? redis_health_->live_instances() : 0;
  g.fallback_share = limiter::fallback_divisor(fallback_share_, redis_health_.get());
  g.reloads_ok = reloads_ok_.load();
  g.reloads_failed = reloads_failed_.load();
  g.config_generation = current_snapshot()->generation;
  g.uptime_seconds = uptime_seconds();
  g.version = std::string(version());
  return g;
}

std::string Server::metrics_text() const {
  std::vector<const WorkerStats*> stats;
  for (const auto& worker : workers_) stats.push_back(&worker->stats());
  return render_prometheus(stats, route_names_, limit_names_, global_stats());
}

std::string Server::status_json() const {
  std::vector<const WorkerStats*> stats;
  for (const auto& worker : workers_) stats.push_back(&worker->stats());
  return gateway::status_json(stats, route_names_, limit_names_, global_stats()).dump();
}

bool Server::start_admin() {
  AdminSources sources;
  sources.snapshot = [this] { return current_snapshot(); };
  sources.metrics_text = [this] { return metrics_text(); };
  sources.status_json = [this] { return status_json(); };
  sources.redis_state = [this] { return redis_state(); };
  sources.uptime_seconds = [this] { return uptime_seconds(); };
  sources.memory = memory_;
  sources.forget_rejection = [this](const std::string& key) {
    for (const auto& worker : workers_) {
      net::post(worker->io(), [w = worker.get(), key] { w->limiter().forget_rejection(key); });
    }
  };
  sources.redis_health = redis_health_;
  admin_ = std::make_unique<AdminServer>(*config_, std::move(sources));
  if (admin_->start(config_->admin.listen)) return true;
  if (config_path_.empty()) {
    // Zero-config mode never asked for an admin listener: serve without one.
    spdlog::warn("zero-config mode: running without the admin listener");
    admin_.reset();
    return true;
  }
  return false;
}

bool Server::try_open_connection(std::uint64_t max_connections) {
  if (open_connections_.fetch_add(1, std::memory_order_relaxed) >= max_connections) {
    open_connections_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

bool Server::bind_all() {
  const auto& listen = config_->listen;
  tcp::endpoint endpoint(net::ip::make_address(listen.host), listen.port);
  try {
    for (auto& worker : workers_) {
      tcp::acceptor acceptor = bind_acceptor(worker->io(), endpoint);
      endpoint = acceptor.local_endpoint();  // port 0: the others join the port chosen
      worker->start(std::move(acceptor));
    }
  } catch (const boost::system::system_error& e) {
    spdlog::error("cannot listen on {}: {}", listen.to_string(), e.code().message());
    return false;
  }
  spdlog::info("phlow-gateway listening on {}:{} with {} worker(s)",
               endpoint.address().to_string(), endpoint.port(), workers_.size());
  return true;
}

int Server::run() {
  unsigned threads = config_->threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  std::string log_error;
  access_log_ = AccessLogSink::open(config_->access_log, &log_error);
  if (!access_log_ && !log_error.empty()) {
    spdlog::error("access log: {}", log_error);
    return 1;
  }
  std::shared_ptr<const Snapshot> snapshot;
  try {
    snapshot = std::make_shared<const Snapshot>(config_, generation_, route_names_, limit_names_);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  warn_unverified_upstreams(*config_);
  {
    std::lock_guard lock(snapshot_mutex_);
    snapshot_ = snapshot;
  }
  for (unsigned i = 0; i < threads; ++i) {
    workers_.push_back(
        std::make_unique<Worker>(*this, snapshot, memory_, redis_health_, access_log_));
  }
  for (auto& worker : workers_) worker->run();
  if (redis_health_) {
    workers_.front()->start_presence(limiter::KeyLayout(config_->redis.key_prefix).presence_key(),
                                     presence_member());
    // Bounded: the first checks should not fall back only because connecting is slow.
    redis_health_->wait_settled(limiter::kStartupWait);
  } else {
    spdlog::info("no Redis configured: limits are in memory, per instance");
  }
  net::io_context signals_io;
  net::signal_set signals(signals_io, SIGINT, SIGTERM, SIGHUP);
  if (!bind_all() || !start_admin()) {
    for (auto& worker : workers_) worker->stop();
    return 1;
  }
  bool stopping = false;
  std::function<void(const boost::system::error_code&, int)> on_signal;
  on_signal = [&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    if (signal == SIGHUP) {
      reload();
      signals.async_wait(on_signal);
      return;
    }
    if (stopping) return;
    stopping = true;
    spdlog::info("signal {}: draining (grace {} ms)", signal, config_->shutdown_grace.count());
    drain_and_stop();
    signals_io.stop();
  };
  signals.async_wait(on_signal);
  signals_io.run();
  return 0;
}

void Server::drain_and_stop() {
  draining_ = true;
  for (auto& worker : workers_) {
    worker->stop_accepting();
    worker->close_idle();
  }
  const auto deadline = std::chrono::steady_clock::now() + config_->shutdown_grace;
  while (open_connections_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (open_connections_.load() > 0) {
    spdlog::warn("grace period over: closing {} connection(s)", open_connections_.load());
  }
  for (auto& worker : workers_) worker->stop();
  for (auto& worker : workers_) worker->join();
  if (admin_) admin_->stop();
  if (access_log_) access_log_->flush_and_stop();
  spdlog::info("stopped");
}

void Server::reload() {
  if (config_path_.empty()) {
    spdlog::warn("SIGHUP: no config file to reload (zero-config mode)");
    return;
  }
  config::LoadResult loaded = config::load_config_file(config_path_);
  if (!loaded.ok()) {
    ++reloads_failed_;
    spdlog::error("reload of {} failed; the running config stays in force:\n{}", config_path_,
                  config::format_errors(loaded.errors));
    return;
  }
  const config::Config& next = *loaded.config;
  if (!(next.listen == config_->listen) || next.threads != config_->threads ||
      !(next.redis == config_->redis) || !(next.admin.listen == config_->admin.listen) ||
      !(next.access_log == config_->access_log)) {
    spdlog::warn("reload: listen, threads, redis, admin.listen and access_log changes take "
                 "effect on restart only (admin.token and everything else now)");
  }
  std::shared_ptr<const Snapshot> snapshot;
  try {
    snapshot = std::make_shared<const Snapshot>(loaded.config, generation_ + 1, route_names_, limit_names_);
  } catch (const std::exception& e) {
    ++reloads_failed_;
    spdlog::error("reload of {} failed; the running config stays in force: {}", config_path_, e.what());
    return;
  }
  config_ = loaded.config;
  ++generation_;
  warn_unverified_upstreams(*config_);
  {
    std::lock_guard lock(snapshot_mutex_);
    snapshot_ = snapshot;
  }
  for (auto& worker : workers_) worker->replace_snapshot(snapshot);
  ++reloads_ok_;
  spdlog::info("config reloaded from {} (generation {})", config_path_, generation_);
}

}  // namespace phlow::gateway
