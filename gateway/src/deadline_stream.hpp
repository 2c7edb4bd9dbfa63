#pragma once
// The lowest layer of a proxy connection: a TCP socket whose reads and writes time out
// as beast::tcp_stream's do - a deadline per direction set by expires_after() before
// the operation, the socket closed when it passes while an operation of that direction
// is pending, and that operation completing with beast::error::timeout - at a fraction
// of the cost. beast::tcp_stream arms and cancels a timer (two heap operations under
// the reactor's lock) for every read and every write, and cancels two timers at every
// expires_after(). Here one timer per connection is armed lazily: an operation only
// compares its deadline with the time the timer is already armed for; the timer is
// moved earlier when a deadline is, and when it fires at a deadline that was pushed
// later in the meantime, it is armed again for the new one. So a busy keep-alive
// connection arms its timer about once per timeout, not four times per request.
//
// Rules kept from beast::basic_stream: expires_after()/expires_never() change only the
// deadline of a direction with no operation pending; an operation started after its
// deadline passed times out at once; the stream's destruction closes the socket; not
// thread-safe (one executor thread, as every stream of a worker).

#include <boost/asio/associator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace phlow::gateway::detail {

class DeadlineStream {
 public:
  using Clock = std::chrono::steady_clock;

 private:
  struct State {
    explicit State(boost::asio::ip::tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
    boost::asio::ip::tcp::socket socket;
    boost::asio::steady_timer timer;
    Clock::time_point deadline[2] = {Clock::time_point::max(), Clock::time_point::max()};  // read, write
    Clock::time_point armed_for = Clock::time_point::max();  // max: the timer waits for nothing
    std::uint64_t arming = 0;    // the current wait; an older one that completes is stale
    unsigned pending[2] = {0, 0};
    bool timed_out[2] = {false, false};
    std::size_t refs = 1;        // the stream, and a Ref in each queued operation and wait
  };
  static void release(State* s) {
    if (--s->refs == 0) delete s;
  }
  // A counted reference to the state held by a queued operation or timer wait, given
  // back when it is destroyed: after it ran, or unrun when its io_context is destroyed
  // with it still queued.
  class Ref {
   public:
    explicit Ref(State* s) : s_(s) { ++s->refs; }
    Ref(Ref&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
    Ref& operator=(Ref&&) = delete;
    ~Ref() {
      if (s_ != nullptr) release(s_);
    }
    State* get() const { return s_; }

   private:
    State* s_;
  };

 public:
  using executor_type = boost::asio::any_io_executor;
  using lowest_layer_type = DeadlineStream;  // asio::ssl::stream asks its next layer

  explicit DeadlineStream(boost::asio::ip::tcp::socket socket) : s_(new State(std::move(socket))) {}
  explicit DeadlineStream(const executor_type& executor)
      : s_(new State(boost::asio::ip::tcp::socket(executor))) {}
  DeadlineStream(DeadlineStream&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  DeadlineStream& operator=(DeadlineStream&&) = delete;
  DeadlineStream(const DeadlineStream&) = delete;
  DeadlineStream& operator=(const DeadlineStream&) = delete;
  ~DeadlineStream() {
    if (s_ == nullptr) return;
    close();
    release(s_);
  }

  boost::asio::ip::tcp::socket& socket() { return s_->socket; }
  executor_type get_executor() { return s_->socket.get_executor(); }
  DeadlineStream& lowest_layer() { return *this; }

  void expires_after(Clock::duration timeout) { set_deadline(Clock::now() + timeout); }
  void expires_never() { set_deadline(Clock::time_point::max()); }
  void cancel() {
    boost::system::error_code ignored;
    s_->socket.cancel(ignored);
  }
  void close() {
    boost::system::error_code ignored;
    s_->socket.close(ignored);
    s_->timer.cancel();
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        Transfer<true>{s_}, token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        Transfer<false>{s_}, token, buffers);
  }

  // Connects to `endpoint`, under the write deadline.
  template <class Token>
  auto async_connect(const boost::asio::ip::tcp::endpoint& endpoint, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(ConnectOne{s_}, token, endpoint);
  }

  // Connects to the first of `endpoints` that accepts, under the write deadline.
  template <class Endpoints, class Token>
  auto async_connect(const Endpoints& endpoints, Token&& token) {
    return boost::asio::async_initiate<Token,
                                       void(boost::system::error_code, boost::asio::ip::tcp::endpoint)>(
        Connect{s_}, token, endpoints);
  }

  // The completion of a socket operation: counts it done, turns the abort of a
  // timed-out direction into beast::error::timeout, then calls the caller's handler.
  // Its executor, allocator and cancellation slot are the caller handler's
  // (asio::associator below).
  template <class Handler, bool isRead>
  struct Completion {
    Handler handler;
    Ref ref;

    template <class... Result>
    void operator()(boost::system::error_code ec, Result... result) {
      State* const s = ref.get();
      const int side = isRead ? 0 : 1;
      if (s->timed_out[side]) ec = boost::beast::error::timeout;
      if (--s->pending[side] == 0) s->timed_out[side] = false;
      std::move(handler)(ec, std::move(result)...);
    }
  };

 private:
  void set_deadline(Clock::time_point at) {
    for (int side = 0; side < 2; ++side) {
      if (s_->pending[side] == 0) s_->deadline[side] = at;
    }
  }

  // Before an operation of `side` starts: the timer must fire by its deadline.
  static void watch(State* s, int side) {
    ++s->pending[side];
    const Clock::time_point at = s->deadline[side];
    if (at < s->armed_for) arm(s, at);
  }

  static void arm(State* s, Clock::time_point at) {
    s->armed_for = at;
    const std::uint64_t arming = ++s->arming;
    s->timer.expires_at(at);  // a wait for a later time completes as stale
    s->timer.async_wait([ref = Ref(s), arming](boost::system::error_code ec) {
      State* const state = ref.get();
      if (arming == state->arming) {
        state->armed_for = Clock::time_point::max();
        if (!ec) on_timer(state);
      }
    });
  }

  static void on_timer(State* s) {
    const Clock::time_point now = Clock::now();
    Clock::time_point next = Clock::time_point::max();
    bool expired = false;
    for (int side = 0; side < 2; ++side) {
      if (s->pending[side] == 0) continue;
      if (s->deadline[side] <= now) {
        s->timed_out[side] = true;
        expired = true;
      } else if (s->deadline[side] < next) {
        next = s->deadline[side];
      }
    }
    if (expired) {
      boost::system::error_code ignored;
      s->socket.close(ignored);  // every pending operation completes now
    } else if (next != Clock::time_point::max()) {
      arm(s, next);  // the deadline moved later since the timer was armed
    }
  }

  template <bool isRead>
  struct Transfer {
    State* s;
    template <class Handler, class Buffers>
    void operator()(Handler&& handler, const Buffers& buffers) const {
      watch(s, isRead ? 0 : 1);
      using H = std::decay_t<Handler>;
      if constexpr (isRead) {
        s->socket.async_read_some(buffers, Completion<H, true>{std::forward<Handler>(handler), Ref(s)});
      } else {
        s->socket.async_write_some(buffers, Completion<H, false>{std::forward<Handler>(handler), Ref(s)});
      }
    }
  };

  struct Connect {
    State* s;
    template <class Handler, class Endpoints>
    void operator()(Handler&& handler, const Endpoints& endpoints) const {
      watch(s, 1);
      using H = std::decay_t<Handler>;
      boost::asio::async_connect(s->socket, endpoints, Completion<H, false>{std::forward<Handler>(handler), Ref(s)});
    }
  };

  struct ConnectOne {
    State* s;
    template <class Handler>
    void operator()(Handler&& handler, const boost::asio::ip::tcp::endpoint& endpoint) const {
      watch(s, 1);
      using H = std::decay_t<Handler>;
      s->socket.async_connect(endpoint, Completion<H, false>{std::forward<Handler>(handler), Ref(s)});
    }
  };

  State* s_;
};

// Beast's customization point to close a lowest layer (found by ADL), as for its own
// streams: a WebSocket over a ProxyStream closes it with this.
inline void beast_close_socket(DeadlineStream& stream) { stream.close(); }

}  // namespace phlow::gateway::detail

namespace boost::asio {

template <template <typename, typename> class Associator, typename Handler, bool isRead,
          typename DefaultCandidate>
struct associator<Associator, phlow::gateway::detail::DeadlineStream::Completion<Handler, isRead>,
                  DefaultCandidate> : Associator<Handler, DefaultCandidate> {
  using Completion = phlow::gateway::detail::DeadlineStream::Completion<Handler, isRead>;
  static typename Associator<Handler, DefaultCandidate>::type get(const Completion& h) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler);
  }
  static auto get(const Completion& h, const DefaultCandidate& c) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler, c)) {
    return Associator<Handler, DefaultCandidate>::get(h.handler, c);
  }
};

}  // namespace boost::asio
