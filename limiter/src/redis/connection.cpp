#include "redis/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>

#include "limiter/redis_backend.hpp"
#include "redis/check_script.hpp"
#include "redis/handshake.hpp"

namespace phlow::limiter::redis {

namespace asio = boost::asio;
using boost::system::error_code;
using asio::awaitable;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

// Never completes on the caller's stack, nor inside the connection's read/close loops.
void post_completion(const asio::any_io_executor& executor, Connection::Handler handler,
                     error_code ec, Value value) {
  asio::post(executor, [h = std::move(handler), ec, v = std::move(value)]() mutable {
    std::move(h)(ec, std::move(v));
  });
}

}  // namespace

ConnectionOptions connection_options(const RedisOptions& options) {
  ConnectionOptions out;
  out.connect_timeout = options.connect_timeout;
  out.stall_timeout = std::max(kStallDeadlines * options.timeout, kMinStall);
  return out;
}

Connection::Connection(asio::any_io_executor executor, RedisUrl url,
                       std::shared_ptr<NodeSource> nodes, Transport transport,
                       ConnectionOptions options, StateCallback on_state)
    : executor_(std::move(executor)),
      url_(std::move(url)),
      nodes_(std::move(nodes)),
      transport_(std::move(transport)),
      options_(options),
      on_state_(std::move(on_state)),
      pipeline_([executor = executor_](Handler handler, error_code ec, Value value) {
        post_completion(executor, std::move(handler), ec, std::move(value));
      }),
      deadline_timer_(executor_),
      closed_signal_(executor_),
      backoff_timer_(executor_) {}

Connection::~Connection() = default;

void Connection::start() {
  asio::co_spawn(executor_, run(shared_from_this()), asio::detached);
}

void Connection::stop() {
  if (state_ == State::stopped) return;
  close(StoreError::not_connected);
  state_ = State::stopped;
  backoff_timer_.cancel();
  closed_signal_.cancel();
}

// `self` keeps the connection alive while the coroutine runs.
awaitable<void> Connection::run([[maybe_unused]] std::shared_ptr<Connection> self) {
  auto backoff = options_.min_backoff;
  while (state_ != State::stopped) {
    std::string failure = co_await establish();
    if (state_ == State::stopped) break;
    if (failure.empty()) {
      state_ = State::ready;
      backoff = options_.min_backoff;
      on_state_(true, node_.endpoint());
      closed_signal_.expires_at(Clock::time_point::max());
      if (stream_ && stream_->is_open()) co_await closed_signal_.async_wait(use_tuple);
      if (state_ == State::stopped) break;
      failure = last_failure_;
    } else {
      close(StoreError::connection);
    }
    on_state_(false, failure);
    if (state_ == State::stopped) break;
    backoff_timer_.expires_after(backoff);
    co_await backoff_timer_.async_wait(use_tuple);  // reconnect() cuts it short
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void Connection::reconnect(const std::string& why) {
  if (state_ == State::stopped) return;
  if (state_ == State::ready) {
    last_failure_ = why;
    close(StoreError::connection);
  }
  backoff_timer_.cancel();
}

awaitable<std::string> Connection::establish() {
  const std::uint64_t attempt = ++generation_;
  auto located = co_await nodes_->locate();
  if (auto* why = std::get_if<std::string>(&located)) co_return *why;
  if (attempt != generation_ || state_ == State::stopped) co_return "connection closed";
  node_ = std::get<RedisNode>(std::move(located));
  auto stream = make_stream(executor_, transport_);
  stream_ = stream;
  std::string failure = co_await stream->open(node_, Clock::now() + options_.connect_timeout);
  if (!failure.empty() || attempt != generation_) {
    co_return failure.empty() ? "connection to " + node_.endpoint() + " closed" : failure;
  }
  pipeline_.reset(StoreError::connection);
  state_ = State::handshaking;
  asio::co_spawn(executor_, read_loop(shared_from_this(), stream, generation_), asio::detached);
  co_return co_await handshake();
}

awaitable<std::string> Connection::handshake() {
  Handshake steps(url_, kCheckScript, nodes_->master_only(), kCheckLibrary, kCheckLibraryName);
  while (!steps.done()) {
    auto [ec, reply] = co_await asio::async_initiate<decltype(use_tuple), void(error_code, Value)>(
        [this, &steps](auto handler) {
          enqueue(steps.next(), Clock::now() + options_.connect_timeout, Handler(std::move(handler)));
        },
        use_tuple);
    if (std::string why = steps.accept(ec, reply); !why.empty()) co_return why;
  }
  script_sha_ = steps.script_sha();
  library_loaded_ = steps.library_loaded();
  co_return std::string{};
}

awaitable<void> Connection::read_loop([[maybe_unused]] std::shared_ptr<Connection> self,
                                      std::shared_ptr<Stream> stream, std::uint64_t generation) {
  std::array<char, 16 * 1024> buffer;
  while (generation == generation_ && stream->is_open()) {
    auto [ec, n] = co_await async_read_some(*stream, asio::buffer(buffer), use_tuple);
    if (generation != generation_) co_return;
    if (ec) {
      last_failure_ = "connection to " + node_.endpoint() + " lost: " + ec.message();
      close(StoreError::connection);
      co_return;
    }
    if (!pipeline_.feed(buffer.data(), n)) {
      last_failure_ = "protocol error from " + node_.endpoint();
      close(StoreError::bad_reply);
      co_return;
    }
  }
}

void Connection::exec(std::string_view command, Clock::time_point deadline, Handler handler) {
  if (state_ != State::ready) {
    complete(std::move(handler), StoreError::not_connected, {});
    return;
  }
  enqueue(command, deadline, std::move(handler));
}

void Connection::enqueue(std::string_view command, Clock::time_point deadline, Handler handler) {
  pipeline_.push(command, deadline, Clock::now(), std::move(handler));
  flush();
  arm_timer(deadline);
}

void Connection::flush() {
  if (writing_ || !pipeline_.has_output() || !stream_ || !stream_->is_open()) return;
  writing_ = true;
  pipeline_.take_output(in_flight_);
  stream_->async_write(asio::buffer(in_flight_), [self = shared_from_this(), generation = generation_](
                                                    error_code ec, std::size_t) {
    self->writing_ = false;
    if (generation != self->generation_) {
      self->flush();  // bytes queued for a newer stream
      return;
    }
    if (ec) {
      self->last_failure_ = "write to Redis failed: " + ec.message();
      self->close(StoreError::connection);
      return;
    }
    self->flush();
  });
}

void Connection::arm_timer(Clock::time_point deadline) {
  if (timer_armed_ && armed_at_ <= deadline) return;
  timer_armed_ = true;
  armed_at_ = deadline;
  deadline_timer_.expires_at(deadline);
  deadline_timer_.async_wait([self = shared_from_this(), seq = ++timer_seq_](error_code ec) {
    if (seq != self->timer_seq_) return;  // re-armed earlier, or closed
    self->timer_armed_ = false;
    if (!ec) self->on_deadline();
  });
}

// Fails every command past its deadline; closes the connection when Redis has left
// the oldest command unanswered for the stall timeout (or, before it is ready, when a
// handshake command is late).
void Connection::on_deadline() {
  const auto expired = pipeline_.expire(Clock::now(), state_ == State::ready, options_.stall_timeout);
  switch (expired.expiry) {
    case Pipeline::Expiry::stalled:
      last_failure_ = "Redis at " + node_.endpoint() + " did not answer for " +
                      std::to_string(options_.stall_timeout.count()) + " ms";
      close(StoreError::timeout);
      return;
    case Pipeline::Expiry::late:
      last_failure_ = "Redis at " + node_.endpoint() + " did not answer in time";
      close(StoreError::timeout);
      return;
    case Pipeline::Expiry::none: break;
  }
  if (expired.next != Clock::time_point::max()) arm_timer(expired.next);
}

void Connection::close(StoreError reason) {
  ++generation_;  // stale reads and writes of the old stream become no-ops
  if (stream_) stream_->close();
  deadline_timer_.cancel();
  timer_armed_ = false;
  ++timer_seq_;
  closed_signal_.cancel();
  if (state_ != State::stopped) state_ = State::idle;
  pipeline_.reset(reason);
}

void Connection::complete(Handler handler, error_code ec, Value value) {
  post_completion(executor_, std::move(handler), ec, std::move(value));
}

}  // namespace phlow::limiter::redis
