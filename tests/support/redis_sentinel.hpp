#pragma once
// A real Sentinel setup on loopback: a master, one replica and three sentinels
// (quorum 2, down-after 1000 ms), each a redis-server process owned by the fixture.
// Ready when the replica is in sync and every sentinel knows the replica and the two
// other sentinels, so that a failover can start at once.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/redis_server.hpp"

namespace phlow::test {

class SentinelSet {
 public:
  // `sentinel_password`: the sentinels require it (of clients and of each other).
  explicit SentinelSet(std::string sentinel_password = "");
  ~SentinelSet();
  SentinelSet(const SentinelSet&) = delete;
  SentinelSet& operator=(const SentinelSet&) = delete;

  static constexpr std::string_view kMaster = "mymaster";

  // redis+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/mymaster
  std::string url(std::string_view scheme = "redis+sentinel", std::string_view userinfo = "") const;
  // The data node the sentinels call master now (by port), and the other one.
  RedisServer& current_master();
  RedisServer& current_replica();
  // Waits (`timeout` at most) until the sentinels name a master other than the one on
  // `old_port`; returns when they did, or nothing.
  bool wait_for_new_master(std::uint16_t old_port, std::chrono::milliseconds timeout);
  std::vector<std::unique_ptr<RedisServer>>& sentinels() { return sentinels_; }

 private:
  std::uint16_t master_port() const;  // as the first live sentinel says
  void wait_ready() const;

  std::string dir_;
  std::unique_ptr<RedisServer> first_;   // master at start
  std::unique_ptr<RedisServer> second_;  // replica at start
  std::vector<std::unique_ptr<RedisServer>> sentinels_;
};

}  // namespace phlow::test
