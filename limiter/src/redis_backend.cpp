#include "limiter/redis_backend.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <atomic>
#include <limits>

#include "redis/check_batch.hpp"
#include "redis/check_command.hpp"
#include "redis/check_script.hpp"
#include "redis/connection.hpp"
#include "redis/node_source.hpp"
#include "redis/presence.hpp"
#include "redis/stream.hpp"

namespace phlow::limiter {

using boost::system::error_code;
using redis::Value;

RedisBackend::RedisBackend(boost::asio::any_io_executor executor, RedisOptions options,
                           std::shared_ptr<RedisHealth> health,
                           std::shared_ptr<redis::NodeSource> nodes)
    : options_(std::move(options)), health_(std::move(health)), nodes_(std::move(nodes)) {
  const int id = health_->add_connection();
  connection_ = std::make_shared<redis::Connection>(
      std::move(executor), options_.url, nodes_, redis::make_transport(options_),
      redis::connection_options(options_),
      [health = health_, id](bool up, const std::string& reason) { health->report(id, up, reason); });
  batch_ = std::make_shared<redis::CheckBatch>(connection_, health_, options_.timeout,
                                               nodes_->master_only());
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

void RedisBackend::async_check(std::span<const Descriptor> descriptors, CheckMode mode,
                               CheckHandler handler) {
  batch_->add(descriptors, redis::consume_of(mode), std::move(handler));
}

void RedisBackend::async_reset(std::string_view key, ResetHandler handler) {
  command_.clear();
  redis::CommandWriter(command_, 2).arg("DEL").arg(key);
  exec_command(false, std::move(handler));
}

void RedisBackend::async_release(std::string_view key, std::string_view slot, ResetHandler handler) {
  redis::encode_release(command_, key, slot);
  exec_command(false, std::move(handler));
}

void RedisBackend::async_renew(std::string_view key, std::string_view slot, std::int64_t window_ms,
                               ResetHandler handler) {
  redis::encode_renew(command_, key, slot, window_ms);
  exec_command(true, std::move(handler));
}

void RedisBackend::exec_command(bool require_one, ResetHandler handler) {
  connection_->exec(command_, redis::Clock::now() + options_.timeout,
                    [require_one, h = std::move(handler)](error_code ec, Value v) mutable {
                      if (!ec && v.is_error()) ec = StoreError::server_error;
                      if (!ec && require_one && !(v.type == Value::Type::integer && v.integer == 1)) {
                        ec = StoreError::bad_reply;
                      }
                      std::move(h)(ec);
                    });
}

}  // namespace phlow::limiter
