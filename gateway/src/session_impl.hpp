#pragma once
// The session's class, shared by its two translation units (Beast's HTTP parser lives
// in these two only):
//   session.cpp            the request path as steps: wait, intake (head verdict, parse,
//                          framing, route), rate-limit filter, answers of its own,
//                          request log
//   upstream_exchange.cpp  forwarding: the request upstream (retry rule), the response
//                          back, or both at once while a request body streams
// The steps that need no I/O are classes of their own in gateway_core:
// RateLimitFilter, RequestRecord, ProxyError (the one table of error responses).

#include <optional>
#include <random>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "gateway/head_scanner.hpp"
#include "gateway/proxy_error.hpp"
#include "gateway/rate_limit_filter.hpp"
#include "gateway/request_record.hpp"
#include "gateway/snapshot.hpp"
#include "gateway/upstream_pool.hpp"
#include "gateway/worker.hpp"
#include "client_watch.hpp"
#include "http_head.hpp"
#include "proxy_stream.hpp"
#include "relay.hpp"
#include "request_parser.hpp"

namespace phlow::gateway::detail {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using boost::system::error_code;
inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

using ResponseParser = FlatParser<false>;

// An error of Beast's HTTP parser: the message cannot be parsed (not: it ended early).
inline bool is_parse_error(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_target).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::need_buffer;
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
  Session(Worker& worker, net::ip::tcp::socket socket);

  net::awaitable<void> run();

 private:
  // session.cpp: the request path.
  net::awaitable<bool> start_tls();
  net::awaitable<void> close_connection();
  net::awaitable<bool> handle_request();
  net::awaitable<bool> process(RequestParser& parser);
  net::awaitable<bool> wait_for_request();
  net::awaitable<bool> wait_while_draining(bool first);
  bool take_arrived_request();
  bool scan_head(std::size_t limit);
  net::awaitable<bool> buffer_head(std::size_t limit);
  net::awaitable<bool> reject_head(error_code ec, std::size_t limit);
  RequestView view_of(const FlatHead& req) const;
  const config::Route* route_request(const RequestParser& parser);
  net::awaitable<void> check_limits_async();
  net::awaitable<bool> answer_unrouted(RequestParser& parser);
  net::awaitable<bool> answer_limited(RequestParser& parser);
  net::awaitable<bool> answer_refused(RequestParser& parser, ProxyError why);
  net::awaitable<bool> drain_body(RequestParser& parser);
  net::awaitable<void> send(http::status status, std::string body, std::string_view extra_lines,
                            bool keep_alive);
  net::awaitable<void> send_error(ProxyError error);
  void count_response(int status);
  void observe_upstream();

  // upstream_exchange.cpp: forwarding.
  net::awaitable<bool> forward(RequestParser& parser, const config::Route& route, bool keep_alive);
  void write_request_head(const RequestParser& parser, const config::Upstream& up);
  net::awaitable<bool> send_continue();
  ResponseParser& new_response_parser(bool head);
  net::awaitable<bool> forward_concurrently(RequestParser& parser, UpstreamPool::Lease lease,
                                            const config::Upstream& up, const std::string& pool_key,
                                            bool keep_alive, bool head);
  net::awaitable<detail::RelayResult> send_request(RequestParser& parser, UpstreamPool::Stream& upstream,
                                                   const config::Upstream& up,
                                                   ConcurrentExchange& exchange);
  net::awaitable<void> receive_response(UpstreamPool::Stream& upstream, const config::Upstream& up,
                                        bool keep_alive, bool head, ConcurrentExchange& exchange);
  net::awaitable<bool> run_tunnel(ResponseParser& response, UpstreamPool::Stream& upstream);
  void on_response_read();
  net::awaitable<ResponseRelay> relay_response(ResponseParser& response, UpstreamPool::Stream& upstream,
                                               const config::Upstream& up, bool keep_alive, bool head);

  // Per connection.
  Worker& worker_;
  ProxyStream client_;  // plain, or TLS after start_tls()
  bool tls_established_ = false;
  beast::flat_buffer buffer_;
  beast::flat_buffer upstream_buffer_;  // bytes read from the upstream of this request
  std::string peer_ip_;
  bool started_any_ = false;  // a request has been awaited on this connection before
  Worker::IdleEntry idle_entry_;

  // Per request: reset by handle_request(). Their capacity is kept across requests: no
  // allocation once a connection has seen its longest heads and keys. What lives
  // across a suspension lives here, not in coroutine frames (see process()).
  std::shared_ptr<const Snapshot> snapshot_;  // one config for the whole request
  RequestRecord record_;
  RateLimitFilter filter_;
  // Once the whole response is in, before the client has its last piece (relay's
  // on_read_whole): concurrency slots go back (a client that calls again the moment
  // its answer ends finds its slot free), and cost_from_response reads trailers.
  const std::function<void()> response_read_ = [this] { on_response_read(); };
  HeadScanner head_scanner_{0};    // checks the raw head before Beast parses it
  HeadScanner::Verdict head_verdict_ = HeadScanner::Verdict::need_more;
  std::string host_;               // Host without port, lowercase
  FieldsSource fields_source_;
  FieldsSource response_fields_;   // the upstream response's, for cost_from_response
  bool keep_alive_ = false;        // the client's connection may carry another request
  std::string request_id_;         // the client's X-Request-Id, or one made up
  bool request_id_generated_ = false;
  bool client_http10_ = false;
  bool websocket_ = false;         // the request asks for a WebSocket upgrade
  bool expect_continue_ = false;   // ...and for "100 Continue" before sending its body
  // The heads of this request and of its response, as parsed (their parsers write
  // here, one parser per message).
  FlatHead request_in_;
  FlatHead response_in_;
  std::optional<ResponseParser> response_parser_;  // after response_in_: destroyed before it
  std::string request_head_;       // to the upstream
  std::array<net::const_buffer, 2> request_pieces_;  // its write, when no body streams
  std::string response_head_;      // to the client
  // Watches the client while the upstream works on a request that holds slots (a
  // member, not in forward()'s frame: see process()).
  ClientWatch client_watch_;
};

}  // namespace phlow::gateway::detail
