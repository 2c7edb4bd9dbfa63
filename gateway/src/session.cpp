// The data path: session -> router -> identifier extractor -> limiter ->
// (upstream relay | 429). The only translation unit with Beast's HTTP parser.
#include "gateway/session.hpp"

#include <memory_resource>

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "gateway/head_scanner.hpp"
#include "gateway/rate_limit_response.hpp"
#include "gateway/router.hpp"
#include "gateway/server.hpp"
#include "gateway/worker.hpp"
#include "limiter/descriptor.hpp"
#include "http_head.hpp"
#include "relay.hpp"
#include "request_parser.hpp"

namespace phlow::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using boost::system::error_code;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

namespace {

using FieldsAllocator = std::pmr::polymorphic_allocator<char>;
using ResponseParser = http::response_parser<http::buffer_body, FieldsAllocator>;
constexpr std::uint64_t kMaxUpstreamHeader = 64 * 1024;
constexpr std::uint64_t kDrainLimit = 64 * 1024;  // unread bodies up to this are skipped
// How long a connection accepted during a drain may take to send its request.
constexpr auto kFirstRequestWhileDraining = std::chrono::milliseconds(500);

bool is_parse_error(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::need_buffer;
}

using Request = http::request<http::buffer_body, detail::Fields>;

bool is_idempotent(http::verb v) {
  return v == http::verb::get || v == http::verb::head || v == http::verb::options ||
         v == http::verb::put || v == http::verb::delete_ || v == http::verb::trace;
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

// What the upstream answered while a request body was still being sent.
struct ConcurrentExchange {
  explicit ConcurrentExchange(const net::any_io_executor& executor) : header_deadline(executor) {}
  net::steady_timer header_deadline;  // runs once the request is sent, until a response head
  bool header_settled = false;        // a response head arrived, or reading it failed
  bool header_timed_out = false;
  bool request_failed = false;  // the request half gave up (maybe before the other started)
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

// A relay buffer borrowed from the worker for one relay.
class RelayChunk {
 public:
  explicit RelayChunk(Worker& worker) : worker_(worker), chunk_(worker.take_relay_chunk()) {}
  ~RelayChunk() { worker_.give_relay_chunk(std::move(chunk_)); }
  RelayChunk(const RelayChunk&) = delete;
  RelayChunk& operator=(const RelayChunk&) = delete;
  std::span<char> span() const { return {chunk_.get(), Worker::kRelayChunk}; }

 private:
  Worker& worker_;
  std::unique_ptr<char[]> chunk_;
};

class Session {
 public:
  Session(Worker& worker, net::ip::tcp::socket socket)
      : worker_(worker), client_(std::move(socket)) {
    error_code ec;
    // Headers and body pieces go out as separate writes: Nagle would hold the second
    // until the client's delayed ACK (40 ms).
    client_.socket().set_option(net::ip::tcp::no_delay(true), ec);
    idle_entry_.socket = &client_.socket();
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
  bool check_limits_now(const config::Route& route, const Request& req);
  ResponseParser& new_response_parser(bool head);
  void write_request_head(const RequestParser& parser, const config::Upstream& up);
  net::awaitable<bool> send_continue();
  net::awaitable<void> send_error(http::status status, std::string_view message, std::string_view code);
  net::awaitable<bool> reject_head(error_code ec, std::size_t limit);
  net::awaitable<bool> buffer_head(std::size_t limit);
  net::awaitable<void> reject_scanned_head(HeadScanner::Verdict verdict, std::size_t limit);
  RequestView view_of(const Request& req) const;
  const config::Route* route_request(const Request& req);
  net::awaitable<bool> answer_unrouted(RequestParser& parser);
  net::awaitable<bool> answer_limited(RequestParser& parser);
  net::awaitable<void> check_limits_async(const config::Route& route);
  void count_decisions(const config::Route& route, const limiter::Decision& decision);
  void finish_request(const RequestParser& parser);
  void count_response(int status);
  void observe_upstream();
  net::awaitable<bool> forward(RequestParser& parser, const config::Route& route, bool keep_alive);
  net::awaitable<void> send(http::status status, std::string body, std::string_view extra_lines,
                            bool keep_alive);
  net::awaitable<bool> drain_body(RequestParser& parser);
  void render_limit_headers(const limiter::Decision& decision);
  net::awaitable<ResponseRelay> relay_response(ResponseParser& response, UpstreamPool::Stream& upstream,
                                               const config::Upstream& up, bool keep_alive, bool head);
  net::awaitable<bool> forward_concurrently(RequestParser& parser, UpstreamPool::Lease lease,
                                            const config::Upstream& up, const std::string& pool_key,
                                            bool keep_alive, bool head);
  net::awaitable<detail::RelayResult> send_head(RequestParser& parser, UpstreamPool::Stream& upstream,
                                                const config::Upstream& up);
  net::awaitable<detail::RelayResult> send_request(RequestParser& parser, UpstreamPool::Stream& upstream,
                                                   const config::Upstream& up,
                                                   ConcurrentExchange& exchange);
  net::awaitable<void> receive_response(UpstreamPool::Stream& upstream, const config::Upstream& up,
                                        bool keep_alive, bool head, ConcurrentExchange& exchange);

  Worker& worker_;
  beast::tcp_stream client_;
  beast::flat_buffer buffer_;
  beast::flat_buffer upstream_buffer_;  // bytes read from the upstream of this request
  std::string peer_ip_;
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<limiter::Descriptor> descriptors_;
  std::vector<std::size_t> descriptor_limits_;  // config limit index per descriptor
  std::string identifier_;
  std::span<const limiter::Descriptor> checked_;  // the descriptors of this request
  std::chrono::steady_clock::time_point limiter_started_;
  limiter::Decision decision_;
  RequestRecord record_;
  bool started_any_ = false;  // a request has been awaited on this connection before
  // Per request, their capacity kept across requests: no allocation once a connection
  // has seen its longest heads.
  HeadScanner head_scanner_{0};    // checks the raw head before Beast parses it
  HeadScanner::Verdict head_verdict_ = HeadScanner::Verdict::need_more;
  std::string host_;               // Host without port, lowercase
  FieldsSource fields_source_;
  bool keep_alive_ = false;        // the client's connection may carry another request
  std::string request_id_;         // the client's X-Request-Id, or one made up
  bool request_id_generated_ = false;
  bool client_http10_ = false;
  std::string limit_lines_;        // the rate-limit headers, "Name: value\r\n" each
  std::array<std::string_view, 8> limit_names_{};
  std::size_t limit_name_count_ = 0;
  Worker::IdleEntry idle_entry_;
  // The fields of this request's messages; released when the next request starts.
  alignas(std::max_align_t) std::array<std::byte, 2048> arena_buffer_;
  std::pmr::monotonic_buffer_resource arena_{arena_buffer_.data(), arena_buffer_.size()};
  std::optional<ResponseParser> response_parser_;  // after arena_: destroyed before it
  std::string request_head_;       // to the upstream
  std::string response_head_;      // to the client
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
  response_parser_.reset();
  arena_.release();  // the parsers of the previous request are gone
  RequestParser parser(std::piecewise_construct, std::make_tuple(), std::make_tuple(FieldsAllocator(&arena_)));
  const bool keep_alive = co_await process(parser);
  finish_request(parser);
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
  if (!co_await buffer_head(header_limit)) co_return false;  // nobody to answer
  if (head_verdict_ == HeadScanner::Verdict::malformed ||
      head_verdict_ == HeadScanner::Verdict::too_many_fields) {
    co_await reject_scanned_head(head_verdict_, header_limit);
    co_return false;
  }
  const error_code ec = co_await detail::read_message_part(client_, buffer_, parser, nullptr);
  if (ec) co_return co_await reject_head(ec, header_limit);
  if (!has_unambiguous_framing(parser.get())) {
    co_await send_error(http::status::bad_request, "Ambiguous message framing", "BAD_REQUEST");
    co_return false;
  }
  const config::Route* route = route_request(parser.get());
  if (route == nullptr) co_return co_await answer_unrouted(parser);
  if (!check_limits_now(*route, parser.get())) co_await check_limits_async(*route);
  render_limit_headers(decision_);
  if (!decision_.allowed) co_return co_await answer_limited(parser);
  co_return co_await forward(parser, *route, keep_alive_);
}

// Reads into buffer_ (under the deadline already set) until the whole request head is
// there, the scanner objects to it, or it outgrows `limit` (need_more: Beast's parser
// then reports header_limit). The verdict goes to head_verdict_. Returns false when the
// read failed: nobody to answer.
net::awaitable<bool> Session::buffer_head(std::size_t limit) {
  for (;;) {
    const auto data = buffer_.cdata();
    head_verdict_ =
        head_scanner_.scan(std::string_view(static_cast<const char*>(data.data()), data.size()));
    if (head_verdict_ != HeadScanner::Verdict::need_more || buffer_.size() >= limit) co_return true;
    auto [ec, n] = co_await client_.async_read_some(buffer_.prepare(beast::read_size(buffer_, 65536)),
                                                    use_tuple);
    if (ec) co_return false;
    buffer_.commit(n);
  }
}

// Answers a request head that is not parsed further: malformed (400), too many fields
// or bytes (431), a request line over the limit by itself (414). The connection closes.
net::awaitable<void> Session::reject_scanned_head(HeadScanner::Verdict verdict, std::size_t limit) {
  if (verdict == HeadScanner::Verdict::malformed) {
    co_await send_error(http::status::bad_request, "Malformed request", "BAD_REQUEST");
  } else if (verdict == HeadScanner::Verdict::too_many_fields) {
    co_await send_error(http::status::request_header_fields_too_large, "Too many request header fields",
                        "TOO_MANY_HEADERS");
  } else if (head_scanner_.request_line_bytes() == 0 || head_scanner_.request_line_bytes() > limit) {
    co_await send_error(http::status::uri_too_long, "Request line too long", "URI_TOO_LONG");
  } else {
    co_await send_error(http::status::request_header_fields_too_large, "Request header fields too large",
                        "HEADERS_TOO_LARGE");
  }
}

// Answers a request whose head could not be read, when there is someone to answer.
// Returns false: the connection closes.
net::awaitable<bool> Session::reject_head(error_code ec, std::size_t limit) {
  if (ec == http::error::header_limit) {
    co_await reject_scanned_head(head_verdict_, limit);
  } else if (ec == http::error::body_limit) {
    co_await send_error(http::status::payload_too_large, "Request body too large", "BODY_TOO_LARGE");
  } else if (is_parse_error(ec)) {
    co_await send_error(http::status::bad_request, "Malformed request", "BAD_REQUEST");
  }
  // else: closed, timed out or reset: nobody to answer
  co_return false;
}

RequestView Session::view_of(const Request& req) const {
  return RequestView{req.method_string(), req.target(), host_, peer_ip_, fields_source_};
}

// Notes what the request is (request id, host, keep-alive, access-log fields) and
// finds its route (nullptr: none).
const config::Route* Session::route_request(const Request& req) {
  const config::Config& cfg = *snapshot_->config;
  client_http10_ = req.version() < 11;
  keep_alive_ = req.keep_alive() && !worker_.server().draining();
  lowercase_host(req[http::field::host], host_);
  fields_source_.reset(req);
  const RequestView view = view_of(req);

  const std::string_view client_request_id = req["X-Request-Id"];
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
  co_await send(http::status::not_found, error_body("No route matches", "NO_ROUTE"), {},
                keep_alive_ && reusable);
  co_return keep_alive_ && reusable;
}

net::awaitable<bool> Session::answer_limited(RequestParser& parser) {
  const auto& rejected = snapshot_->config->limits[descriptor_limits_[decision_.rejected_by]];
  const bool reusable = co_await drain_body(parser);
  co_await send(http::status::too_many_requests,
                rate_limited_body(rejected.name(), decision_.results[decision_.rejected_by].retry_after_ms),
                limit_lines_, keep_alive_ && reusable);
  co_return keep_alive_ && reusable;
}

// All limits of the route in one limiter call, into decision_: here when the limiter
// can decide at once (in memory), else false and check_limits_async() waits for Redis.
// The decision lives in the session, not in coroutine frames, which keeps those small.
bool Session::check_limits_now(const config::Route& route, const Request& req) {
  const config::Config& cfg = *snapshot_->config;
  const RequestView view = view_of(req);
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
  checked_ = std::span<const limiter::Descriptor>(descriptors_.data(), count);
  limiter_started_ = std::chrono::steady_clock::now();
  decision_ = limiter::Decision{};
  if (count > 0) {
    auto now = worker_.limiter().try_check_now(checked_);
    if (!now) return false;
    decision_ = *now;
  }
  record_.limiter = std::chrono::steady_clock::now() - limiter_started_;
  count_decisions(route, decision_);
  return true;
}

net::awaitable<void> Session::check_limits_async(const config::Route& route) {
  decision_ = co_await worker_.limiter().async_check(checked_, net::use_awaitable);
  const auto elapsed = std::chrono::steady_clock::now() - limiter_started_;
  WorkerStats& stats = worker_.stats();
  stats.redis_check.observe(elapsed);
  switch (decision_.store_failure) {
    case limiter::StoreFailure::timeout: stats.count_redis_error(RedisError::timeout); break;
    case limiter::StoreFailure::connection: stats.count_redis_error(RedisError::connection); break;
    case limiter::StoreFailure::server_error: stats.count_redis_error(RedisError::server_error); break;
    case limiter::StoreFailure::bad_reply: stats.count_redis_error(RedisError::bad_reply); break;
    default: break;
  }
  record_.limiter = elapsed;
  count_decisions(route, decision_);
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
  r.request_id = request_id_;
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

void Session::render_limit_headers(const limiter::Decision& decision) {
  limit_lines_.clear();
  limit_name_count_ = 0;
  const int index = decision.allowed ? decision.most_restrictive : decision.rejected_by;
  if (index == limiter::kNone) return;
  const auto& spec = snapshot_->config->limits[descriptor_limits_[index]];
  for_each_rate_limit_header(snapshot_->config->response_headers, decision, index, spec.name(),
                             spec.limit.window_ms, [this](std::string_view name, std::string_view value) {
                               detail::append_field(limit_lines_, name, value);
                               if (limit_name_count_ < limit_names_.size()) limit_names_[limit_name_count_++] = name;
                             });
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
    client_.expires_after(snapshot_->config->http.body_timeout);
    auto [ec, n] = co_await http::async_read(client_, buffer_, parser, use_tuple);
    record_.bytes_in += sink.size() - parser.get().body().size;
    if (ec && ec != http::error::need_buffer) co_return false;
  }
  co_return true;
}

net::awaitable<void> Session::send(http::status status, std::string body, std::string_view extra_lines,
                                   bool keep_alive) {
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

// Relays the request upstream and the response back. Returns whether the client
// connection can carry another request.
net::awaitable<bool> Session::forward(RequestParser& parser, const config::Route& route, bool keep_alive) {
  const config::Config& cfg = *snapshot_->config;
  const config::Upstream& up = cfg.upstreams[route.upstream_index];
  const std::string& pool_key = snapshot_->upstream_keys[route.upstream_index];
  auto& req = parser.get();
  const bool expect_continue = beast::iequals(req[http::field::expect], "100-continue");
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
  UpstreamPool::Lease lease = co_await worker_.upstreams().acquire(up, pool_key, reuse);
  for (int attempt = 0;; ++attempt) {
    if (lease.error) {
      const bool timed_out = lease.error == beast::error::timeout;
      worker_.stats().count_upstream_error(timed_out ? UpstreamError::connect_timeout
                                                     : UpstreamError::connect_refused);
      if (timed_out) {
        co_await send_error(http::status::gateway_timeout, "Upstream connect timed out", "UPSTREAM_TIMEOUT");
      } else {
        co_await send_error(http::status::bad_gateway, "Upstream unreachable", "UPSTREAM_UNREACHABLE");
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
    auto& upstream = *lease.stream;
    const auto sent = co_await send_head(parser, upstream, up);
    record_.bytes_in = sent.body_bytes;
    if (sent.error) {
      if (sent.side == detail::RelaySide::in && sent.error == http::error::body_limit) {
        co_await send_error(http::status::payload_too_large, "Request body too large", "BODY_TOO_LARGE");
      } else if (sent.side == detail::RelaySide::out && lease.reused && retryable && attempt == 0) {
        lease = co_await worker_.upstreams().acquire(up, pool_key, UpstreamPool::Reuse::fresh);
        continue;  // a pooled connection the upstream had closed: once more, fresh
      } else if (sent.side == detail::RelaySide::out) {
        worker_.stats().count_upstream_error(UpstreamError::reset);
        co_await send_error(http::status::bad_gateway, "Upstream failed while receiving the request",
                            "UPSTREAM_ERROR");
      }
      co_return false;
    }

    ResponseParser& response = new_response_parser(head);
    upstream.expires_after(up.timeout);
    const error_code rec = co_await detail::read_message_part(upstream, upstream_buffer_, response, nullptr);
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
      if (timed_out) {
        co_await send_error(http::status::gateway_timeout, "Upstream timed out", "UPSTREAM_TIMEOUT");
      } else {
        co_await send_error(http::status::bad_gateway, "Upstream sent no valid response", "UPSTREAM_ERROR");
      }
      co_return false;
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
                                  {parser.chunked(), std::nullopt}};
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

// One of the gateway's own errors; the connection closes after it.
net::awaitable<void> Session::send_error(http::status status, std::string_view message,
                                         std::string_view code) {
  co_await send(status, error_body(message, code), {}, false);
}

// A parser for the next upstream response (the last one is gone). It lives in the
// session, not in a coroutine frame (see process()).
ResponseParser& Session::new_response_parser(bool head) {
  ResponseParser& response = response_parser_.emplace(std::piecewise_construct, std::make_tuple(),
                                                      std::make_tuple(FieldsAllocator(&arena_)));
  response.header_limit(kMaxUpstreamHeader);
  response.body_limit(boost::none);
  if (head) response.skip(true);
  return response;
}

// Sends a request without a body (or with all of it at hand) upstream.
net::awaitable<detail::RelayResult> Session::send_head(RequestParser& parser, UpstreamPool::Stream& upstream,
                                                       const config::Upstream& up) {
  const RelayChunk chunk(worker_);  // held for the write only, not while the upstream answers
  co_return co_await detail::relay(client_, buffer_, parser, snapshot_->config->http.body_timeout,
                                   upstream, up.timeout, request_head_, parser.chunked(), chunk.span());
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
  if (sent.side == detail::RelaySide::in && sent.error == http::error::body_limit) {
    co_await send_error(http::status::payload_too_large, "Request body too large", "BODY_TOO_LARGE");
  } else if (sent.side == detail::RelaySide::in && is_parse_error(sent.error)) {
    co_await send_error(http::status::bad_request, "Malformed request body", "BAD_REQUEST");
  } else if (sent.side == detail::RelaySide::in) {
    // The client went away or stalled mid-body (body_timeout closed it): nobody to answer.
  } else if (exchange.header_timed_out) {
    worker_.stats().count_upstream_error(UpstreamError::timeout);
    co_await send_error(http::status::gateway_timeout, "Upstream timed out", "UPSTREAM_TIMEOUT");
  } else {
    worker_.stats().count_upstream_error(is_parse_error(exchange.header_error)
                                             ? UpstreamError::bad_response
                                             : UpstreamError::reset);
    co_await send_error(http::status::bad_gateway, "Upstream sent no valid response", "UPSTREAM_ERROR");
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

// Relays the response whose head `response` has read. The caller decides about the
// upstream connection.
net::awaitable<ResponseRelay> Session::relay_response(ResponseParser& response,
                                                      UpstreamPool::Stream& upstream,
                                                      const config::Upstream& up, bool keep_alive,
                                                      bool head) {
  const auto& res = response.get();
  const bool upstream_keep_alive = res.keep_alive();
  const bool chunked = response.chunked();
  const bool bodyless = head || res.result_int() / 100 == 1 ||
                        res.result() == http::status::no_content ||
                        res.result() == http::status::not_modified;
  const bool delimited = chunked || res.has_content_length() || response.is_done() || bodyless;
  // A drain that began while this request was in flight closes the connection after
  // it: say so, so that the client does not send another request into the close.
  keep_alive = keep_alive && !worker_.server().draining();
  detail::ClientResponseHead how;
  how.extra_lines = limit_lines_;
  how.extra_names = std::span<const std::string_view>(limit_names_.data(), limit_name_count_);
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
  const RelayChunk chunk(worker_);
  const auto got = co_await detail::relay(upstream, upstream_buffer_, response, up.timeout, client_,
                                          snapshot_->config->http.idle_timeout, response_head_,
                                          how.framing.chunked && !bodyless, chunk.span());
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
