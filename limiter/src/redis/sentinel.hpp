#pragma once
// Redis Sentinel (redis+sentinel://): the master is whatever the sentinels say,
// asked before every connection attempt (SENTINEL get-master-addr-by-name, trying
// each sentinel in turn, starting with the one that last answered), confirmed by the
// connection with ROLE, and abandoned when a sentinel announces +switch-master for it
// (one subscription per source, to one sentinel at a time).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "redis/node_source.hpp"
#include "redis/stream.hpp"

namespace phlow::limiter::redis {

class SentinelSource final : public NodeSource, public std::enable_shared_from_this<SentinelSource> {
 public:
  // `url` lists the sentinels and names the master; `password` is the sentinels' own
  // (redis.sentinel_password), not the data nodes'.
  SentinelSource(boost::asio::any_io_executor executor, RedisUrl url, Transport transport,
                 std::string password, std::chrono::milliseconds timeout);

  boost::asio::awaitable<Located> locate() override;
  bool master_only() const override { return true; }
  void watch(std::function<void(const std::string& why)> abandon) override;
  void stop() override;

 private:
  boost::asio::awaitable<void> subscribe_loop(std::shared_ptr<SentinelSource> self);
  // Listens on one sentinel until the connection ends; "" never (returns why it ended).
  boost::asio::awaitable<std::string> listen(const RedisNode& sentinel);
  std::string command_prefix() const;  // AUTH <password>, when there is one

  boost::asio::any_io_executor executor_;
  RedisUrl url_;
  Transport transport_;
  std::string password_;
  std::chrono::milliseconds timeout_;
  std::size_t first_ = 0;  // the sentinel that answered last
  std::function<void(const std::string&)> abandon_;
  std::shared_ptr<Stream> subscription_;
  boost::asio::steady_timer retry_;
  bool stopped_ = false;
};

}  // namespace phlow::limiter::redis
