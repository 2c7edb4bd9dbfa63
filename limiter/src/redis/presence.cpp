#include "redis/presence.hpp"

#include <algorithm>
#include <limits>

#include "limiter/redis_backend.hpp"

namespace phlow::limiter::redis {

namespace {

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

Presence::Presence(boost::asio::any_io_executor executor,
                   std::function<std::shared_ptr<Connection>()> connection_for_key,
                   std::shared_ptr<RedisHealth> health, std::string key, std::string member,
                   std::chrono::milliseconds timeout)
    : connection_for_key_(std::move(connection_for_key)),
      health_(std::move(health)),
      key_(std::move(key)),
      member_(std::move(member)),
      timeout_(timeout),
      timer_(std::move(executor)) {}

void Presence::stop() {
  stopped_ = true;
  timer_.cancel();
}

void Presence::tick() {
  if (stopped_) return;
  if (auto connection = connection_for_key_(); connection && connection->ready()) {
    command_.clear();
    CommandWriter(command_, 6)
        .arg("EVAL").arg(kPresenceScript).arg(1).arg(key_).arg(member_).arg(kPresenceLive.count());
    connection->exec(command_, Clock::now() + timeout_,
                     [self = shared_from_this()](boost::system::error_code ec, Value v) {
                       if (ec || v.type != Value::Type::integer || v.integer < 1) return;
                       constexpr std::int64_t kMax = std::numeric_limits<std::uint32_t>::max();
                       self->health_->set_live_instances(
                           static_cast<std::uint32_t>(std::min(v.integer, kMax)));
                     });
  }
  timer_.expires_after(kPresenceInterval);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->tick();
  });
}

}  // namespace phlow::limiter::redis
