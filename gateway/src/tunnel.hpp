#pragma once
// A WebSocket tunnel: after the upstream's 101, the bytes of both directions are copied
// as they come (no frame parsing) until either side closes, a copy fails, or nothing
// moved either way for `idle_timeout`. Generic over the two stream types (plain or
// TLS), like relay.hpp; included by upstream_exchange.cpp only.

#include <chrono>
#include <cstdint>
#include <span>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>

namespace phlow::gateway::detail {

struct TunnelResult {
  std::uint64_t to_upstream = 0;  // bytes the client sent through the tunnel
  std::uint64_t to_client = 0;
  bool idle = false;  // closed by the idle timeout
};

namespace tunnel_detail {

namespace net = boost::asio;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// What the three parts of a tunnel share: the last time bytes moved, and the end.
template <class Client, class Upstream>
struct State {
  Client& client;
  Upstream& upstream;
  net::steady_timer watchdog;
  std::chrono::steady_clock::time_point last_activity = std::chrono::steady_clock::now();
  bool done = false;
  TunnelResult result;

  void touch() { last_activity = std::chrono::steady_clock::now(); }
  // Ends the tunnel: closing both sockets ends the other direction's pending read or
  // write, whatever the stream (a TLS operation included), and the watchdog's wait.
  void finish() {
    if (done) return;
    done = true;
    boost::system::error_code ignored;
    boost::beast::get_lowest_layer(client).socket().close(ignored);
    boost::beast::get_lowest_layer(upstream).socket().close(ignored);
    watchdog.cancel();
  }
};

// Copies `from` to `to`: first what `pending` already holds (read past the heads),
// then whatever arrives, until either fails or closes.
template <class From, class To, class S>
net::awaitable<void> pump(From& from, boost::beast::flat_buffer& pending, To& to, std::span<char> chunk,
                          std::uint64_t& moved, S& state) {
  if (pending.size() > 0) {
    auto [ec, n] = co_await net::async_write(to, pending.data(), use_tuple);
    pending.consume(pending.size());
    moved += n;
    if (ec) {
      state.finish();
      co_return;
    }
  }
  while (!state.done) {
    auto [ec, n] = co_await from.async_read_some(net::buffer(chunk.data(), chunk.size()), use_tuple);
    if (ec) break;
    state.touch();
    auto [wec, wn] = co_await net::async_write(to, net::buffer(chunk.data(), n), use_tuple);
    moved += wn;
    if (wec) break;
    state.touch();
  }
  state.finish();
}

template <class S>
net::awaitable<void> watch(S& state, std::chrono::milliseconds idle_timeout) {
  while (!state.done) {
    state.watchdog.expires_at(state.last_activity + idle_timeout);
    co_await state.watchdog.async_wait(use_tuple);
    if (state.done) break;
    if (std::chrono::steady_clock::now() - state.last_activity >= idle_timeout) {
      state.result.idle = true;
      state.finish();
    }
  }
}

}  // namespace tunnel_detail

// Runs the tunnel between `client` and `upstream` (whose heads are done; `client_pending`
// and `upstream_pending` hold bytes read past them) through the two chunks. Both
// streams are closed when it returns.
template <class Client, class Upstream>
boost::asio::awaitable<TunnelResult> tunnel(Client& client, boost::beast::flat_buffer& client_pending,
                                            Upstream& upstream, boost::beast::flat_buffer& upstream_pending,
                                            std::chrono::milliseconds idle_timeout,
                                            std::span<char> up_chunk, std::span<char> down_chunk) {
  using namespace boost::asio::experimental::awaitable_operators;
  // The tunnel's one deadline is the idle watchdog: no per-operation timeouts.
  boost::beast::get_lowest_layer(client).expires_never();
  boost::beast::get_lowest_layer(upstream).expires_never();
  tunnel_detail::State<Client, Upstream> state{client, upstream, boost::asio::steady_timer(client.get_executor())};
  co_await (tunnel_detail::pump(client, client_pending, upstream, up_chunk, state.result.to_upstream, state) &&
            tunnel_detail::pump(upstream, upstream_pending, client, down_chunk, state.result.to_client, state) &&
            tunnel_detail::watch(state, idle_timeout));
  co_return state.result;
}

}  // namespace phlow::gateway::detail
