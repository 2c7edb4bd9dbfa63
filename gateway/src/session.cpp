// The data path: session -> router -> identifier extractor -> limiter ->
// (upstream relay | 429). The only translation unit with Beast's HTTP parser.
#include "gateway/session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "gateway/rate_limit_response.hpp"
#include "gateway/router.hpp"
#include "gateway/server.hpp"
#include "gateway/worker.hpp"
#include "limiter/descriptor.hpp"
#include "relay.hpp"

namespace phlow::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using boost::system::error_code;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

namespace {

using RequestParser = http::request_parser<http::buffer_body>;
using ResponseParser = http::response_parser<http::buffer_body>;
constexpr std::size_t kRelayBuffer = 16 * 1024;
constexpr std::uint64_t kMaxUpstreamHeader = 64 * 1024;
constexpr std::uint64_t kDrainLimit = 64 * 1024;  // unread bodies up to this are skipped
// How long a connection accepted during a drain may take to send its request.
constexpr auto kFirstRequestWhileDraining = std::chrono::milliseconds(500);

bool is_parse_error(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::need_buffer;
}

class FieldsSource final : public HeaderSource {
 public:
  explicit FieldsSource(const http::fields& fields) : fields_(fields) {}
  void for_each(std::string_view name,
                const std::function<void(std::string_view)>& fn) const override {
    for (auto [it, end] = fields_.equal_range(name); it != end; ++it) fn(it->value());
  }

 private:
  const http::fields& fields_;
};

bool is_idempotent(http::verb v) {
  return v == http::verb::get || v == http::verb::head || v == http::verb::options ||
         v == http::verb::put || v == http::verb::delete_ || v == http::verb::trace;
}

// Removes the hop-by-hop headers (RFC 9110 7.6.1): Connection and what it names,
// Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding (re-framed), Upgrade.
void strip_hop_by_hop(http::fields& fields) {
  std::vector<std::string> named;
  for (auto [it, end] = fields.equal_range(http::field::connection); it != end; ++it) {
    for (auto token : http::token_list(it->value())) named.emplace_back(token);
  }
  for (const auto& name : named) fields.erase(name);
  for (auto f : {http::field::connection, http::field::keep_alive, http::field::proxy_connection,
                 http::field::proxy_authenticate, http::field::proxy_authorization, http::field::te,
                 http::field::trailer, http::field::transfer_encoding, http::field::upgrade}) {
    fields.erase(f);
  }
}

std::string lowercase_host(std::string_view host) {
  if (host.starts_with('[')) host = host.substr(0, host.find(']') + 1);
  else host = host.substr(0, host.find(':'));
  std::string out(host);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}


std::string random_request_id(std::mt19937_64& random) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    std::uint64_t bits = random();
    for (int i = 0; i < 16; ++i, bits >>= 4) id[static_cast<std::size_t>(half * 16 + i)] = kHex[bits & 15];
  }
  return id;
}

// What the upstream answered while a request body was still being sent.
struct ConcurrentExchange {
  explicit ConcurrentExchange(const net::any_io_executor& executor) : header_deadline(executor) {}
  net::steady_timer header_deadline;  // runs once the request is sent, until a response head
  bool header_settled = false;        // a response head arrived, or reading it failed
  bool header_timed_out = false;
  error_code header_error;
  bool response_started = false;  // the client has seen (part of) a response
  bool response_ok = false;       // ...and all of it
  bool upstream_reusable = false;
};

// How relaying a response went.
struct ResponseRelay {
  bool ok = false;                 // the client got the whole response
  bool upstream_reusable = false;  // the upstream connection may carry another request
};

// What one request did, for the metrics and the access log.
struct RequestRecord {
  std::chrono::steady_clock::time_point start;
  std::chrono::steady_clock::duration limiter{};
  std::chrono::steady_clock::duration upstream{};
  std::optional<std::chrono::steady_clock::time_point> upstream_start;  // set when forwarded
  bool upstream_observed = false;
  int status = 0;  // 0: no response was sent (the client went away first)
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::size_t route_id = 0;
  std::string_view route;     // label, owned by the snapshot
  std::string_view upstream_name;
  std::string_view decision = "none";
  std::string_view limit;     // owned by the snapshot
  std::string identifier;     // as in the key; only filled when logging
  std::string client_ip;      // only filled when logging
  std::string path;           // as received, API keys redacted; only filled when logging
};

class Session {
 public:
  Session(Worker& worker, net::ip::tcp::socket socket)
      : worker_(worker), client_(std::move(socket)) {
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

  net::awaitable<void> run();

 private:
  net::awaitable<bool> handle_request();
  net::awaitable<bool> process(RequestParser& parser);
  net::awaitable<bool> wait_for_request();
  net::awaitable<bool> wait_while_draining(bool first);
  bool take_arrived_request();
  net::awaitable<limiter::Decision> check_limits(const config::Route& route, const RequestView& view);
  void count_decisions(const config::Route& route, const limiter::Decision& decision);
  void finish_request(const RequestParser& parser);
  void count_response(int status);
  void observe_upstream();
  net::awaitable<bool> forward(RequestParser& parser, const config::Route& route,
                               const limiter::Decision& decision, bool keep_alive);
  net::awaitable<void> send(http::status status, std::string body, const HeaderList& extra,
                            bool keep_alive);
  net::awaitable<bool> drain_body(RequestParser& parser);
  void prepare_upstream_request(http::request<http::buffer_body>& req, const config::Upstream& up,
                                bool chunked, std::optional<std::uint64_t> length);
  void add_limit_headers(const limiter::Decision& decision, HeaderList& out) const;
  net::awaitable<ResponseRelay> relay_response(ResponseParser& response, UpstreamPool::Stream& upstream,
                                               const config::Upstream& up,
                                               const HeaderList& limit_headers, bool keep_alive);
  net::awaitable<bool> forward_concurrently(RequestParser& parser, UpstreamPool::Lease lease,
                                            const config::Upstream& up, const std::string& pool_key,
                                            const HeaderList& limit_headers, bool keep_alive,
                                            bool head);
  net::awaitable<detail::RelayResult> send_request(RequestParser& parser, UpstreamPool::Stream& upstream,
                                                   const config::Upstream& up,
                                                   ConcurrentExchange& exchange);
  net::awaitable<void> receive_response(UpstreamPool::Stream& upstream, const config::Upstream& up,
                                        const HeaderList& limit_headers, bool keep_alive, bool head,
                                        ConcurrentExchange& exchange);

  Worker& worker_;
  beast::tcp_stream client_;
  beast::flat_buffer buffer_;
  beast::flat_buffer upstream_buffer_;  // bytes read from the upstream of this request
  std::string peer_ip_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<limiter::Descriptor> descriptors_;
  std::vector<std::size_t> descriptor_limits_;  // config limit index per descriptor
  std::string identifier_;
  RequestRecord record_;
  bool started_any_ = false;  // a request has been awaited on this connection before
};

net::awaitable<void> Session::run() {
  try {
    while (co_await handle_request()) {
    }
  } catch (const std::exception& e) {
    spdlog::error("session from {} ended by an unexpected error: {}", peer_ip_, e.what());
  }
  error_code ignored;
  client_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  client_.close();
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
  worker_.add_idle(&client_.socket());
  auto [ec, n] = co_await client_.async_read_some(buffer_.prepare(4096), use_tuple);
  worker_.remove_idle(&client_.socket());
  if (ec == net::error::operation_aborted && worker_.server().draining()) {
    co_return co_await wait_while_draining(first);  // the drain cancelled the idle wait
  }
  if (ec) co_return false;
  buffer_.commit(n);
  co_return true;
}

net::awaitable<bool> Session::wait_while_draining(bool first) {
  if (take_arrived_request()) co_return true;
  if (!first) co_return false;
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
  record_ = RequestRecord{};
  record_.start = std::chrono::steady_clock::now();
  record_.route_id = snapshot_->unmatched_route_id;
  RequestParser parser;
  const bool keep_alive = co_await process(parser);
  finish_request(parser);
  co_return keep_alive;
}

net::awaitable<bool> Session::process(RequestParser& parser) {
  const config::Config& cfg = *snapshot_->config;
  parser.header_limit(static_cast<std::uint32_t>(std::min<std::uint64_t>(cfg.http.max_header_bytes, UINT32_MAX)));
  parser.body_limit(cfg.http.max_body_bytes);
  client_.expires_after(cfg.http.header_timeout);
  auto [ec, n] = co_await http::async_read_header(client_, buffer_, parser, use_tuple);
  if (ec == http::error::header_limit) {
    co_await send(http::status::request_header_fields_too_large,
                  error_body("Request header fields too large", "HEADERS_TOO_LARGE"), {}, false);
    co_return false;
  }
  if (ec == http::error::body_limit) {
    co_await send(http::status::payload_too_large,
                  error_body("Request body too large", "BODY_TOO_LARGE"), {}, false);
    co_return false;
  }
  if (is_parse_error(ec)) {
    co_await send(http::status::bad_request, error_body("Malformed request", "BAD_REQUEST"), {}, false);
    co_return false;
  }
  if (ec) co_return false;  // closed, timed out or reset: nobody to answer

  auto& req = parser.get();
  const bool keep_alive = req.keep_alive() && !worker_.server().draining();
  const std::string host = lowercase_host(req[http::field::host]);
  FieldsSource headers(req);
  const RequestView view{req.method_string(), req.target(), host, peer_ip_, headers};

  if (req["X-Request-Id"].empty()) req.set("X-Request-Id", random_request_id(worker_.random()));
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
  if (route == nullptr) {
    const bool reusable = co_await drain_body(parser);
    co_await send(http::status::not_found, error_body("No route matches", "NO_ROUTE"), {},
                  keep_alive && reusable);
    co_return keep_alive && reusable;
  }

  const limiter::Decision decision = co_await check_limits(*route, view);
  if (!decision.allowed) {
    HeaderList extra;
    add_limit_headers(decision, extra);
    const auto& rejected = cfg.limits[descriptor_limits_[decision.rejected_by]];
    const bool reusable = co_await drain_body(parser);
    co_await send(http::status::too_many_requests,
                  rate_limited_body(rejected.name(), decision.results[decision.rejected_by].retry_after_ms),
                  extra, keep_alive && reusable);
    co_return keep_alive && reusable;
  }
  co_return co_await forward(parser, *route, decision, keep_alive);
}

// All limits of the route in one limiter call.
net::awaitable<limiter::Decision> Session::check_limits(const config::Route& route,
                                                        const RequestView& view) {
  const config::Config& cfg = *snapshot_->config;
  // Descriptors and their key strings are reused across requests: no allocation once
  // a connection has seen its longest keys.
  std::size_t count = 0;
  descriptor_limits_.clear();
  for (std::size_t index : route.limits) {
    const config::LimitSpec& spec = cfg.limits[index];
    if (!snapshot_->identifiers.extract(spec.key, view, identifier_)) continue;  // skipped
    if (descriptors_.size() <= count) descriptors_.emplace_back();
    limiter::Descriptor& d = descriptors_[count++];
    d.limit = &snapshot_->limits[index];
    limiter::build_key(d.key, cfg.redis.key_prefix, spec.name(), identifier_);
    descriptor_limits_.push_back(index);
  }
  const std::span<const limiter::Descriptor> checked(descriptors_.data(), count);
  limiter::Decision decision;
  const auto started = std::chrono::steady_clock::now();
  if (count > 0) {
    if (auto now = worker_.limiter().try_check_now(checked)) {
      decision = *now;
    } else {
      decision = co_await worker_.limiter().async_check(checked, net::use_awaitable);
      WorkerStats& stats = worker_.stats();
      stats.redis_check.observe(std::chrono::steady_clock::now() - started);
      switch (decision.store_failure) {
        case limiter::StoreFailure::timeout: stats.count_redis_error(RedisError::timeout); break;
        case limiter::StoreFailure::connection: stats.count_redis_error(RedisError::connection); break;
        case limiter::StoreFailure::server_error: stats.count_redis_error(RedisError::server_error); break;
        case limiter::StoreFailure::bad_reply: stats.count_redis_error(RedisError::bad_reply); break;
        default: break;
      }
    }
  }
  record_.limiter = std::chrono::steady_clock::now() - started;
  count_decisions(route, decision);
  co_return decision;
}

// Counts each limit of the route by its own verdict, and names for the access log the
// limit that rejected the request (or would have, in shadow mode).
void Session::count_decisions(const config::Route& route, const limiter::Decision& decision) {
  WorkerStats& stats = worker_.stats();
  std::size_t next = 0;  // descriptors follow route.limits in order, minus skipped ones
  int named = decision.allowed ? limiter::kNone : decision.rejected_by;
  for (std::size_t index : route.limits) {
    const std::size_t id = snapshot_->limit_ids[index];
    if (next >= descriptor_limits_.size() || descriptor_limits_[next] != index) {
      stats.count_decision(id, Outcome::skipped);
      continue;
    }
    const limiter::LimitResult& r = decision.results[next];
    const Outcome outcome = r.allowed ? Outcome::allowed
                            : r.shadow ? Outcome::shadow_limited
                                       : Outcome::limited;
    stats.count_decision(id, outcome);
    if (outcome == Outcome::shadow_limited && named == limiter::kNone) named = static_cast<int>(next);
    if (outcome != Outcome::allowed) {
      const std::string& key = descriptors_[next].key;
      stats.count_limited_identifier(
          std::string_view(key).substr(snapshot_->config->redis.key_prefix.size()));
    }
    ++next;
  }
  if (descriptor_limits_.empty()) return;
  record_.decision = !decision.allowed ? "limited"
                     : decision.shadow_limited() ? "shadow_limited"
                                                 : "allowed";
  if (named != limiter::kNone) {
    const auto& spec = snapshot_->config->limits[descriptor_limits_[named]];
    record_.limit = spec.name();
    if (worker_.access_log()) {
      const std::string& key = descriptors_[named].key;
      record_.identifier =
          key.substr(snapshot_->config->redis.key_prefix.size() + spec.name().size() + 1);
    }
  }
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

void Session::finish_request(const RequestParser& parser) {
  if (record_.status == 0) return;
  AccessLogBuffer* log = worker_.access_log();
  if (log == nullptr) return;
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  const auto& req = parser.get();
  AccessRecord r;
  r.time = std::chrono::system_clock::now();
  r.request_id = req["X-Request-Id"];
  r.client_ip = record_.client_ip.empty() ? std::string_view(peer_ip_) : record_.client_ip;
  r.method = req.method_string();
  r.path = record_.path;
  r.route = record_.route;
  r.upstream = record_.upstream_name;
  r.status = record_.status;
  r.bytes_in = record_.bytes_in;
  r.bytes_out = record_.bytes_out;
  r.total = duration_cast<microseconds>(std::chrono::steady_clock::now() - record_.start);
  r.limiter = duration_cast<microseconds>(record_.limiter);
  r.upstream_time = duration_cast<microseconds>(record_.upstream);
  r.decision = record_.decision;
  r.limit = record_.limit;
  r.identifier = record_.identifier;
  log->append(r);
}

void Session::add_limit_headers(const limiter::Decision& decision, HeaderList& out) const {
  const int index = decision.allowed ? decision.most_restrictive : decision.rejected_by;
  if (index == limiter::kNone) return;
  const auto& spec = snapshot_->config->limits[descriptor_limits_[index]];
  append_rate_limit_headers(snapshot_->config->response_headers, decision, index, spec.name(),
                            spec.limit.window_ms, out);
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
    parser.get().body().data = sink.data();
    parser.get().body().size = sink.size();
    auto [ec, n] = co_await http::async_read(client_, buffer_, parser, use_tuple);
    record_.bytes_in += sink.size() - parser.get().body().size;
    if (ec && ec != http::error::need_buffer) co_return false;
  }
  co_return true;
}

net::awaitable<void> Session::send(http::status status, std::string body, const HeaderList& extra,
                                   bool keep_alive) {
  count_response(static_cast<int>(status));
  record_.bytes_out += body.size();
  http::response<http::string_body> res{status, 11};
  res.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : extra) res.insert(name, value);
  res.body() = std::move(body);
  res.keep_alive(keep_alive && !worker_.server().draining());
  res.prepare_payload();
  client_.expires_after(snapshot_ ? snapshot_->config->http.idle_timeout : std::chrono::seconds(10));
  co_await http::async_write(client_, res, use_tuple);
}

void Session::prepare_upstream_request(http::request<http::buffer_body>& req,
                                       const config::Upstream& up, bool chunked,
                                       std::optional<std::uint64_t> length) {
  strip_hop_by_hop(req);
  req.erase(http::field::expect);  // the gateway answered 100-continue itself
  std::string forwarded(req["X-Forwarded-For"]);
  forwarded = forwarded.empty() ? peer_ip_ : forwarded + ", " + peer_ip_;
  req.set("X-Forwarded-For", forwarded);
  req.set("X-Forwarded-Proto", "http");
  if (!up.url.base_path.empty()) req.target(up.url.base_path + std::string(req.target()));
  req.version(11);
  if (chunked) {
    req.chunked(true);
  } else if (length) {
    req.content_length(*length);
  }
  req.keep_alive(true);
}

// Relays the request upstream and the response back. Returns whether the client
// connection can carry another request.
net::awaitable<bool> Session::forward(RequestParser& parser, const config::Route& route,
                                      const limiter::Decision& decision, bool keep_alive) {
  const config::Config& cfg = *snapshot_->config;
  const config::Upstream& up = cfg.upstreams[route.upstream_index];
  const std::string& pool_key = snapshot_->upstream_keys[route.upstream_index];
  auto& req = parser.get();
  const bool expect_continue = beast::iequals(req[http::field::expect], "100-continue");
  const bool head = req.method() == http::verb::head;
  const bool retryable = is_idempotent(req.method()) && parser.is_done();
  std::optional<std::uint64_t> length;
  if (parser.content_length()) length = *parser.content_length();
  prepare_upstream_request(req, up, parser.chunked(), length);

  HeaderList limit_headers;
  add_limit_headers(decision, limit_headers);

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
  UpstreamPool::Lease lease = co_await worker_.upstreams().acquire(up, pool_key, reuse);
  for (int attempt = 0;; ++attempt) {
    if (lease.error) {
      const bool timed_out = lease.error == beast::error::timeout;
      worker_.stats().count_upstream_error(timed_out ? UpstreamError::connect_timeout
                                                     : UpstreamError::connect_refused);
      co_await send(timed_out ? http::status::gateway_timeout : http::status::bad_gateway,
                    error_body(timed_out ? "Upstream connect timed out" : "Upstream unreachable",
                               timed_out ? "UPSTREAM_TIMEOUT" : "UPSTREAM_UNREACHABLE"),
                    {}, false);
      co_return false;
    }
    if (expect_continue && attempt == 0) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      client_.expires_after(cfg.http.idle_timeout);
      auto [cec, cn] = co_await http::async_write(client_, cont, use_tuple);
      if (cec) co_return false;
    }
    if (!parser.is_done()) {
      // A body still to come is never retried: stream it while the response comes back.
      co_return co_await forward_concurrently(parser, std::move(lease), up, pool_key, limit_headers,
                                              keep_alive, head);
    }
    auto& upstream = *lease.stream;
    const auto sent = co_await detail::relay(client_, buffer_, parser, cfg.http.idle_timeout,
                                             upstream, up.timeout);
    record_.bytes_in = sent.body_bytes;
    if (sent.error) {
      if (sent.side == detail::RelaySide::in && sent.error == http::error::body_limit) {
        co_await send(http::status::payload_too_large,
                      error_body("Request body too large", "BODY_TOO_LARGE"), {}, false);
      } else if (sent.side == detail::RelaySide::out && lease.reused && retryable && attempt == 0) {
        lease = co_await worker_.upstreams().acquire(up, pool_key, UpstreamPool::Reuse::fresh);
        continue;  // a pooled connection the upstream had closed: once more, fresh
      } else if (sent.side == detail::RelaySide::out) {
        worker_.stats().count_upstream_error(UpstreamError::reset);
        co_await send(http::status::bad_gateway,
                      error_body("Upstream failed while receiving the request", "UPSTREAM_ERROR"),
                      {}, false);
      }
      co_return false;
    }

    ResponseParser response;
    response.header_limit(kMaxUpstreamHeader);
    response.body_limit(boost::none);
    if (head) response.skip(true);
    upstream.expires_after(up.timeout);
    auto [rec, rn] = co_await http::async_read_header(upstream, upstream_buffer_, response, use_tuple);
    if (rec) {
      if (lease.reused && retryable && attempt == 0 && rec != beast::error::timeout) {
        upstream_buffer_.clear();
        lease = co_await worker_.upstreams().acquire(up, pool_key, UpstreamPool::Reuse::fresh);
        continue;
      }
      const bool timed_out = rec == beast::error::timeout;
      worker_.stats().count_upstream_error(timed_out           ? UpstreamError::timeout
                                           : is_parse_error(rec) ? UpstreamError::bad_response
                                                                 : UpstreamError::reset);
      co_await send(timed_out ? http::status::gateway_timeout : http::status::bad_gateway,
                    error_body(timed_out ? "Upstream timed out" : "Upstream sent no valid response",
                               timed_out ? "UPSTREAM_TIMEOUT" : "UPSTREAM_ERROR"),
                    {}, false);
      co_return false;
    }
    const ResponseRelay relayed =
        co_await relay_response(response, upstream, up, limit_headers, keep_alive);
    if (!relayed.ok) co_return false;  // the client saw a cut response: close to say so
    if (relayed.upstream_reusable) worker_.upstreams().release(up, pool_key, std::move(lease.stream));
    co_return keep_alive;
  }
}

// Sends the request body upstream while the response is read and relayed back at the
// same time: an upstream that answers while it reads (an echo, a transcoder) would
// otherwise stall on full socket buffers in both directions until a timeout.
net::awaitable<bool> Session::forward_concurrently(RequestParser& parser, UpstreamPool::Lease lease,
                                                   const config::Upstream& up,
                                                   const std::string& pool_key,
                                                   const HeaderList& limit_headers, bool keep_alive,
                                                   bool head) {
  using namespace net::experimental::awaitable_operators;
  auto& upstream = *lease.stream;
  ConcurrentExchange exchange(client_.get_executor());
  auto both = send_request(parser, upstream, up, exchange) &&
              receive_response(upstream, up, limit_headers, keep_alive, head, exchange);
  const detail::RelayResult sent = co_await std::move(both);
  if (exchange.response_started) {
    if (sent.error || !exchange.response_ok) co_return false;
    if (exchange.upstream_reusable) worker_.upstreams().release(up, pool_key, std::move(lease.stream));
    co_return keep_alive;
  }
  if (sent.side == detail::RelaySide::in && sent.error == http::error::body_limit) {
    co_await send(http::status::payload_too_large,
                  error_body("Request body too large", "BODY_TOO_LARGE"), {}, false);
  } else if (sent.side == detail::RelaySide::in) {
    // The client went away or stalled mid-body: nobody to answer.
  } else if (exchange.header_timed_out) {
    worker_.stats().count_upstream_error(UpstreamError::timeout);
    co_await send(http::status::gateway_timeout,
                  error_body("Upstream timed out", "UPSTREAM_TIMEOUT"), {}, false);
  } else {
    worker_.stats().count_upstream_error(is_parse_error(exchange.header_error)
                                             ? UpstreamError::bad_response
                                             : UpstreamError::reset);
    co_await send(http::status::bad_gateway,
                  error_body("Upstream sent no valid response", "UPSTREAM_ERROR"), {}, false);
  }
  co_return false;
}

// The request half of forward_concurrently(). Once the request is sent whole, the
// upstream has its `timeout` to start answering.
net::awaitable<detail::RelayResult> Session::send_request(RequestParser& parser,
                                                          UpstreamPool::Stream& upstream,
                                                          const config::Upstream& up,
                                                          ConcurrentExchange& exchange) {
  const auto sent = co_await detail::relay(client_, buffer_, parser,
                                           snapshot_->config->http.idle_timeout, upstream, up.timeout);
  record_.bytes_in = sent.body_bytes;
  if (sent.error) {
    upstream.cancel();  // ends a response that can no longer be complete
    co_return sent;
  }
  if (!exchange.header_settled) {
    exchange.header_deadline.expires_after(up.timeout);
    auto [ec] = co_await exchange.header_deadline.async_wait(use_tuple);
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
                                               const config::Upstream& up,
                                               const HeaderList& limit_headers, bool keep_alive,
                                               bool head, ConcurrentExchange& exchange) {
  ResponseParser response;
  response.header_limit(kMaxUpstreamHeader);
  response.body_limit(boost::none);
  if (head) response.skip(true);
  upstream.expires_never();  // applies to this read only while the request side writes
  auto [ec, n] = co_await http::async_read_header(upstream, upstream_buffer_, response, use_tuple);
  exchange.header_settled = true;
  exchange.header_deadline.cancel();
  if (ec) {
    upstream_buffer_.clear();
    exchange.header_error = ec;
    co_return;
  }
  exchange.response_started = true;
  const ResponseRelay relayed = co_await relay_response(response, upstream, up, limit_headers, keep_alive);
  exchange.response_ok = relayed.ok;
  exchange.upstream_reusable = relayed.upstream_reusable;
}

// Relays the response whose head `response` has read. The caller decides about the
// upstream connection.
net::awaitable<ResponseRelay> Session::relay_response(ResponseParser& response,
                                                      UpstreamPool::Stream& upstream,
                                                      const config::Upstream& up,
                                                      const HeaderList& limit_headers,
                                                      bool keep_alive) {
  auto& res = response.get();
  const bool upstream_keep_alive = res.keep_alive();
  const bool chunked = response.chunked();
  const bool delimited = chunked || res.has_content_length() || response.is_done() ||
                         res.result_int() / 100 == 1 || res.result() == http::status::no_content ||
                         res.result() == http::status::not_modified;
  std::optional<std::uint64_t> length;
  if (response.content_length()) length = *response.content_length();
  strip_hop_by_hop(res);
  for (const auto& [name, value] : limit_headers) res.set(name, value);
  // A drain that began while this request was in flight closes the connection after
  // it: say so, so that the client does not send another request into the close.
  keep_alive = keep_alive && !worker_.server().draining();
  if (chunked || !delimited) {
    res.chunked(true);  // a body up to EOF is re-framed for a keep-alive client
  } else if (length) {
    res.content_length(*length);
  }
  res.keep_alive(keep_alive);
  count_response(res.result_int());
  const auto got = co_await detail::relay(upstream, upstream_buffer_, response, up.timeout,
                                          client_, snapshot_->config->http.idle_timeout);
  upstream_buffer_.clear();
  record_.bytes_out += got.body_bytes;
  if (got.error && got.side == detail::RelaySide::in) {
    worker_.stats().count_upstream_error(got.error == beast::error::timeout ? UpstreamError::timeout
                                                                           : UpstreamError::truncated);
  }
  co_return ResponseRelay{!got.error, !got.error && upstream_keep_alive && delimited};
}

}  // namespace

net::awaitable<void> serve_connection(Worker& worker, net::ip::tcp::socket socket) {
  Session session(worker, std::move(socket));
  co_await session.run();
}

}  // namespace phlow::gateway
