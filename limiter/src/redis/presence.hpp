#pragma once
// Presence: every kPresenceInterval while connected, one instance adds itself to the
// sorted set `key` scored by the Redis server's time, drops members older than
// kPresenceLive, and stores how many remain in the RedisHealth (live_instances).
// Shared by the stores: each says which connection serves the key.

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "limiter/redis_health.hpp"
#include "redis/connection.hpp"

namespace phlow::limiter::redis {

// Owned by its store and by its pending timer and command, so that a stop() with
// either in flight leaves nothing dangling.
class Presence : public std::enable_shared_from_this<Presence> {
 public:
  // `connection_for_key` returns the connection that serves `key` now (or null).
  Presence(boost::asio::any_io_executor executor,
           std::function<std::shared_ptr<Connection>()> connection_for_key,
           std::shared_ptr<RedisHealth> health, std::string key, std::string member,
           std::chrono::milliseconds timeout);

  void start() { tick(); }
  void stop();

 private:
  void tick();

  std::function<std::shared_ptr<Connection>()> connection_for_key_;
  std::shared_ptr<RedisHealth> health_;
  std::string key_;
  std::string member_;
  std::chrono::milliseconds timeout_;
  boost::asio::steady_timer timer_;
  std::string command_;
  bool stopped_ = false;
};

}  // namespace phlow::limiter::redis
