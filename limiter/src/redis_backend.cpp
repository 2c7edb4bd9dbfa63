#include "limiter/redis_backend.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <limits>

#include "redis/check_command.hpp"
#include "redis/check_script.hpp"
#include "redis/connection.hpp"
#include "redis/node_source.hpp"
#include "redis/stream.hpp"

namespace phlow::limiter {

using boost::system::error_code;
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
    ec = StoreError::server_error;
  } else if (!ec && !parse_check(v, descriptors, d)) {
    ec = StoreError::bad_reply;
  }
  std::move(handler)(ec, d);
}

// KEYS[1] the presence set, ARGV[1] this instance, ARGV[2] kPresenceLive in ms.
// Returns the number of instances seen within kPresenceLive, this one included.
constexpr std::string_view kPresenceScript = R"lua(
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - live)
redis.call('PEXPIRE', KEYS[1], live)
return redis.call('ZCARD', KEYS[1])
)lua";

}  // namespace

// Owned by the backend and by its pending timer and command, so that a stop() with
// either in flight leaves nothing dangling.
struct RedisBackend::Presence : std::enable_shared_from_this<Presence> {
  Presence(std::shared_ptr<redis::Connection> c, std::shared_ptr<RedisHealth> h, std::string k,
           std::string m, std::chrono::milliseconds t)
      : connection(std::move(c)), health(std::move(h)), key(std::move(k)), member(std::move(m)),
        timeout(t), timer(connection->executor()) {}

  void tick() {
    if (stopped) return;
    if (connection->ready()) {
      command.clear();
      redis::CommandWriter(command, 6)
          .arg("EVAL").arg(kPresenceScript).arg(1).arg(key).arg(member).arg(kPresenceLive.count());
      connection->exec(command, redis::Clock::now() + timeout,
                       [self = shared_from_this()](error_code ec, Value v) {
                         if (ec || v.type != Value::Type::integer || v.integer < 1) return;
                         constexpr std::int64_t kMax = std::numeric_limits<std::uint32_t>::max();
                         self->health->set_live_instances(
                             static_cast<std::uint32_t>(std::min(v.integer, kMax)));
                       });
    }
    timer.expires_after(kPresenceInterval);
    timer.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->tick();
    });
  }

  std::shared_ptr<redis::Connection> connection;
  std::shared_ptr<RedisHealth> health;
  std::string key;
  std::string member;
  std::chrono::milliseconds timeout;
  boost::asio::steady_timer timer;
  std::string command;
  bool stopped = false;
};

RedisBackend::RedisBackend(boost::asio::any_io_executor executor, RedisOptions options,
                           std::shared_ptr<RedisHealth> health,
                           std::shared_ptr<redis::NodeSource> nodes)
    : options_(std::move(options)), health_(std::move(health)), nodes_(std::move(nodes)) {
  const int id = health_->add_connection();
  redis::ConnectionOptions copts;
  copts.connect_timeout = options_.connect_timeout;
  copts.stall_timeout = std::max(kStallDeadlines * options_.timeout, kMinStall);
  connection_ = std::make_shared<redis::Connection>(
      std::move(executor), options_.url, nodes_, redis::make_transport(options_),
      std::string(redis::kCheckScript), copts,
      [health = health_, id](bool up, const std::string& reason) { health->report(id, up, reason); });
}

RedisBackend::~RedisBackend() { stop(); }

void RedisBackend::start() {
  connection_->start();
  nodes_->watch([weak = std::weak_ptr<redis::Connection>(connection_)](const std::string& why) {
    if (auto connection = weak.lock()) connection->reconnect(why);
  });
}

void RedisBackend::stop() {
  nodes_->stop();
  if (presence_) {
    presence_->stopped = true;
    presence_->timer.cancel();
  }
  connection_->stop();
}

void RedisBackend::start_presence(std::string key, std::string member) {
  if (presence_) return;
  presence_ = std::make_shared<Presence>(connection_, health_, std::move(key), std::move(member),
                                         options_.timeout);
  presence_->tick();
}

bool RedisBackend::ready() const { return connection_->ready(); }

void RedisBackend::async_check(std::span<const Descriptor> descriptors, bool consume,
                               CheckHandler handler) {
  const auto deadline = redis::Clock::now() + options_.timeout;
  encode_check(command_, true, connection_->script_sha(), descriptors, consume);
  connection_->exec(
      command_, deadline,
      [conn = connection_, find_master = nodes_->master_only(), descriptors, consume, deadline,
       h = std::move(handler)](error_code ec, Value v) mutable {
        if (find_master && !ec && v.is_error() && v.str.starts_with("READONLY")) {
          // A replica now (a failover the source has not announced yet): find the
          // master again. This check goes to the failure policy.
          conn->reconnect("Redis answered READONLY: the node is a replica now");
        }
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
                      if (!ec && v.is_error()) ec = StoreError::server_error;
                      std::move(h)(ec);
                    });
}

}  // namespace phlow::limiter
