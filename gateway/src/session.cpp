// The request path (see session_impl.hpp): wait for a request, intake (head verdict,
// parse, framing, route), the rate-limit filter, then forward (upstream_exchange.cpp)
// or answer itself; the request log when it ends.
#include "gateway/session.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>

#include "gateway/router.hpp"
#include "gateway/server.hpp"
#include "session_impl.hpp"

namespace phlow::gateway {
namespace detail {
namespace {

constexpr std::uint64_t kDrainLimit = 64 * 1024;  // unread bodies up to this are skipped
// How long a connection accepted during a drain may take to send its request.
constexpr auto kFirstRequestWhileDraining = std::chrono::milliseconds(500);
// How long a TLS client gets to answer the gateway's close_notify before the close.
constexpr auto kTlsShutdownWait = std::chrono::milliseconds(100);
constexpr std::string_view kRequestIdField = "X-Request-Id";

TlsHandshakeError classify_handshake_error(const error_code& ec) {
  if (ec == beast::error::timeout) return TlsHandshakeError::timeout;
  if (ec.category() == net::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST) {
    return TlsHandshakeError::plain_http;
  }
  return TlsHandshakeError::failed;
}

// 32 random hex digits into `id` (its capacity is reused).
void random_request_id(std::mt19937_64& random, std::string& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  id.assign(32, '0');
  for (int half = 0; half < 2; ++half) {
    std::uint64_t bits = random();
    for (int i = 0; i < 16; ++i, bits >>= 4) id[static_cast<std::size_t>(half * 16 + i)] = kHex[bits & 15];
  }
}

}  // namespace

Session::Session(Worker& worker, net::ip::tcp::socket socket)
    : worker_(worker), client_(std::move(socket)) {
  filter_.attach(worker.slots());
  error_code ec;
  // Headers and body pieces go out as separate writes: Nagle would hold the second
  // until the client's delayed ACK (40 ms).
  client_.socket().set_option(net::ip::tcp::no_delay(true), ec);
  auto endpoint = client_.socket().remote_endpoint(ec);
  if (!ec) {
    auto address = endpoint.address();
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
      address = net::ip::make_address_v4(net::ip::v4_mapped, address.to_v6());
    }
    peer_ip_ = address.to_string();
  }
}

net::awaitable<void> Session::run() {
  try {
    if (co_await start_tls()) {
      while (co_await handle_request()) {
      }
    }
  } catch (const std::exception& e) {
    spdlog::error("session from {} ended by an unexpected error: {}", peer_ip_, e.what());
  }
  co_await close_connection();
}

// On the HTTPS listener: the TLS handshake, within http.header_timeout, with the
// certificate of the config in force now (a SIGHUP rotates it for new connections).
// A failure is counted and closes the connection; it is never more than that.
net::awaitable<bool> Session::start_tls() {
  const std::shared_ptr<const Snapshot> snapshot = worker_.snapshot();
  if (!snapshot->listener_tls) co_return true;
  SSL* ssl = SSL_new(snapshot->listener_tls->native_handle());
  if (ssl == nullptr) co_return false;
  client_.start_tls(ssl);
  client_.expires_after(snapshot->config->http.header_timeout);
  auto [ec] = co_await client_.tls().next_layer().async_handshake(net::ssl::stream_base::server, use_tuple);
  if (ec) {
    const TlsHandshakeError why = classify_handshake_error(ec);
    worker_.stats().count_tls_handshake_error(why);
    spdlog::debug("TLS handshake from {} failed ({}): {}", peer_ip_, to_string(why), ec.message());
    co_return false;
  }
  tls_established_ = true;
  bump(worker_.stats().client_tls_handshakes);
  co_return true;
}

// TLS: close_notify, and a moment for the client's; then the TCP close.
net::awaitable<void> Session::close_connection() {
  if (tls_established_ && client_.socket().is_open()) {
    client_.expires_after(kTlsShutdownWait);
    co_await client_.tls().next_layer().async_shutdown(use_tuple);
  }
  error_code ignored;
  client_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  client_.socket().close(ignored);
}

// Waits for the first byte of the next request within the idle timeout, so that the
// header timeout measures only the time a request takes to arrive. While draining, an
// idle keep-alive connection closes at once, but a new one was opened to send a request:
// it gets a moment to arrive.
net::awaitable<bool> Session::wait_for_request() {
  if (buffer_.size() > 0) co_return true;
  const bool first = !started_any_;
  started_any_ = true;
  if (worker_.server().draining()) co_return co_await wait_while_draining(first);
  client_.expires_after(worker_.snapshot()->config->http.idle_timeout);
  idle_entry_.socket = &client_.socket();
  worker_.add_idle(idle_entry_);
  auto [ec, n] = co_await client_.async_read_some(buffer_.prepare(4096), use_tuple);
  Worker::remove_idle(idle_entry_);
  if (ec == net::error::operation_aborted && worker_.server().draining()) {
    co_return co_await wait_while_draining(first);  // the drain cancelled the idle wait
  }
  if (ec) co_return false;
  buffer_.commit(n);
  co_return true;
}

net::awaitable<bool> Session::wait_while_draining(bool first) {
  if (!client_.is_tls() && take_arrived_request()) co_return true;
  // TLS: what arrived are records to decrypt; they are read as a new connection's are.
  error_code ec_available;
  const bool tls_arrived = client_.is_tls() && client_.socket().available(ec_available) > 0;
  if (!first && !tls_arrived) co_return false;
  client_.expires_after(kFirstRequestWhileDraining);
  auto [ec, n] = co_await client_.async_read_some(buffer_.prepare(4096), use_tuple);
  if (ec) co_return false;
  buffer_.commit(n);
  co_return true;
}

// While draining: takes the bytes of a request that the client sent before the drain
// reached this connection, so that it is answered (with Connection: close) instead of
// being reset with it unread. False when nothing has arrived: the connection closes.
bool Session::take_arrived_request() {
  error_code ec;
  const std::size_t available = client_.socket().available(ec);
  if (ec || available == 0) return false;
  const std::size_t n = client_.socket().read_some(buffer_.prepare(available), ec);
  if (ec) return false;
  buffer_.commit(n);
  return true;
}

net::awaitable<bool> Session::handle_request() {
  if (!co_await wait_for_request()) co_return false;
  snapshot_ = worker_.snapshot();  // one config for the whole request
  record_.reset(std::chrono::steady_clock::now(), snapshot_->unmatched_route_id);
  response_parser_.reset();
  RequestParser parser(request_in_);
  const bool keep_alive = co_await process(parser);
  filter_.release_slots();  // the response is complete, or the request ended otherwise
  if (AccessLogBuffer* log = worker_.access_log()) {
    record_.append_to(*log, request_id_, peer_ip_, parser.get().method_string());
  }
  co_return keep_alive;
}

// The steps of one request. What lives across a suspension here lives in the session,
// not in locals: Asio recycles coroutine frames up to 1 KiB only, and one frame that
// is larger per request costs a malloc and, by evicting a cached frame, another.
net::awaitable<bool> Session::process(RequestParser& parser) {
  const config::Config& cfg = *snapshot_->config;
  const auto header_limit = configure_request_parser(parser, cfg.http);
  client_http10_ = false;
  client_.expires_after(cfg.http.header_timeout);
  head_scanner_ = HeadScanner(cfg.http.max_headers);
  // Most heads arrive whole in the first read: then neither step below reads, and
  // neither costs a coroutine frame.
  if (!scan_head(header_limit)) {
    const bool buffered = co_await buffer_head(header_limit);
    if (!buffered) co_return false;  // nobody to answer
  }
  if (head_verdict_ == HeadScanner::Verdict::malformed ||
      head_verdict_ == HeadScanner::Verdict::too_many_fields) {
    co_await send_error(rejected_head_error(head_verdict_, head_scanner_.request_line_bytes(), header_limit));
    co_return false;
  }
  error_code ec;
  if (auto parsed = put_buffered(buffer_, parser, nullptr, 0, false)) {
    ec = *parsed;
  } else {
    ec = co_await read_message_part(client_, buffer_, parser, nullptr);
  }
  if (ec) co_return co_await reject_head(ec, header_limit);
  if (!has_unambiguous_framing(parser.get())) {
    co_await send_error(ProxyError::ambiguous_framing);
    co_return false;
  }
  const config::Route* route = route_request(parser);
  if (route == nullptr) co_return co_await answer_unrouted(parser);
  if (!filter_.start(*snapshot_, *route, view_of(parser.get()), worker_.limiter(), worker_.stats(),
                     record_, worker_.access_log() != nullptr)) {
    co_await check_limits_async();  // Redis: the only step that may wait on the limiter
  }
  if (const auto refusal = filter_.refusal()) co_return co_await answer_refused(parser, *refusal);
  if (!filter_.allowed()) co_return co_await answer_limited(parser);
  co_return co_await forward(parser, *route, keep_alive_);
}

// Scans what buffer_ holds; the verdict goes to head_verdict_. True when the head is
// whole, the scanner objects to it, or it outgrows `limit` (need_more: Beast's parser
// then reports header_limit): nothing more to read for it.
bool Session::scan_head(std::size_t limit) {
  const auto data = buffer_.cdata();
  head_verdict_ = head_scanner_.scan(std::string_view(static_cast<const char*>(data.data()), data.size()));
  return head_verdict_ != HeadScanner::Verdict::need_more || buffer_.size() >= limit;
}

// Reads into buffer_ (under the deadline already set) until scan_head() says the head
// is done. Returns false when the read failed: nobody to answer.
net::awaitable<bool> Session::buffer_head(std::size_t limit) {
  for (;;) {
    if (scan_head(limit)) co_return true;
    auto [ec, n] = co_await client_.async_read_some(buffer_.prepare(beast::read_size(buffer_, 65536)),
                                                    use_tuple);
    if (ec) co_return false;
    buffer_.commit(n);
  }
}

// Answers a request whose head could not be read, when there is someone to answer.
// Returns false: the connection closes.
net::awaitable<bool> Session::reject_head(error_code ec, std::size_t limit) {
  if (ec == http::error::header_limit) {
    co_await send_error(rejected_head_error(head_verdict_, head_scanner_.request_line_bytes(), limit));
  } else if (ec == http::error::body_limit) {
    co_await send_error(ProxyError::body_too_large);
  } else if (is_parse_error(ec)) {
    co_await send_error(ProxyError::malformed_request);
  }
  // else: closed, timed out or reset: nobody to answer
  co_return false;
}

RequestView Session::view_of(const FlatHead& req) const {
  return RequestView{req.method_string(), req.target(), host_, peer_ip_, fields_source_};
}

// Notes what the request is (request id, host, keep-alive, access-log fields) and
// finds its route (nullptr: none).
const config::Route* Session::route_request(const RequestParser& parser) {
  const config::Config& cfg = *snapshot_->config;
  const FlatHead& req = parser.get();
  client_http10_ = req.version() < 11;
  websocket_ = is_websocket_upgrade(req);
  keep_alive_ = parser.keep_alive() && !worker_.server().draining();
  // One pass over the fields for the few this step reads (the first of each), instead
  // of a lookup by name for each.
  std::string_view host;
  std::string_view client_request_id;
  bool host_seen = false;
  bool id_seen = false;
  bool expect_seen = false;
  expect_continue_ = false;
  for (const auto field : req) {
    if (field.name() == http::field::host) {
      if (!host_seen) host = field.value();
      host_seen = true;
    } else if (field.name() == http::field::expect) {
      if (!expect_seen) expect_continue_ = beast::iequals(field.value(), "100-continue");
      expect_seen = true;
    } else if (!id_seen && beast::iequals(field.name_string(), kRequestIdField)) {
      client_request_id = field.value();
      id_seen = true;
    }
  }
  lowercase_host(host, host_);
  fields_source_.reset(req);
  const RequestView view = view_of(req);

  request_id_generated_ = client_request_id.empty();
  if (request_id_generated_) {
    random_request_id(worker_.random(), request_id_);
  } else {
    request_id_.assign(client_request_id);
  }
  if (worker_.access_log()) {
    record_.client_ip = snapshot_->identifiers.client_ip(view);
    record_.path = snapshot_->identifiers.redact_target(req.target());
  }
  const config::Route* route = match_route(cfg, view);
  if (route != nullptr) {
    const auto route_index = static_cast<std::size_t>(route - cfg.routes.data());
    record_.route_id = snapshot_->route_ids[route_index];
    record_.route = snapshot_->route_labels[route_index];
    record_.upstream_name = route->upstream;
  }
  return route;
}

net::awaitable<bool> Session::answer_unrouted(RequestParser& parser) {
  const bool reusable = co_await drain_body(parser);
  co_await send(static_cast<http::status>(describe(ProxyError::no_route).status),
                proxy_error_body(ProxyError::no_route), {}, keep_alive_ && reusable);
  co_return keep_alive_ && reusable;
}

net::awaitable<bool> Session::answer_limited(RequestParser& parser) {
  const bool reusable = co_await drain_body(parser);
  co_await send(http::status::too_many_requests, filter_.rejection_body(), filter_.header_lines(),
                keep_alive_ && reusable);
  co_return keep_alive_ && reusable;
}

// A request the rate-limit filter refused before the limiter: an invalid JWT (401, with
// its challenge) or a bad cost header (400). Like a 429: nothing forwarded, a small
// body drained so the connection may carry the next request.
net::awaitable<bool> Session::answer_refused(RequestParser& parser, ProxyError why) {
  const bool reusable = co_await drain_body(parser);
  co_await send(static_cast<http::status>(describe(why).status), proxy_error_body(why),
                why == ProxyError::invalid_token ? kInvalidTokenChallenge : std::string_view{},
                keep_alive_ && reusable);
  co_return keep_alive_ && reusable;
}

// Waits for the limiter's decision (Redis). It is awaited into the filter's own slot,
// not into this coroutine's frame, which keeps the frame small (see process()).
net::awaitable<void> Session::check_limits_async() {
  filter_.decision_slot() = co_await worker_.limiter().async_check(filter_.pending(), net::use_awaitable);
  filter_.finish(worker_.stats(), record_, worker_.access_log() != nullptr);
}

// Counts the request as its response starts, so that a client that has read its
// response finds it in /metrics.
void Session::count_response(int status) {
  if (record_.status == 0) worker_.stats().count_request(record_.route_id, status);
  record_.status = status;
  observe_upstream();
}

void Session::observe_upstream() {
  if (!record_.upstream_start || record_.upstream_observed) return;
  record_.upstream_observed = true;
  worker_.stats().upstream.observe(std::chrono::steady_clock::now() - *record_.upstream_start);
}

// Skips a small unread request body so the connection can carry the next request.
// Returns false when the body is too large (or broken): the connection must close.
net::awaitable<bool> Session::drain_body(RequestParser& parser) {
  if (parser.is_done()) co_return true;
  if (parser.chunked() || !parser.content_length() || *parser.content_length() > kDrainLimit) {
    co_return false;
  }
  std::array<char, 4096> sink;
  while (!parser.is_done()) {
    parser.body().data = sink.data();
    parser.body().size = sink.size();
    client_.expires_after(snapshot_->config->http.body_timeout);
    auto [ec, n] = co_await http::async_read(client_, buffer_, parser, use_tuple);
    record_.bytes_in += sink.size() - parser.body().size;
    if (ec && ec != http::error::need_buffer) co_return false;
  }
  co_return true;
}

net::awaitable<void> Session::send(http::status status, std::string body, std::string_view extra_lines,
                                   bool keep_alive) {
  filter_.release_slots();  // an answer of the gateway's own ends the request
  count_response(static_cast<int>(status));
  record_.bytes_out += body.size();
  response_head_.clear();
  detail::append_own_response_head(response_head_, static_cast<unsigned>(status), extra_lines,
                                   body.size(), keep_alive && !worker_.server().draining(),
                                   client_http10_);
  const std::array<net::const_buffer, 2> pieces{net::buffer(response_head_), net::buffer(body)};
  client_.expires_after(snapshot_ ? snapshot_->config->http.idle_timeout : std::chrono::seconds(10));
  co_await net::async_write(client_, pieces, use_tuple);
}

// One of the gateway's own errors (ProxyError's table says which response and which
// upstream_errors_total kind); the connection closes after it.
net::awaitable<void> Session::send_error(ProxyError error) {
  const ProxyErrorInfo& info = describe(error);
  if (info.counted_as) worker_.stats().count_upstream_error(*info.counted_as);
  co_await send(static_cast<http::status>(info.status), proxy_error_body(error), {}, false);
}

}  // namespace detail

boost::asio::awaitable<void> serve_connection(Worker& worker, boost::asio::ip::tcp::socket socket) {
  detail::Session session(worker, std::move(socket));
  co_await session.run();
}

}  // namespace phlow::gateway
