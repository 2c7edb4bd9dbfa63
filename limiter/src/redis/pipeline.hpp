#pragma once
// The commands of one Redis connection in flight, without the socket: bytes queued for
// the next write, replies parsed from the bytes read and matched to their commands in
// order, and the deadlines. The connection (connection.hpp) moves bytes between it and
// its stream; the tests drive it with bytes and clock values alone.

#include <memory>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "limiter/store_error.hpp"
#include "redis/resp.hpp"

namespace phlow::limiter::redis {

class Pipeline {
 public:
  using Clock = std::chrono::steady_clock;
  using Handler = boost::asio::any_completion_handler<void(boost::system::error_code, Value)>;
  // Runs a finished command's handler (the connection posts it to its executor).
  using Completer = std::function<void(Handler, boost::system::error_code, Value)>;

  explicit Pipeline(Completer complete);
  // Replies that match no command (pub/sub messages) go to `on_push` instead of
  // failing the connection. For a subscriber connection.
  void set_push_handler(std::function<void(Value)> on_push) { on_push_ = std::move(on_push); }
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Starts over for a new connection: nothing queued, nothing pending, a fresh parser.
  // Commands still pending fail with `reason`.
  void reset(StoreError reason);

  // Queues `command` (RESP bytes), answered by the next reply not yet matched.
  void push(std::string_view command, Clock::time_point deadline, Clock::time_point now,
            Handler handler);
  bool has_output() const { return !out_.empty(); }
  // Moves the queued bytes into `into` (its old content is dropped).
  void take_output(std::string& into);

  // Parses bytes from Redis; completes the commands whose replies are whole. False on
  // a protocol error, a reply nobody asked for (without a push handler), or a reply
  // over kMaxReplyBytes: the connection must then be closed.
  bool feed(const char* data, std::size_t size);

  enum class Expiry {
    none,     // nothing to do, or commands past their deadline failed alone (timeout)
    stalled,  // the oldest command waited `stall` for its reply: close the connection
    late,     // before ready: a handshake command missed its deadline: close
  };
  struct Expired {
    Expiry expiry = Expiry::none;
    Clock::time_point next = Clock::time_point::max();  // when to call expire() again
  };
  // Fails the commands whose deadline passed (when `ready`), and says whether the
  // connection must be closed.
  Expired expire(Clock::time_point now, bool ready, std::chrono::milliseconds stall);

  std::size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    Handler handler;  // empty once the command failed its deadline
    Clock::time_point deadline;
    Clock::time_point sent;
  };

  Completer complete_;
  std::function<void(Value)> on_push_;
  std::unique_ptr<ValueReader> reader_;  // replaced whole by reset()
  std::string out_;
  std::deque<Pending> pending_;
};

}  // namespace phlow::limiter::redis
