#pragma once
// One pipelined connection to a Redis node on an Asio executor. Reconnects by itself
// with backoff until stop(). Every command has a deadline; a command that misses it
// fails alone (its late reply is read and dropped). The connection is closed, and
// Redis treated as down, once the oldest command has had no reply for `stall_timeout`.
// Its parts, each in its own file: the byte stream (stream.hpp: TCP, later TLS), the
// handshake (handshake.hpp) and the commands in flight (pipeline.hpp).

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "limiter/redis_url.hpp"
#include "limiter/store_error.hpp"
#include "redis/check_command.hpp"
#include "redis/node_source.hpp"
#include "redis/pipeline.hpp"
#include "redis/resp.hpp"
#include "redis/stream.hpp"

namespace phlow::limiter::redis {

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

// The options of a store's connections for `options` (the stall timeout from the
// check deadline: kStallDeadlines of them, at least kMinStall).
ConnectionOptions connection_options(const RedisOptions& options);

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using Handler = Pipeline::Handler;
  // Called on every state change: up after a handshake (with the node's endpoint),
  // down after a failure (with a reason that names no secret).
  using StateCallback = std::function<void(bool up, const std::string& reason_or_endpoint)>;

  // Connects to the node `nodes` names before each attempt, over `transport`, with
  // `url`'s credentials and db; the handshake loads the check script (and library).
  Connection(boost::asio::any_io_executor executor, RedisUrl url, std::shared_ptr<NodeSource> nodes,
             Transport transport, ConnectionOptions options, StateCallback on_state);
  ~Connection();

  void start();
  void stop();
  // Drops the connection (failing what is in flight) and connects again at once,
  // asking the node source anew: the node is not the one to use any more.
  void reconnect(const std::string& why);
  bool ready() const { return state_ == State::ready; }
  const std::string& script_sha() const { return script_sha_; }
  // How a check names the script now: FCALL when the handshake loaded the library,
  // until drop_library() (the node lost it: FUNCTION FLUSH, or FCALL refused); else
  // EVALSHA.
  ScriptForm script_form() const { return library_loaded_ ? ScriptForm::function : ScriptForm::sha; }
  void drop_library() { library_loaded_ = false; }
  const boost::asio::any_io_executor& executor() const { return executor_; }

  // Sends `command` (RESP bytes). Completes `handler` with the reply, with
  // StoreError::timeout at `deadline`, or (posted) with StoreError::not_connected when
  // not ready. Call on the executor's thread.
  void exec(std::string_view command, Clock::time_point deadline, Handler handler);

 private:
  enum class State { idle, handshaking, ready, stopped };

  boost::asio::awaitable<void> run(std::shared_ptr<Connection> self);
  boost::asio::awaitable<std::string> establish();  // "" on success, else why not
  boost::asio::awaitable<std::string> handshake();
  boost::asio::awaitable<void> read_loop(std::shared_ptr<Connection> self,
                                         std::shared_ptr<Stream> stream, std::uint64_t generation);
  void enqueue(std::string_view command, Clock::time_point deadline, Handler handler);
  void flush();
  void arm_timer(Clock::time_point deadline);
  void on_deadline();
  void close(StoreError reason);
  void complete(Handler handler, boost::system::error_code ec, Value value);

  boost::asio::any_io_executor executor_;
  RedisUrl url_;
  std::shared_ptr<NodeSource> nodes_;
  RedisNode node_;  // the node of the current attempt
  Transport transport_;
  std::string script_sha_;
  bool library_loaded_ = false;
  ConnectionOptions options_;
  StateCallback on_state_;

  std::shared_ptr<Stream> stream_;  // a new one for every attempt
  Pipeline pipeline_;
  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer closed_signal_;
  boost::asio::steady_timer backoff_timer_;
  State state_ = State::idle;
  std::uint64_t generation_ = 0;  // bumps on every new stream and every close
  bool timer_armed_ = false;
  Clock::time_point armed_at_;
  std::uint64_t timer_seq_ = 0;  // a newer arming supersedes older waits
  bool writing_ = false;
  std::string in_flight_;  // bytes being written
  std::string last_failure_;
};

}  // namespace phlow::limiter::redis
