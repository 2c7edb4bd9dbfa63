#pragma once
// While the upstream works on a request, the gateway reads nothing from its client:
// the request has been read whole. For a request that holds concurrency slots (an
// agent's call that may run for minutes), ClientWatch notices a client that closes its
// end or resets the connection meanwhile, and closes the upstream connection: the wait
// for the response ends at once and the slots come back then, not when the upstream
// answers. nginx does the same by default (proxy_ignore_client_abort off): a client
// that half-closes after its request counts as gone too.
//
// Bytes from the client (a pipelined request, a TLS record such as close_notify) end
// the watch without a verdict: telling those apart would need reading them. A TLS
// client that says close_notify before it goes is therefore not noticed here; its
// slots come back when the upstream answers, as before.
//
// One per session, on the session's executor only; watches one upstream wait at a time.

#include <sys/socket.h>

#include <cerrno>
#include <memory>

#include <boost/asio/ip/tcp.hpp>

#include "proxy_stream.hpp"

namespace phlow::gateway::detail {

class ClientWatch {
 public:
  ClientWatch() = default;
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;
  ~ClientWatch() { stop(); }

  // Watches `client` until stop(); when it leaves, closes `upstream`, whose pending
  // operations then end with an error. Both must outlive the watch (stop() before
  // either goes).
  void start(boost::asio::ip::tcp::socket& client, ProxyStream& upstream) {
    stop();
    state_ = std::make_shared<State>(client, upstream);
    arm(state_);
  }

  // Ends the watch (a no-op when none runs). What it saw stays readable. It cancels
  // every wait and transfer pending on the client's socket: call it before anything
  // else is started on that socket.
  void stop() {
    if (!state_ || !state_->active) return;
    state_->active = false;
    boost::system::error_code ignored;
    state_->client.cancel(ignored);  // the wait ends with operation_aborted
  }

  // True when the last watch saw the client leave (and closed the upstream). start()
  // forgets the one before.
  bool client_left() const { return state_ && state_->left; }

 private:
  struct State {
    State(boost::asio::ip::tcp::socket& c, ProxyStream& u) : client(c), upstream(u) {}
    boost::asio::ip::tcp::socket& client;
    ProxyStream& upstream;
    bool active = true;
    bool left = false;
  };

  static void arm(const std::shared_ptr<State>& state) {
    state->client.async_wait(boost::asio::socket_base::wait_read, [state](boost::system::error_code ec) {
      // Cancelled (stop(), or the socket closed): the session may be gone; touch nothing.
      if (ec || !state->active) return;
      char byte;
      const ssize_t n = ::recv(state->client.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        arm(state);  // woken with nothing to read: keep watching
        return;
      }
      state->active = false;
      if (n > 0) return;  // bytes from the client: still there (or cannot tell)
      state->left = true;  // end of stream, or reset
      state->upstream.close();
    });
  }

  std::shared_ptr<State> state_;
};

}  // namespace phlow::gateway::detail
