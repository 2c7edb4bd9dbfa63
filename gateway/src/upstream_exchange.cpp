// Forwarding (see session_impl.hpp): the request upstream, with one retry on a fresh
// connection when a pooled one turns out closed, and the response back; or both at
// once while a request body streams.
#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/context.hpp>

#include "gateway/server.hpp"
#include "session_impl.hpp"
#include "tunnel.hpp"

namespace phlow::gateway::detail {

namespace {

constexpr std::uint64_t kMaxUpstreamHeader = 64 * 1024;
constexpr std::string_view kLastChunk = "0\r\n\r\n";

bool is_idempotent(http::verb v) {
  return v == http::verb::get || v == http::verb::head || v == http::verb::options ||
         v == http::verb::put || v == http::verb::delete_ || v == http::verb::trace;
}

}  // namespace

// Relays the request upstream and the response back. Returns whether the client
// connection can carry another request.
net::awaitable<bool> Session::forward(RequestParser& parser, const config::Route& route, bool keep_alive) {
  const config::Config& cfg = *snapshot_->config;
  const config::Upstream& up = cfg.upstreams[route.upstream_index];
  const std::string& pool_key = snapshot_->upstream_keys[route.upstream_index];
  auto& req = parser.get();
  const bool expect_continue = expect_continue_;
  const bool head = req.method() == http::verb::head;
  const bool retryable = is_idempotent(req.method()) && parser.is_done();
  write_request_head(parser, up);

  // The histogram takes the upstream's time to answer (connect to response head, or to
  // failure) when the client's response starts (count_response); the access log takes
  // the whole exchange, connect to last byte, whatever the outcome.
  record_.upstream_start = std::chrono::steady_clock::now();
  struct UpstreamTimer {
    Session& session;
    ~UpstreamTimer() {
      session.observe_upstream();  // when no response started (the client went away)
      session.record_.upstream = std::chrono::steady_clock::now() - *session.record_.upstream_start;
    }
  } timer{*this};

  // A request that cannot be retried never goes out on an idle connection unprobed.
  const auto reuse = retryable ? UpstreamPool::Reuse::trusted : UpstreamPool::Reuse::probed;
  boost::asio::ssl::context* tls = snapshot_->upstream_tls[route.upstream_index].get();
  UpstreamPool::Lease lease = worker_.upstreams().take_idle(pool_key, reuse);
  if (!lease.stream) lease = co_await worker_.upstreams().connect(up, tls);
  for (int attempt = 0;; ++attempt) {
    if (lease.error) {
      if (lease.tls_failed) {
        // The reason names the certificate check, never key material.
        spdlog::warn("TLS to upstream {} ({}) failed: {}", up.name, up.url.to_string(), lease.tls_failure);
        co_await send_error(ProxyError::upstream_tls);
      } else {
        co_await send_error(lease.error == beast::error::timeout ? ProxyError::upstream_connect_timeout
                                                                 : ProxyError::upstream_unreachable);
      }
      co_return false;
    }
    if (expect_continue && attempt == 0) {
      // (not inside &&: GCC 12 miscompiles co_await in a short-circuit operand)
      const bool sent_continue = co_await send_continue();
      if (!sent_continue) co_return false;
    }
    if (!parser.is_done()) {
      // A body still to come is never retried: stream it while the response comes back.
      co_return co_await forward_concurrently(parser, std::move(lease), up, pool_key, keep_alive, head);
    }
    // The parser has read the request whole (no body, or an empty one): its head, and
    // the last chunk when chunked, go out in one write, without relay() (no body to
    // stream) and without a coroutine frame of their own. The buffers live in the
    // session: this frame is kept under the size Asio recycles (see process()).
    auto& upstream = *lease.stream;
    request_pieces_ = {net::buffer(request_head_), net::buffer(parser.chunked() ? kLastChunk : "")};
    upstream.expires_after(up.timeout);
    auto [sent, written] = co_await net::async_write(upstream, request_pieces_, use_tuple);
    if (sent) {
      if (lease.reused && retryable && attempt == 0) {
        lease = co_await worker_.upstreams().connect(up, tls);
        continue;  // a pooled connection the upstream had closed: once more, fresh
      }
      co_await send_error(ProxyError::upstream_request_failed);
      co_return false;
    }

    ResponseParser& response = new_response_parser(head);
    upstream.expires_after(up.timeout);
    // A client that leaves while the upstream works gives its slots back at once.
    if (filter_.holds_slots()) client_watch_.start(client_.socket(), upstream);
    const error_code rec = co_await detail::read_message_part(upstream, upstream_buffer_, response, nullptr);
    client_watch_.stop();
    if (client_watch_.client_left()) {
      // Nobody to answer, and the upstream connection is closed: no retry. 499 (as
      // nginx logs it) in the access log and the 4xx count.
      count_response(499);
      co_return false;
    }
    if (rec) {
      if (lease.reused && retryable && attempt == 0 && rec != beast::error::timeout) {
        upstream_buffer_.clear();
        lease = co_await worker_.upstreams().connect(up, tls);
        continue;
      }
      co_await send_error(rec == beast::error::timeout ? ProxyError::upstream_timeout
                          : is_parse_error(rec)       ? ProxyError::upstream_bad_response
                                                      : ProxyError::upstream_reset);
      co_return false;
    }
    if (websocket_ && response.get().result() == http::status::switching_protocols) {
      co_return co_await run_tunnel(response, upstream);  // the upstream connection ends with it
    }
    const ResponseRelay relayed = co_await relay_response(response, upstream, up, keep_alive, head);
    if (!relayed.ok) co_return false;  // the client saw a cut response: close to say so
    if (relayed.upstream_reusable) worker_.upstreams().release(up, pool_key, std::move(lease.stream));
    co_return keep_alive;
  }
}

// The head for the upstream, into request_head_.
void Session::write_request_head(const RequestParser& parser, const config::Upstream& up) {
  detail::UpstreamRequestHead how{up.url.base_path, peer_ip_,
                                  request_id_generated_ ? std::string_view(request_id_) : std::string_view(),
                                  {parser.chunked(), std::nullopt}, client_.is_tls(),
                                  websocket_ ? std::string_view(parser.get()[http::field::upgrade]) : std::string_view()};
  if (parser.content_length()) how.framing.length = *parser.content_length();
  request_head_.clear();
  detail::append_upstream_request_head(request_head_, parser.get(), how);
}

// "100 Continue" to a client that waits for it before sending its body.
net::awaitable<bool> Session::send_continue() {
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  client_.expires_after(snapshot_->config->http.idle_timeout);
  auto [ec, n] = co_await net::async_write(client_, net::buffer(kContinue), use_tuple);
  co_return !ec;
}

// A parser for the next upstream response (the last one is gone). It lives in the
// session, not in a coroutine frame (see process()).
ResponseParser& Session::new_response_parser(bool head) {
  ResponseParser& response = response_parser_.emplace(response_in_);
  response.header_limit(kMaxUpstreamHeader);
  response.body_limit(boost::none);
  if (head) response.skip(true);
  return response;
}

// Sends the request body upstream while the response is read and relayed back at the
// same time: an upstream that answers while it reads (an echo, a transcoder) would
// otherwise stall on full socket buffers in both directions until a timeout.
net::awaitable<bool> Session::forward_concurrently(RequestParser& parser, UpstreamPool::Lease lease,
                                                   const config::Upstream& up,
                                                   const std::string& pool_key, bool keep_alive,
                                                   bool head) {
  using namespace net::experimental::awaitable_operators;
  auto& upstream = *lease.stream;
  ConcurrentExchange exchange(client_.get_executor());
  auto both = send_request(parser, upstream, up, exchange) &&
              receive_response(upstream, up, keep_alive, head, exchange);
  const detail::RelayResult sent = co_await std::move(both);
  if (exchange.response_started) {
    if (sent.error || !exchange.response_ok) co_return false;
    if (exchange.upstream_reusable) worker_.upstreams().release(up, pool_key, std::move(lease.stream));
    co_return keep_alive;
  }
  if (client_watch_.client_left()) {
    count_response(499);  // as in forward()
    co_return false;
  }
  if (sent.side == detail::RelaySide::in && sent.error == http::error::body_limit) {
    co_await send_error(ProxyError::body_too_large);
  } else if (sent.side == detail::RelaySide::in && is_parse_error(sent.error)) {
    co_await send_error(ProxyError::malformed_body);
  } else if (sent.side == detail::RelaySide::in) {
    // The client went away or stalled mid-body (body_timeout closed it): nobody to answer.
  } else if (exchange.header_timed_out) {
    co_await send_error(ProxyError::upstream_timeout);
  } else {
    co_await send_error(is_parse_error(exchange.header_error) ? ProxyError::upstream_bad_response
                                                              : ProxyError::upstream_reset);
  }
  co_return false;
}

// The request half of forward_concurrently(). Once the request is sent whole, the
// upstream has its `timeout` to start answering.
net::awaitable<detail::RelayResult> Session::send_request(RequestParser& parser,
                                                          UpstreamPool::Stream& upstream,
                                                          const config::Upstream& up,
                                                          ConcurrentExchange& exchange) {
  const RelayChunk chunk(worker_);
  const auto sent = co_await detail::relay(client_, buffer_, parser, snapshot_->config->http.body_timeout,
                                           upstream, up.timeout, request_head_, parser.chunked(),
                                           chunk.span());
  record_.bytes_in = sent.body_bytes;
  if (sent.error) {
    // Ends a response that can no longer be complete. The request half may fail
    // without suspending (a malformed body already buffered), before the response half
    // has started its read: the flag tells it not to start.
    exchange.request_failed = true;
    upstream.cancel();
    co_return sent;
  }
  if (!exchange.header_settled) {
    // The client is not read from here on: watch it (see forward()). receive_response()
    // stops the watch as soon as the head is in, before it writes to the client.
    if (filter_.holds_slots()) client_watch_.start(client_.socket(), upstream);
    exchange.header_deadline.expires_after(up.timeout);
    auto [ec] = co_await exchange.header_deadline.async_wait(use_tuple);
    client_watch_.stop();
    if (!ec && !exchange.header_settled) {
      exchange.header_timed_out = true;
      upstream.cancel();
    }
  }
  co_return sent;
}

// The response half of forward_concurrently(). Its head has no deadline of its own
// while the request is still being sent (the upstream may wait for all of it).
net::awaitable<void> Session::receive_response(UpstreamPool::Stream& upstream,
                                               const config::Upstream& up, bool keep_alive,
                                               bool head, ConcurrentExchange& exchange) {
  if (exchange.request_failed) {
    exchange.header_settled = true;
    exchange.header_error = net::error::operation_aborted;
    co_return;
  }
  ResponseParser& response = new_response_parser(head);
  upstream.expires_never();  // applies to this read only while the request side writes
  const error_code ec = co_await detail::read_message_part(upstream, upstream_buffer_, response, nullptr);
  client_watch_.stop();  // before anything is written to the client: stop() cancels its socket's waits
  exchange.header_settled = true;
  exchange.header_deadline.cancel();
  if (ec) {
    upstream_buffer_.clear();
    exchange.header_error = ec;
    co_return;
  }
  exchange.response_started = true;
  const ResponseRelay relayed = co_await relay_response(response, upstream, up, keep_alive, head);
  exchange.response_ok = relayed.ok;
  exchange.upstream_reusable = relayed.upstream_reusable;
}

// The upstream accepted a WebSocket upgrade: its 101 goes to the client, then both
// connections carry the tunnel until either side closes or http.idle_timeout passes
// with no byte either way. The request's log line is written when it closes.
net::awaitable<bool> Session::run_tunnel(ResponseParser& response, UpstreamPool::Stream& upstream) {
  detail::ClientResponseHead how;
  how.extra_lines = filter_.header_lines();
  how.extra_names = filter_.header_names();
  how.upgrade = true;
  response_head_.clear();
  detail::append_client_response_head(response_head_, response.get(), how);
  count_response(response.get().result_int());
  const auto idle_timeout = snapshot_->config->http.idle_timeout;
  // Counted before the 101 goes out: a client that has its 101 finds the tunnel in
  // /metrics.
  auto& tunnels = worker_.stats().websocket_tunnels;
  tunnels.fetch_add(1, std::memory_order_relaxed);
  const error_code wec = co_await detail::write_piece(client_, response_head_, nullptr, 0, false, false, idle_timeout);
  if (wec) {
    tunnels.fetch_sub(1, std::memory_order_relaxed);
    co_return false;
  }
  const RelayChunk up(worker_);
  const RelayChunk down(worker_);
  const TunnelResult moved = co_await detail::tunnel(client_, buffer_, upstream, upstream_buffer_, idle_timeout,
                                                     up.span(), down.span());
  tunnels.fetch_sub(1, std::memory_order_relaxed);
  record_.bytes_in += moved.to_upstream;
  record_.bytes_out += moved.to_client;
  co_return false;
}

void Session::on_response_read() {
  filter_.release_slots();
  if (snapshot_->has_response_costs) {
    filter_.debit_response(response_fields_, snapshot_, worker_.limiter(), worker_.stats(), record_);
  }
}

// Relays the response whose head `response` has read. The caller decides about the
// upstream connection.
net::awaitable<ResponseRelay> Session::relay_response(ResponseParser& response,
                                                      UpstreamPool::Stream& upstream,
                                                      const config::Upstream& up, bool keep_alive,
                                                      bool head) {
  const auto& res = response.get();
  // The parser's flags, not lookups in the fields: it has read Connection already.
  const bool upstream_keep_alive = response.keep_alive();
  const bool chunked = response.chunked();
  const bool bodyless = head || res.result_int() / 100 == 1 ||
                        res.result() == http::status::no_content ||
                        res.result() == http::status::not_modified;
  const bool delimited = chunked || response.content_length().has_value() || response.is_done() || bodyless;
  // A drain that began while this request was in flight closes the connection after
  // it: say so, so that the client does not send another request into the close.
  keep_alive = keep_alive && !worker_.server().draining();
  detail::ClientResponseHead how;
  how.extra_lines = filter_.header_lines();
  how.extra_names = filter_.header_names();
  how.keep_alive = keep_alive;
  how.client_http10 = client_http10_;
  if (chunked || !delimited) {
    how.framing.chunked = true;  // a body up to EOF is re-framed for a keep-alive client
  } else if (response.content_length()) {
    how.framing.length = *response.content_length();
  }
  response_head_.clear();
  detail::append_client_response_head(response_head_, res, how);
  count_response(res.result_int());
  if (snapshot_->has_response_costs) {
    // cost_from_response: handed to the limiter before the response goes on, never
    // waited for.
    response_fields_.reset(res);
    filter_.debit_response(response_fields_, snapshot_, worker_.limiter(), worker_.stats(), record_);
  }
  const RelayChunk chunk(worker_);
  const auto got = co_await detail::relay(upstream, upstream_buffer_, response, up.timeout, client_,
                                          snapshot_->config->http.idle_timeout, response_head_,
                                          how.framing.chunked && !bodyless, chunk.span(), response_read_);
  upstream_buffer_.clear();
  record_.bytes_out += got.body_bytes;
  if (got.error && got.side == detail::RelaySide::in) {
    worker_.stats().count_upstream_error(got.error == beast::error::timeout ? UpstreamError::timeout
                                                                           : UpstreamError::truncated);
  }
  co_return ResponseRelay{!got.error, !got.error && upstream_keep_alive && delimited};
}

}  // namespace phlow::gateway::detail
