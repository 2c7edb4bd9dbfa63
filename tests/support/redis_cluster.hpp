#pragma once
// A real Redis Cluster on loopback: 3 masters and 3 replicas (redis-server
// --cluster-enabled, joined by `redis-cli --cluster create`), node timeout 2000 ms,
// ready when every node says cluster_state:ok. Each node a process owned by the
// fixture, on its own free port.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/redis_server.hpp"

namespace phlow::test {

class ClusterSet {
 public:
  ClusterSet();
  ~ClusterSet();
  ClusterSet(const ClusterSet&) = delete;
  ClusterSet& operator=(const ClusterSet&) = delete;

  // redis+cluster://127.0.0.1:<first>,127.0.0.1:<second> (two seed nodes).
  std::string url() const;
  std::vector<std::unique_ptr<RedisServer>>& nodes() { return nodes_; }
  // The running node that serves `key` as master now (it answers without -MOVED).
  RedisServer& master_of(std::string_view key);
  // `args` (a key command: args[1] is the key) on the master of that key.
  std::string command(const std::vector<std::string>& args) { return master_of(args.at(1)).command(args); }
  // The node's cluster id (CLUSTER MYID).
  static std::string id_of(const RedisServer& node);
  // Waits (`seconds` at most) until every running node says cluster_state:ok and
  // agrees on who serves `key`; false when not.
  bool wait_ok(int seconds, std::string_view key = "probe") const;
  // Waits (`seconds` at most) until the three replicas have synced with their masters.
  bool wait_replicas_synced(int seconds) const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace phlow::test
