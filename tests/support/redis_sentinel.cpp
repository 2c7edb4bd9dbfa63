#include "support/redis_sentinel.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace phlow::test {

namespace {

// "... key:value ..." -> value, from an INFO reply.
std::string info_field(const std::string& info, const std::string& key) {
  const auto at = info.find(key + ":");
  if (at == std::string::npos) return {};
  const auto start = at + key.size() + 1;
  return info.substr(start, info.find_first_of("\r\n", start) - start);
}

}  // namespace

SentinelSet::SentinelSet(std::string sentinel_password) {
  char pattern[] = "/tmp/phlow-sentinel-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("SentinelSet: mkdtemp failed");
  dir_ = pattern;
  first_ = std::make_unique<RedisServer>();
  second_ = std::make_unique<RedisServer>(
      std::vector<std::string>{"--replicaof", "127.0.0.1", std::to_string(first_->port())});
  for (int i = 0; i < 3; ++i) {
    const std::string conf = dir_ + "/sentinel-" + std::to_string(i) + ".conf";
    std::ofstream(conf) << "sentinel monitor " << kMaster << " 127.0.0.1 " << first_->port() << " 2\n"
                        << "sentinel down-after-milliseconds " << kMaster << " 1000\n"
                        << "sentinel failover-timeout " << kMaster << " 4000\n"
                        << "sentinel parallel-syncs " << kMaster << " 1\n";
    std::vector<std::string> args{"--sentinel"};
    if (!sentinel_password.empty()) {
      std::ofstream(conf, std::ios::app) << "sentinel sentinel-pass " << sentinel_password << "\n";
      args.insert(args.end(), {"--requirepass", sentinel_password});
    }
    sentinels_.push_back(std::make_unique<RedisServer>(conf, args));
  }
  wait_ready();
}

SentinelSet::~SentinelSet() {
  sentinels_.clear();
  second_.reset();
  first_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string SentinelSet::url(std::string_view scheme, std::string_view userinfo) const {
  std::string out = std::string(scheme) + "://";
  if (!userinfo.empty()) out.append(userinfo).push_back('@');
  for (std::size_t i = 0; i < sentinels_.size(); ++i) {
    if (i) out += ',';
    out += "127.0.0.1:" + std::to_string(sentinels_[i]->port());
  }
  return out + "/" + std::string(kMaster);
}

std::uint16_t SentinelSet::master_port() const {
  for (const auto& s : sentinels_) {
    if (!s->running()) continue;
    try {
      const std::string reply = s->command({"SENTINEL", "get-master-addr-by-name", std::string(kMaster)});
      const auto space = reply.find(' ');
      if (space != std::string::npos) return static_cast<std::uint16_t>(std::stoi(reply.substr(space + 1)));
    } catch (const std::exception&) {
    }
  }
  return 0;
}

RedisServer& SentinelSet::current_master() {
  return master_port() == second_->port() ? *second_ : *first_;
}

RedisServer& SentinelSet::current_replica() {
  return master_port() == second_->port() ? *first_ : *second_;
}

bool SentinelSet::wait_for_new_master(std::uint16_t old_port, std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    const std::uint16_t port = master_port();
    if (port != 0 && port != old_port) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

void SentinelSet::wait_ready() const {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < end) {
    bool ready = info_field(second_->command({"INFO", "replication"}), "master_link_status") == "up";
    for (const auto& s : sentinels_) {
      if (!ready) break;
      const std::string master = s->command({"SENTINEL", "master", std::string(kMaster)});
      // The reply is a flat list "name mymaster ip ... num-slaves 1 ... num-other-sentinels 2 ...".
      ready = master.find("num-slaves 1") != std::string::npos &&
              master.find("num-other-sentinels 2") != std::string::npos;
    }
    if (ready) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("SentinelSet: the sentinels did not see the replica and each other in 20 s");
}

}  // namespace phlow::test
