#pragma once
// Batching of limit checks on one connection: the checks a worker issues in one turn
// of its event loop go to Redis as ONE call of the check script, which decides them
// one after the other (each still atomic and exact, as if it had come alone; the
// server clock read once) - one write, one reply, one script run for many requests.
//
// When nothing is in flight on the connection, a check is sent at once (an idle
// gateway adds no wait). Otherwise it waits for the end of the current loop turn (the
// handlers already queued on the worker), or until kMaxChecks are waiting (or one more
// would make the reply longer than kMaxReplyElements).
// One per RedisBackend; on its executor only.

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "limiter/async_store.hpp"
#include "limiter/redis_health.hpp"
#include "redis/check_command.hpp"
#include "redis/connection.hpp"

namespace phlow::limiter::redis {

class CheckBatch : public std::enable_shared_from_this<CheckBatch> {
 public:
  static constexpr std::size_t kMaxChecks = 64;
  using CheckHandler = AsyncStore::CheckHandler;

  // `master_only`: a READONLY reply means the node became a replica (Sentinel):
  // reconnect to find the master again.
  CheckBatch(std::shared_ptr<Connection> connection, std::shared_ptr<RedisHealth> health,
             std::chrono::milliseconds timeout, bool master_only);

  // Queues one check (its descriptors must stay alive until `handler` runs).
  void add(std::span<const Descriptor> descriptors, Consume consume, CheckHandler handler);

 private:
  struct Calls {  // checks sent (or to be sent) in one script call
    std::vector<CheckArgs> args;
    std::vector<CheckHandler> handlers;
    Clock::time_point deadline;
    std::size_t reply_size = 1;
  };
  using CallsPtr = std::unique_ptr<Calls>;

  void flush();
  void send(CallsPtr calls, ScriptForm form);
  void finish(CallsPtr calls, boost::system::error_code ec, const Value& reply);
  CallsPtr take_spare();

  std::shared_ptr<Connection> connection_;
  std::shared_ptr<RedisHealth> health_;
  std::chrono::milliseconds timeout_;
  bool master_only_;
  CallsPtr open_;                  // checks waiting for the end of the turn
  std::vector<CallsPtr> spare_;    // emptied Calls, their capacity kept
  std::size_t in_flight_ = 0;      // script calls sent, not answered yet
  bool flush_posted_ = false;
  std::string command_;            // reused for every call
};

}  // namespace phlow::limiter::redis
