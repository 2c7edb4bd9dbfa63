#pragma once
// A stand-in Redis for unit tests of the client alone: answers the handshake like a
// real server (with a chosen version: FUNCTION LOAD from 7.0 on) and every call of the
// check code (FCALL, EVALSHA, EVAL) with a chosen raw reply,
// so that malformed and hostile replies can be sent. Real behaviour is tested against
// redis-server (support/redis_server.hpp).

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace phlow::test {

class FakeRedis {
 public:
  FakeRedis(std::string version, std::string eval_reply);
  ~FakeRedis();
  FakeRedis(const FakeRedis&) = delete;
  FakeRedis& operator=(const FakeRedis&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  int evals_seen() const { return evals_.load(); }  // calls of the check code
  int fcalls_seen() const { return fcalls_.load(); }  // of them, by FCALL

 private:
  void serve();
  void serve_connection(int fd);
  std::string answer(const std::string& command) const;

  std::string version_;
  std::string eval_reply_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> evals_{0};
  std::atomic<int> fcalls_{0};
  std::thread thread_;
  std::vector<std::thread> connections_;  // touched by thread_ until it is joined
};

}  // namespace phlow::test
