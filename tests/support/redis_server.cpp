#include "support/redis_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace phlow::test {

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("free_port: cannot bind");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

RedisServer::RedisServer(std::vector<std::string> extra_args)
    : RedisServer(std::string(), std::move(extra_args)) {}

RedisServer::RedisServer(std::string config_file, std::vector<std::string> extra_args,
                         std::uint16_t port)
    : port_(port != 0 ? port : free_port()), extra_args_(std::move(extra_args)), config_file_(std::move(config_file)) {
  for (std::size_t i = 0; i + 1 < extra_args_.size(); ++i) {
    if (extra_args_[i] == "--requirepass") password_ = extra_args_[i + 1];
  }
  start();
}

RedisServer::~RedisServer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGCONT);
    kill();
  }
}

std::string RedisServer::url(std::string_view userinfo, std::string_view path) const {
  std::string out = "redis://";
  if (!userinfo.empty()) out.append(userinfo).push_back('@');
  return out + "127.0.0.1:" + std::to_string(port_) + std::string(path);
}

void RedisServer::start() {
  if (pid_ > 0) return;
  std::vector<std::string> args = {"redis-server"};
  if (!config_file_.empty()) args.push_back(config_file_);
  args.insert(args.end(), {"--port", std::to_string(port_),
                                   "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                   "--daemonize", "no", "--loglevel", "warning"});
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      ::dup2(devnull, STDOUT_FILENO);
      ::dup2(devnull, STDERR_FILENO);
    }
    ::execvp("redis-server", argv.data());
    ::_exit(127);
  }
  if (pid_ < 0) throw std::runtime_error("fork failed");
  wait_ready();
}

void RedisServer::kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void RedisServer::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  ::kill(pid_, SIGTERM);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void RedisServer::pause() { ::kill(pid_, SIGSTOP); }
void RedisServer::resume() { ::kill(pid_, SIGCONT); }

void RedisServer::wait_ready() const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (command({"PING"}) == "PONG") return;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  throw std::runtime_error("redis-server did not start on port " + std::to_string(port_));
}

namespace {

std::string to_text(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
    case REDIS_REPLY_NIL: return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::string out;
      for (std::size_t i = 0; i < r->elements; ++i) {
        if (i) out += ' ';
        out += to_text(r->element[i]);
      }
      return out;
    }
    default: return std::string(r->str, r->len);
  }
}

}  // namespace

std::string RedisServer::command(const std::vector<std::string>& args) const {
  timeval tv{1, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    throw std::runtime_error("cannot connect to test redis");
  }
  redisSetTimeout(c, tv);
  auto run = [&](const std::vector<std::string>& argv_strings) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : argv_strings) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (reply == nullptr) throw std::runtime_error("test redis did not answer");
    std::string text = to_text(reply);
    freeReplyObject(reply);
    return text;
  };
  std::string result;
  try {
    if (!password_.empty()) run({"AUTH", password_});
    result = run(args);
  } catch (...) {
    redisFree(c);
    throw;
  }
  redisFree(c);
  return result;
}

}  // namespace phlow::test
