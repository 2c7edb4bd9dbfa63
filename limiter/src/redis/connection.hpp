#pragma once
// One pipelined connection to Redis on an Asio executor. Reconnects by itself with
// backoff until stop(). Every command has a deadline; a command that misses it fails
// alone (its late reply is read and dropped). The connection is closed, and Redis
// treated as down, once the oldest command has had no reply for `stall_timeout`.

#include <hiredis/read.h>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "limiter/redis_url.hpp"
#include "redis/resp.hpp"

namespace phlow::limiter::redis {

enum class errc {
  not_connected = 1,  // no usable connection right now
  timeout,            // no reply before the deadline
  connection_lost,    // the connection closed with the command in flight
  bad_reply,          // a reply that breaks the protocol or the script's contract
  server_error,       // Redis answered with an error (-OOM, -LOADING, ...)
};
const boost::system::error_category& error_category();
boost::system::error_code make_error_code(errc e);

using Clock = std::chrono::steady_clock;

struct ConnectionOptions {
  std::chrono::milliseconds connect_timeout{1000};  // TCP connect plus handshake
  // How long the oldest command may wait for its reply before the connection is
  // closed. Shorter deadlines of single commands only fail those commands, so that a
  // scheduling hiccup on a busy host does not send every check to the fallback.
  std::chrono::milliseconds stall_timeout{200};
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{1000};
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Handler = boost::asio::any_completion_handler<void(boost::system::error_code, Value)>;
  // Called on every state change: up after a handshake, down after a failure (with
  // a reason that names no secret).
  using StateCallback = std::function<void(bool up, const std::string& reason)>;

  Connection(boost::asio::any_io_executor executor, RedisUrl url, std::string script,
             ConnectionOptions options, StateCallback on_state);
  ~Connection();

  void start();
  void stop();
  bool ready() const { return state_ == State::ready; }
  const std::string& script_sha() const { return script_sha_; }
  const boost::asio::any_io_executor& executor() const { return executor_; }

  // Sends `command` (RESP bytes). Completes `handler` with the reply, with
  // errc::timeout at `deadline`, or (posted) with errc::not_connected when not ready.
  // Call on the executor's thread.
  void exec(std::string_view command, Clock::time_point deadline, Handler handler);

 private:
  enum class State { idle, handshaking, ready, stopped };
  struct Pending {
    Handler handler;  // empty once the command failed its deadline
    Clock::time_point deadline;
    Clock::time_point sent;
  };

  boost::asio::awaitable<void> run(std::shared_ptr<Connection> self);
  boost::asio::awaitable<std::string> establish();  // "" on success, else why not
  boost::asio::awaitable<std::string> handshake();
  boost::asio::awaitable<std::tuple<boost::system::error_code, Value>> call(std::string command);
  boost::asio::awaitable<void> read_loop(std::shared_ptr<Connection> self, std::uint64_t generation);
  bool deliver_replies();
  void enqueue(std::string_view command, Clock::time_point deadline, Handler handler);
  void flush();
  void arm_timer(Clock::time_point deadline);
  void on_deadline();
  void close(errc reason);
  void complete(Handler handler, boost::system::error_code ec, Value value);

  boost::asio::any_io_executor executor_;
  RedisUrl url_;
  std::string script_;
  std::string script_sha_;
  ConnectionOptions options_;
  StateCallback on_state_;

  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer closed_signal_;
  boost::asio::steady_timer backoff_timer_;
  redisReader* reader_ = nullptr;
  State state_ = State::idle;
  std::uint64_t generation_ = 0;  // bumps on every new socket
  bool timer_armed_ = false;
  Clock::time_point armed_at_;
  std::uint64_t timer_seq_ = 0;  // a newer arming supersedes older waits
  bool writing_ = false;
  std::string out_;       // commands waiting for the next write
  std::string in_flight_; // bytes being written
  std::deque<Pending> pending_;
  std::string last_failure_;
};

}  // namespace phlow::limiter::redis

template <>
struct boost::system::is_error_code_enum<phlow::limiter::redis::errc> : std::true_type {};
