#include "support/redis_cluster.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace phlow::test {

namespace {

// A free port whose cluster bus port (+10000) is free too: 55535 at most.
std::uint16_t free_cluster_port() {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::uint16_t port = free_port();
    if (port > 55535) continue;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port + 10000));
    const bool bus_free = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (fd >= 0) ::close(fd);
    if (bus_free) return port;
  }
  throw std::runtime_error("ClusterSet: no free port pair");
}

}  // namespace

ClusterSet::ClusterSet() {
  char pattern[] = "/tmp/phlow-cluster-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("ClusterSet: mkdtemp failed");
  dir_ = pattern;
  try {
    for (int i = 0; i < 6; ++i) {
      nodes_.push_back(std::make_unique<RedisServer>(
          std::string(),
          std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file",
                                   dir_ + "/nodes-" + std::to_string(i) + ".conf",
                                   "--cluster-node-timeout", "2000", "--dir", dir_,
                                   // A replica syncs at once, not after the 5 s default
                                   // wait: it can take over only once it has synced.
                                   "--repl-diskless-sync-delay", "0"},
          free_cluster_port()));
    }
    std::string create = "redis-cli --cluster create";
    for (const auto& node : nodes_) create += " 127.0.0.1:" + std::to_string(node->port());
    create += " --cluster-replicas 1 --cluster-yes >/dev/null 2>&1";
    if (std::system(create.c_str()) != 0) throw std::runtime_error("ClusterSet: redis-cli --cluster create failed");
    if (!wait_ok(20)) throw std::runtime_error("ClusterSet: the cluster did not reach cluster_state:ok in 20 s");
    if (!wait_replicas_synced(20)) throw std::runtime_error("ClusterSet: the replicas did not sync in 20 s");
  } catch (...) {
    nodes_.clear();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
    throw;
  }
}

ClusterSet::~ClusterSet() {
  nodes_.clear();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string ClusterSet::url() const {
  return "redis+cluster://127.0.0.1:" + std::to_string(nodes_[0]->port()) + ",127.0.0.1:" +
         std::to_string(nodes_[1]->port());
}

RedisServer& ClusterSet::master_of(std::string_view key) {
  for (auto& node : nodes_) {
    if (!node->running()) continue;
    try {
      const std::string reply = node->command({"EXISTS", std::string(key)});
      if (reply == "0" || reply == "1") {
        // A replica answers reads it is not asked for only with READONLY; without it, it
        // redirects, so a direct answer comes from the master.
        return *node;
      }
    } catch (const std::exception&) {
    }
  }
  throw std::runtime_error("ClusterSet: no master serves " + std::string(key));
}

std::string ClusterSet::id_of(const RedisServer& node) { return node.command({"CLUSTER", "MYID"}); }

bool ClusterSet::wait_replicas_synced(int seconds) const {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    int synced = 0;
    for (const auto& node : nodes_) {
      const std::string info = node->command({"INFO", "replication"});
      if (info.find("role:slave") != std::string::npos &&
          info.find("master_link_status:up") != std::string::npos) {
        ++synced;
      }
    }
    if (synced == 3) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool ClusterSet::wait_ok(int seconds, std::string_view key) const {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    bool ok = true;
    int masters_for_key = 0;
    for (const auto& node : nodes_) {
      if (!node->running()) continue;
      try {
        ok = ok && node->command({"CLUSTER", "INFO"}).find("cluster_state:ok") != std::string::npos;
        const std::string reply = node->command({"EXISTS", std::string(key)});
        if (reply == "0" || reply == "1") ++masters_for_key;
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (ok && masters_for_key == 1) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace phlow::test
