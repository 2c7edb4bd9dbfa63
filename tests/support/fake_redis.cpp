#include "support/fake_redis.hpp"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

#include "redis/check_script.hpp"

namespace phlow::test {

FakeRedis::FakeRedis(std::string version, std::string eval_reply)
    : version_(std::move(version)), eval_reply_(std::move(eval_reply)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("FakeRedis: cannot listen");
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { serve(); });
}

FakeRedis::~FakeRedis() {
  stop_ = true;
  thread_.join();
  for (auto& t : connections_) t.join();
  ::close(listen_fd_);
}

void FakeRedis::serve() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd >= 0) connections_.emplace_back([this, fd] { serve_connection(fd); });
  }
}

// Each connection on its own thread: a gateway holds one per worker plus the admin's.
void FakeRedis::serve_connection(int fd) {
  redisReader* reader = redisReaderCreate();
  char buffer[16384];
  while (!stop_) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    redisReaderFeed(reader, buffer, static_cast<std::size_t>(n));
    void* raw = nullptr;
    std::string out;
    while (redisReaderGetReply(reader, &raw) == REDIS_OK && raw != nullptr) {
      auto* command = static_cast<redisReply*>(raw);
      if (command->type == REDIS_REPLY_ARRAY && command->elements > 0) {
        out += answer(std::string(command->element[0]->str, command->element[0]->len));
      }
      freeReplyObject(command);
    }
    if (!out.empty() && ::write(fd, out.data(), out.size()) < 0) break;
  }
  redisReaderFree(reader);
  ::close(fd);
}

std::string FakeRedis::answer(const std::string& command) const {
  if (command == "INFO") {
    const std::string info = "# Server\r\nredis_version:" + version_ + "\r\n";
    return "$" + std::to_string(info.size()) + "\r\n" + info + "\r\n";
  }
  if (command == "SCRIPT") return "$40\r\n" + std::string(40, 'a') + "\r\n";
  if (command == "FUNCTION") {  // LOAD, from 7.0 on; older servers do not know it
    if (version_ < "7") return "-ERR unknown command 'FUNCTION'\r\n";
    const std::string_view name = phlow::limiter::redis::kCheckLibraryName;
    return "$" + std::to_string(name.size()) + "\r\n" + std::string(name) + "\r\n";
  }
  if (command == "EVALSHA" || command == "EVAL" || command == "FCALL") {
    const_cast<std::atomic<int>&>(evals_)++;
    if (command == "FCALL") const_cast<std::atomic<int>&>(fcalls_)++;
    return eval_reply_;
  }
  return "+OK\r\n";
}

}  // namespace phlow::test
