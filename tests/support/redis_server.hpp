#pragma once
// A real redis-server on a free loopback port, owned by one test.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace phlow::test {

// Returns a TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

class RedisServer {
 public:
  // Starts redis-server (no persistence) and waits until it answers PING.
  // `extra_args` go on its command line ("--requirepass", "secret", ...).
  explicit RedisServer(std::vector<std::string> extra_args = {});
  // With `config_file` first on the command line (a Sentinel: its file, "--sentinel"),
  // on `port` (0: a free one).
  RedisServer(std::string config_file, std::vector<std::string> extra_args, std::uint16_t port = 0);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const { return port_; }
  // redis://[userinfo@]127.0.0.1:<port><path>, e.g. url(":secret", "/2").
  std::string url(std::string_view userinfo = "", std::string_view path = "") const;

  void kill();     // SIGKILL, and reap
  void stop();     // SIGTERM (a clean shutdown: an append-only file is flushed), and reap
  void start();    // again, on the same port and arguments (empty unless they persist)
  void pause();    // SIGSTOP: accepts connections, never answers
  void resume();   // SIGCONT
  bool running() const { return pid_ > 0; }

  // Runs one command through a blocking connection; returns the reply as text
  // (integers in decimal, arrays joined with ' ', nil as "(nil)").
  std::string command(const std::vector<std::string>& args) const;

 private:
  void wait_ready() const;

  std::uint16_t port_;
  std::vector<std::string> extra_args_;
  std::string config_file_;
  pid_t pid_ = -1;
  std::string password_;
};

// The units a sliding_log key holds in its window, as text ("0" for none): minus the
// score of its "#" member (entries carry their units; one entry may hold several
// requests of one script call). `redis`: anything with command() (a server, a cluster).
template <class Redis>
std::string log_units(Redis&& redis, const std::string& key) {
  const std::string total = redis.command({"ZSCORE", key, "#"});
  if (total == "(nil)") return "0";
  return std::to_string(-std::stoll(total));
}

// How many times the server ran `command` ("fcall", "evalsha", ...: lower case), from
// INFO commandstats (a call refused before it ran, e.g. NOPERM, counts as none).
template <class Redis>
std::int64_t command_calls(Redis&& redis, const std::string& command) {
  const std::string stats = redis.command({"INFO", "commandstats"});
  const std::string field = "cmdstat_" + command + ":calls=";
  const auto at = stats.find(field);
  return at == std::string::npos ? 0 : std::stoll(stats.substr(at + field.size()));
}

}  // namespace phlow::test
