#include "redis/connection.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace phlow::limiter::redis {

namespace asio = boost::asio;
using boost::system::error_code;
using asio::awaitable;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "phlow.redis"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_connected: return "not connected to Redis";
      case errc::timeout: return "Redis did not answer before the deadline";
      case errc::connection_lost: return "connection to Redis lost";
      case errc::bad_reply: return "unexpected reply from Redis";
      case errc::server_error: return "Redis answered with an error";
    }
    return "unknown Redis error";
  }
};

}  // namespace

const boost::system::error_category& error_category() {
  static const Category category;
  return category;
}

error_code make_error_code(errc e) { return {static_cast<int>(e), error_category()}; }

Connection::Connection(asio::any_io_executor executor, RedisUrl url, std::string script,
                       ConnectionOptions options, StateCallback on_state)
    : executor_(std::move(executor)),
      url_(std::move(url)),
      script_(std::move(script)),
      options_(options),
      on_state_(std::move(on_state)),
      socket_(executor_),
      deadline_timer_(executor_),
      closed_signal_(executor_),
      backoff_timer_(executor_) {}

Connection::~Connection() {
  if (reader_ != nullptr) redisReaderFree(reader_);
}

void Connection::start() {
  asio::co_spawn(executor_, run(shared_from_this()), asio::detached);
}

void Connection::stop() {
  if (state_ == State::stopped) return;
  close(errc::not_connected);
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
      on_state_(true, {});
      closed_signal_.expires_at(Clock::time_point::max());
      if (socket_.is_open()) co_await closed_signal_.async_wait(use_tuple);
      if (state_ == State::stopped) break;
      failure = last_failure_;
    } else {
      close(errc::connection_lost);
    }
    on_state_(false, failure);
    backoff_timer_.expires_after(backoff);
    co_await backoff_timer_.async_wait(use_tuple);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

awaitable<std::string> Connection::establish() {
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(executor_);
  auto timed_out = std::make_shared<bool>(false);
  // One watchdog bounds resolve + connect; the handshake commands carry deadlines.
  // It holds only shared state: it may run after this frame is gone.
  asio::steady_timer watchdog(executor_);
  watchdog.expires_after(options_.connect_timeout);
  watchdog.async_wait([self = shared_from_this(), resolver, timed_out,
                       attempt = generation_](error_code ec) {
    if (ec || self->generation_ != attempt) return;
    *timed_out = true;
    resolver->cancel();
    error_code ignored;
    self->socket_.close(ignored);
  });
  auto [rec, endpoints] =
      co_await resolver->async_resolve(url_.host, std::to_string(url_.port), use_tuple);
  if (rec || *timed_out) {
    watchdog.cancel();
    co_return *timed_out ? "resolving " + url_.host + " timed out" : rec.message();
  }
  auto [cec, endpoint] = co_await asio::async_connect(socket_, endpoints, use_tuple);
  watchdog.cancel();
  if (cec || *timed_out) {
    co_return "connect to " + url_.endpoint() + ": " + (*timed_out ? "timed out" : cec.message());
  }
  error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  if (reader_ != nullptr) redisReaderFree(reader_);
  reader_ = create_reader();
  ++generation_;
  state_ = State::handshaking;
  asio::co_spawn(executor_, read_loop(shared_from_this(), generation_), asio::detached);
  co_return co_await handshake();
}

awaitable<std::tuple<error_code, Value>> Connection::call(std::string command) {
  co_return co_await asio::async_initiate<decltype(use_tuple), void(error_code, Value)>(
      [this, &command](auto handler) {
        enqueue(command, Clock::now() + options_.connect_timeout, Handler(std::move(handler)));
      },
      use_tuple);
}

awaitable<std::string> Connection::handshake() {
  std::string cmd;
  auto failed = [](const char* step, const error_code& ec, const Value& v) -> std::string {
    if (ec) return std::string(step) + ": " + ec.message();
    if (v.is_error()) return std::string(step) + ": " + v.str;
    return {};
  };
  if (!url_.password.empty()) {
    CommandWriter w(cmd, url_.username.empty() ? 2 : 3);
    w.arg("AUTH");
    if (!url_.username.empty()) w.arg(url_.username);
    w.arg(url_.password);
    auto [ec, v] = co_await call(std::move(cmd));
    if (auto why = failed("AUTH", ec, v); !why.empty()) co_return why;
  }
  if (url_.db != 0) {
    cmd.clear();
    CommandWriter(cmd, 2).arg("SELECT").arg(std::int64_t{url_.db});
    auto [ec, v] = co_await call(std::move(cmd));
    if (auto why = failed("SELECT", ec, v); !why.empty()) co_return why;
  }
  cmd.clear();
  CommandWriter(cmd, 2).arg("INFO").arg("server");
  auto [iec, info] = co_await call(std::move(cmd));
  if (auto why = failed("INFO", iec, info); !why.empty()) co_return why;
  const std::string version(redis_version(info.str));
  if (!version_supported(version)) {
    co_return "Redis " + (version.empty() ? std::string("of unknown version") : version) +
        " is too old: phlow-gateway needs Redis 5.0 or newer";
  }
  cmd.clear();
  CommandWriter(cmd, 3).arg("SCRIPT").arg("LOAD").arg(script_);
  auto [sec, sha] = co_await call(std::move(cmd));
  if (auto why = failed("SCRIPT LOAD", sec, sha); !why.empty()) co_return why;
  if (sha.type != Value::Type::string || sha.str.size() != 40) co_return "SCRIPT LOAD: bad reply";
  script_sha_ = sha.str;
  co_return std::string{};
}

awaitable<void> Connection::read_loop([[maybe_unused]] std::shared_ptr<Connection> self,
                                      std::uint64_t generation) {
  std::array<char, 16 * 1024> buffer;
  while (generation == generation_ && socket_.is_open()) {
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buffer), use_tuple);
    if (generation != generation_) co_return;
    if (ec) {
      last_failure_ = "connection to " + url_.endpoint() + " lost: " + ec.message();
      close(errc::connection_lost);
      co_return;
    }
    if (redisReaderFeed(reader_, buffer.data(), n) != REDIS_OK || !deliver_replies() ||
        reader_overfull(reader_)) {
      last_failure_ = "protocol error from " + url_.endpoint();
      close(errc::bad_reply);
      co_return;
    }
  }
}

bool Connection::deliver_replies() {
  void* raw = nullptr;
  while (true) {
    if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return false;
    if (raw == nullptr) return true;
    auto* reply = static_cast<redisReply*>(raw);
    Value value = to_value(reply);
    freeReplyObject(reply);
    if (pending_.empty()) return false;  // a reply nobody asked for
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    if (p.handler) complete(std::move(p.handler), {}, std::move(value));
  }
}

void Connection::exec(std::string_view command, Clock::time_point deadline, Handler handler) {
  if (state_ != State::ready) {
    complete(std::move(handler), errc::not_connected, {});
    return;
  }
  enqueue(command, deadline, std::move(handler));
}

void Connection::enqueue(std::string_view command, Clock::time_point deadline, Handler handler) {
  out_.append(command);
  pending_.push_back(Pending{std::move(handler), deadline, Clock::now()});
  flush();
  arm_timer(deadline);
}

void Connection::flush() {
  if (writing_ || out_.empty() || !socket_.is_open()) return;
  writing_ = true;
  std::swap(in_flight_, out_);
  out_.clear();
  asio::async_write(socket_, asio::buffer(in_flight_),
                    [self = shared_from_this(), generation = generation_](error_code ec, std::size_t) {
                      self->writing_ = false;
                      if (generation != self->generation_) {
                        self->flush();  // bytes queued for a newer socket
                        return;
                      }
                      if (ec) {
                        self->last_failure_ = "write to Redis failed: " + ec.message();
                        self->close(errc::connection_lost);
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
  if (pending_.empty()) return;
  const auto now = Clock::now();
  const bool ready = state_ == State::ready;
  if (ready && now - pending_.front().sent >= options_.stall_timeout) {
    last_failure_ = "Redis at " + url_.endpoint() + " did not answer for " +
                    std::to_string(options_.stall_timeout.count()) + " ms";
    close(errc::timeout);
    return;
  }
  auto next = ready ? pending_.front().sent + options_.stall_timeout : Clock::time_point::max();
  for (Pending& p : pending_) {
    if (!p.handler) continue;
    if (p.deadline > now) {
      next = std::min(next, p.deadline);
    } else if (ready) {
      complete(std::move(p.handler), errc::timeout, {});  // leaves p.handler empty
    } else {
      last_failure_ = "Redis at " + url_.endpoint() + " did not answer in time";
      close(errc::timeout);
      return;
    }
  }
  if (next != Clock::time_point::max()) arm_timer(next);
}

void Connection::close(errc reason) {
  ++generation_;  // stale reads and writes of the old socket become no-ops
  error_code ignored;
  socket_.close(ignored);
  deadline_timer_.cancel();
  timer_armed_ = false;
  ++timer_seq_;
  closed_signal_.cancel();
  out_.clear();
  if (state_ != State::stopped) state_ = State::idle;
  std::deque<Pending> failed;
  failed.swap(pending_);
  for (auto& p : failed) {
    if (p.handler) complete(std::move(p.handler), reason, {});
  }
}

void Connection::complete(Handler handler, error_code ec, Value value) {
  // Never complete on the caller's stack, nor inside our own read/close loops.
  asio::post(executor_, [h = std::move(handler), ec, v = std::move(value)]() mutable {
    std::move(h)(ec, std::move(v));
  });
}

}  // namespace phlow::limiter::redis
