#include "limiter/redis_backend.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>

#include "redis/check_command.hpp"
#include "redis/check_script.hpp"
#include "redis/connection.hpp"

namespace phlow::limiter {

using boost::system::error_code;
using redis::errc;
using redis::Value;
using redis::encode_check;
using redis::parse_check;

namespace {

// Redis errors (-OOM, -LOADING, ...) come per check; say so at most every 10 s.
void log_server_error(const std::string& message) {
  static std::atomic<std::int64_t> last_ms{0};
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          redis::Clock::now().time_since_epoch()).count();
  std::int64_t last = last_ms.load();
  if (now_ms - last < 10'000 || !last_ms.compare_exchange_strong(last, now_ms)) return;
  spdlog::warn("Redis answered a limit check with an error: {}", message.substr(0, 200));
}

void finish_check(error_code ec, const Value& v, std::span<const Descriptor> descriptors,
                  RedisBackend::CheckHandler handler) {
  Decision d;
  if (!ec && v.is_error()) {
    log_server_error(v.str);
    ec = errc::server_error;
  } else if (!ec && !parse_check(v, descriptors, d)) {
    ec = errc::bad_reply;
  }
  std::move(handler)(ec, d);
}

}  // namespace

RedisBackend::RedisBackend(boost::asio::any_io_executor executor, RedisOptions options,
                           std::shared_ptr<RedisHealth> health)
    : options_(std::move(options)), health_(std::move(health)) {
  const int id = health_->add_connection();
  redis::ConnectionOptions copts;
  copts.connect_timeout = options_.connect_timeout;
  copts.stall_timeout = std::max(kStallDeadlines * options_.timeout, kMinStall);
  connection_ = std::make_shared<redis::Connection>(
      std::move(executor), options_.url, std::string(redis::kCheckScript), copts,
      [health = health_, id](bool up, const std::string& reason) { health->report(id, up, reason); });
}

RedisBackend::~RedisBackend() { stop(); }

void RedisBackend::start() { connection_->start(); }
void RedisBackend::stop() { connection_->stop(); }
bool RedisBackend::ready() const { return connection_->ready(); }

void RedisBackend::async_check(std::span<const Descriptor> descriptors, bool consume,
                               CheckHandler handler) {
  const auto deadline = redis::Clock::now() + options_.timeout;
  encode_check(command_, true, connection_->script_sha(), descriptors, consume);
  connection_->exec(
      command_, deadline,
      [conn = connection_, descriptors, consume, deadline, h = std::move(handler)](
          error_code ec, Value v) mutable {
        if (!ec && v.is_error() && v.str.starts_with("NOSCRIPT")) {
          // The script cache was flushed (restart, SCRIPT FLUSH): EVAL reloads it.
          std::string command;
          encode_check(command, false, redis::kCheckScript, descriptors, consume);
          conn->exec(command, deadline,
                     [descriptors, h = std::move(h)](error_code ec2, Value v2) mutable {
                       finish_check(ec2, v2, descriptors, std::move(h));
                     });
          return;
        }
        finish_check(ec, v, descriptors, std::move(h));
      });
}

void RedisBackend::async_reset(std::string_view key, ResetHandler handler) {
  command_.clear();
  redis::CommandWriter(command_, 2).arg("DEL").arg(key);
  connection_->exec(command_, redis::Clock::now() + options_.timeout,
                    [h = std::move(handler)](error_code ec, Value v) mutable {
                      if (!ec && v.is_error()) ec = errc::server_error;
                      std::move(h)(ec);
                    });
}

}  // namespace phlow::limiter
