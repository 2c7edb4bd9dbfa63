#pragma once
// Limits in Redis: the checks of one event-loop turn are one call of the check code
// (FCALL on Redis 7, else EVALSHA; redis/check_batch.hpp) over one pipelined
// connection. One RedisBackend per I/O thread (executor); not thread-safe: call it on
// its executor only.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <memory>
#include <span>
#include <string>

#include "limiter/async_store.hpp"
#include "limiter/decision.hpp"
#include "limiter/descriptor.hpp"
#include "limiter/redis_health.hpp"
#include "limiter/redis_options.hpp"
#include "limiter/redis_url.hpp"

namespace phlow::limiter {

namespace redis {
class CheckBatch;
class Connection;
class NodeSource;
class Presence;
}

// A check that misses its deadline fails alone (the failure policy decides it). Redis
// counts as down, and its connection is closed, once a check has waited this many
// deadlines, and at least kMinStall, without a reply: then checks go to the failure
// policy at once. Meanwhile each check still waits at most its own deadline.
inline constexpr int kStallDeadlines = 4;
inline constexpr std::chrono::milliseconds kMinStall{200};

// Presence: each instance writes itself into one sorted set every kPresenceInterval;
// the members written within kPresenceLive are the live instances (the set's key:
// KeyLayout::presence_key).
inline constexpr std::chrono::milliseconds kPresenceInterval{1000};
inline constexpr std::chrono::milliseconds kPresenceLive{5000};

// How long startup waits for the first Redis connections (RedisHealth::wait_settled):
// one connect plus handshake, and a little, so that the first checks are not decided
// in memory only because connecting was still under way.
inline constexpr std::chrono::milliseconds kStartupWait = kConnectTimeout + std::chrono::milliseconds(100);

class RedisBackend final : public AsyncStore {
 public:
  // Connects to the node `nodes` names (make_store() chooses: the URL's one node, or
  // the master the sentinels name).
  RedisBackend(boost::asio::any_io_executor executor, RedisOptions options,
               std::shared_ptr<RedisHealth> health, std::shared_ptr<redis::NodeSource> nodes);
  ~RedisBackend() override;
  RedisBackend(const RedisBackend&) = delete;
  RedisBackend& operator=(const RedisBackend&) = delete;

  void start() override;  // connects in the background; reconnects with backoff
  void stop() override;
  bool ready() const override;

  // Decides `descriptors` in one script call, with the other checks of this loop turn
  // (see AsyncStore::async_check). Completes within the check deadline; on any
  // failure with an error (StoreError) and no decision. The descriptors must stay
  // alive until the handler runs.
  void async_check(std::span<const Descriptor> descriptors, CheckMode mode,
                   CheckHandler handler) override;

  // Deletes `key`.
  void async_reset(std::string_view key, ResetHandler handler) override;
  void async_release(std::string_view key, std::string_view slot, ResetHandler handler) override;
  void async_renew(std::string_view key, std::string_view slot, std::int64_t window_ms,
                   ResetHandler handler) override;

  // Every kPresenceInterval while connected: adds `member` to the sorted set `key`
  // scored by the Redis server's time, drops members older than kPresenceLive, and
  // stores how many remain in the RedisHealth (live_instances). Runs until stop().
  // One instance calls it once (the gateway: its first worker).
  void start_presence(std::string key, std::string member) override;

  // No shared_ptr copy: read on every check, by every worker.
  const RedisHealth* health() const override { return health_.get(); }

 private:
  // Sends command_ (see AsyncStore::async_renew for `require_one`).
  void exec_command(bool require_one, ResetHandler handler);

  RedisOptions options_;
  std::shared_ptr<RedisHealth> health_;
  std::shared_ptr<redis::NodeSource> nodes_;
  std::shared_ptr<redis::Connection> connection_;
  std::shared_ptr<redis::CheckBatch> batch_;
  std::string command_;  // reused for every command this thread sends
  std::shared_ptr<redis::Presence> presence_;
};

}  // namespace phlow::limiter
