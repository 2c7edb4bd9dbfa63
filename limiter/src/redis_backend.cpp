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
#include "redis/presence.hpp"
#include "redis/stream.hpp"

namespace phlow::limiter {

using boost::system::error_code;
using redis::Value;
using redis::encode_check;
using redis::parse_check;

namespace {

void finish_check(error_code ec, const Value& v, std::span<const Descriptor> descriptors,
                  RedisBackend::CheckHandler handler) {
  Decision d;
  if (!ec) ec = redis::read_check_reply(v, descriptors, d);
  std::move(handler)(ec, d);
}

}  // namespace

RedisBackend::RedisBackend(boost::asio::any_io_executor executor, RedisOptions options,
                           std::shared_ptr<RedisHealth> health,
                           std::shared_ptr<redis::NodeSource> nodes)
    : options_(std::move(options)), health_(std::move(health)), nodes_(std::move(nodes)) {
  const int id = health_->add_connection();
  connection_ = std::make_shared<redis::Connection>(
      std::move(executor), options_.url, nodes_, redis::make_transport(options_),
      std::string(redis::kCheckScript), redis::connection_options(options_),
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
  if (presence_) presence_->stop();
  connection_->stop();
}

void RedisBackend::start_presence(std::string key, std::string member) {
  if (presence_) return;
  presence_ = std::make_shared<redis::Presence>(
      connection_->executor(), [connection = connection_] { return connection; }, health_,
      std::move(key), std::move(member), options_.timeout);
  presence_->start();
}

bool RedisBackend::ready() const { return connection_->ready(); }

void RedisBackend::async_check(std::span<const Descriptor> descriptors, bool consume,
                               CheckHandler handler) {
  const auto deadline = redis::Clock::now() + options_.timeout;
  encode_check(command_, true, connection_->script_sha(), descriptors,
               consume ? redis::Consume::yes : redis::Consume::no);
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
          encode_check(command, false, redis::kCheckScript, descriptors,
                       consume ? redis::Consume::yes : redis::Consume::no);
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
