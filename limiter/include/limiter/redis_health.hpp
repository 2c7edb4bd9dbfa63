#pragma once
// The process-wide view of Redis, fed by every connection: logs each transition
// between Redis and the in-memory fallback exactly once.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace phlow::limiter {

enum class RedisState : std::uint8_t {
  disabled,    // no Redis configured
  connecting,  // configured, no connection has succeeded or failed yet
  connected,   // every connection is up
  fallback,    // some connection is down: its checks use the fallback policy
};
std::string_view to_string(RedisState state);

inline constexpr std::string_view kFallbackMessage =
    "Failed to connect to Redis, falling back to in-memory rate limiting";

class RedisHealth {
 public:
  // `log_transitions` false keeps a secondary connection (the admin listener's) from
  // repeating the process's transition messages.
  explicit RedisHealth(std::string endpoint, bool log_transitions = true);

  // Registers one connection; returns its id for report(). Until it reports up, the
  // state is not `connected`.
  int add_connection();
  // The connection is gone for good (a Cluster node that serves no slot any more): it
  // no longer counts for the state.
  void retire_connection(int connection);
  // A store saw the master of some slots move from `from` to `to` (Cluster failover);
  // counted once per move however many workers see it.
  void note_master_change(const std::string& from, const std::string& to);
  // `up`: the connection reached the node at `detail` (host:port); down: `detail` is
  // why it failed.
  void report(int connection, bool up, const std::string& detail);

  RedisState state() const { return state_.load(std::memory_order_relaxed); }
  // Waits until every connection has connected or one has failed, at most `timeout`;
  // returns the state then. Startup uses it so that first checks do not fall back
  // only because the connection was still being made.
  RedisState wait_settled(std::chrono::milliseconds timeout) const;
  // Transitions into fallback, and back to connected, since start.
  std::uint64_t fallback_transitions() const { return to_fallback_.load(); }
  std::uint64_t recovery_transitions() const { return to_connected_.load(); }
  // Why a connection last failed ("" until one did); names no secret.
  std::string last_failure() const;
  // How often the node the connections reach has changed (a Sentinel failover): a
  // connection that comes up reports its endpoint.
  std::uint64_t master_changes() const { return master_changes_.load(); }
  // Cluster: redirections followed (-MOVED, -ASK), and refunds of what one slot's
  // call consumed for a request another slot rejected.
  void count_redirect(bool ask) { (ask ? asks_ : moves_).fetch_add(1, std::memory_order_relaxed); }
  void count_refund() { refunds_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t moved_redirects() const { return moves_.load(std::memory_order_relaxed); }
  std::uint64_t ask_redirects() const { return asks_.load(std::memory_order_relaxed); }
  std::uint64_t refunds() const { return refunds_.load(std::memory_order_relaxed); }
  // Check script calls sent, and the checks (requests) they decided: a call decides
  // the checks one worker had ready in one turn of its event loop (a batch).
  void count_script_call(std::size_t checks) {
    script_calls_.fetch_add(1, std::memory_order_relaxed);
    checks_sent_.fetch_add(checks, std::memory_order_relaxed);
  }
  std::uint64_t script_calls() const { return script_calls_.load(std::memory_order_relaxed); }
  std::uint64_t checks_sent() const { return checks_sent_.load(std::memory_order_relaxed); }

  // Gateway instances last seen live in Redis (RedisBackend::start_presence), 0 until
  // one presence call has succeeded. Kept while Redis is down: it is what the
  // fallback divides limits by with `fallback_share: auto`.
  std::uint32_t live_instances() const { return live_instances_.load(std::memory_order_relaxed); }
  void set_live_instances(std::uint32_t n) { live_instances_.store(n, std::memory_order_relaxed); }

 private:
  std::string endpoint_;
  bool log_transitions_;
  mutable std::mutex mutex_;  // taken on state changes only, never per request
  mutable std::condition_variable changed_;
  std::vector<bool> up_;
  std::vector<bool> retired_;
  std::vector<std::string> endpoint_of_;  // per connection: the node it last reached
  std::set<std::string> replaced_;        // masters replaced since (counted once)
  std::string last_failure_;
  bool announced_ = false;  // "Connected to Redis" was logged
  std::atomic<RedisState> state_{RedisState::connecting};
  std::atomic<std::uint64_t> to_fallback_{0};
  std::atomic<std::uint64_t> to_connected_{0};
  std::atomic<std::uint64_t> master_changes_{0};
  std::atomic<std::uint64_t> moves_{0};
  std::atomic<std::uint64_t> asks_{0};
  std::atomic<std::uint64_t> refunds_{0};
  std::atomic<std::uint64_t> script_calls_{0};
  std::atomic<std::uint64_t> checks_sent_{0};

  void count_master_change(const std::string& from, const std::string& to);  // mutex_ held
  void update_state(bool up, const std::string& detail);                      // mutex_ held
  std::atomic<std::uint32_t> live_instances_{0};
};

}  // namespace phlow::limiter
