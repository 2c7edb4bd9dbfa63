// The request path on raw bytes: Beast's request parser set up exactly as the session
// sets it up (configure_request_parser), fed by the session's own parse step
// (detail::put_buffered, relay.hpp: head, then body into a relay buffer), after the HeadScanner and before the
// framing check (has_unambiguous_framing), then the router and the session's own
// rate-limit step (RateLimitFilter: identifiers, keys, an in-memory decision, headers)
// for the chosen route. Pipelined requests in one input
// are taken in turn while the previous one ends cleanly with keep-alive, as the
// session does.
// Checked: a request that is parsed has unambiguous framing (never Content-Length
// beside Transfer-Encoding, every Content-Length value equal), the route matches it,
// its limiter keys hold no raw CR/LF/space/control bytes, the rate-limit header lines
// are well formed, and the head written for the upstream is whole lines without the
// fields the client's Connection names.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include "config/loader.hpp"
#include "fuzz_assert.hpp"
#include "gateway/head_scanner.hpp"
#include "gateway/identifier_extractor.hpp"
#include "gateway/rate_limit_filter.hpp"
#include "gateway/request_record.hpp"
#include "gateway/snapshot.hpp"
#include "gateway/router.hpp"
#include "http_head.hpp"
#include "limiter/descriptor.hpp"
#include "limiter/memory_backend.hpp"
#include "relay.hpp"
#include "request_parser.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
using phlow::config::Config;
using phlow::gateway::RequestParser;

// Small size limits so that short inputs reach 431 and 413 too. Routes by method,
// host and prefix; every identifier kind; loopback and 10/8 trusted as proxies.
constexpr std::string_view kConfig = R"(
http: { max_header_bytes: 2KiB, max_body_bytes: 1KiB, max_headers: 24 }
upstreams:
  app: { url: "http://127.0.0.1:8000" }
limits:
  auth: { requests: 60, window: 1m, key: token_hash }
  role: { requests: 10, window: 1m, key: agent_id }
  per_ip: { requests: 300, window: 1m, key: ip, algorithm: sliding_window }
  per_api_key: { requests: 20, window: 1s, key: api_key, algorithm: token_bucket, burst: 40 }
  tenant: { requests: 5, window: 1s, key: "header:X-Tenant" }
routes:
  - match: { path_prefix: /roles, methods: [POST] }
    upstream: app
    limits: [auth, role, per_ip]
  - match: { path_prefix: /api/, host: api.example.com }
    upstream: app
    limits: [per_api_key, tenant]
  - match: { path_prefix: /v1 }
    upstream: app
    limits: [auth, per_ip, per_api_key, tenant, role]
identifiers:
  ip: { trusted_proxies: [127.0.0.1/32, "::1/128", 10.0.0.0/8] }
)";

const std::shared_ptr<const Config>& config_ptr() {
  static const auto loaded = phlow::config::load_config_string(kConfig, phlow::config::Format::yaml,
                                                               "request_path_fuzzer", nullptr);
  FUZZ_ASSERT(loaded.ok());
  return loaded.config;
}
const Config& config() { return *config_ptr(); }

// Puts the buffered bytes into the parser until `done` holds, through the session's
// own parse step (detail::put_buffered); when the input runs out the connection
// closes, as the session's read_message_part sees it (detail::end_of_input).
template <class Done>
error_code feed(RequestParser& parser, beast::flat_buffer& buffer, Done done) {
  std::array<char, 512> sink;
  while (!done()) {
    const std::size_t* space = nullptr;
    if (parser.is_header_done()) {
      parser.body().data = sink.data();
      parser.body().size = sink.size();
      space = &parser.body().size;
    }
    auto part = phlow::gateway::detail::put_buffered(buffer, parser, space, sink.size(), true);
    if (!part) return phlow::gateway::detail::end_of_input(parser);
    if (*part) return *part;
  }
  return {};
}

// The rate-limit step as the session runs it (RateLimitFilter, in memory): the
// route's descriptors, their keys, one decision and the response headers.
struct Limiting {
  Limiting()
      : snapshot(config_ptr(), 1, routes, limits),
        limiter(io.get_executor(), std::make_shared<phlow::limiter::MemoryBackend>(), nullptr,
                phlow::limiter::FailureMode::fallback) {}
  boost::asio::io_context io;
  phlow::gateway::NameTable routes, limits;
  phlow::gateway::Snapshot snapshot;
  phlow::limiter::FallbackBackend limiter;
  phlow::gateway::WorkerStats stats;
  phlow::gateway::RateLimitFilter filter;
  phlow::gateway::RequestRecord record;
};

void check_limits(const phlow::config::Route& route, const phlow::gateway::RequestView& view) {
  static Limiting l;
  l.record.reset(std::chrono::steady_clock::now(), 0);
  FUZZ_ASSERT(l.filter.start(l.snapshot, route, view, l.limiter, l.stats, l.record, true));  // in memory
  for (const auto& d : l.filter.pending()) {
    const std::string_view stored = l.snapshot.keys.stored_identifier(d.key, d.limit->name);
    FUZZ_ASSERT(!stored.empty());
    for (unsigned char c : stored) FUZZ_ASSERT(c > 0x20 && c < 0x7f);
  }
  // Header lines are "Name: value\r\n" with no CR/LF inside a value.
  for (std::string_view lines = l.filter.header_lines(); !lines.empty();) {
    const auto end = lines.find("\r\n");
    FUZZ_ASSERT(end != std::string_view::npos);
    FUZZ_ASSERT(lines.substr(0, end).find_first_of("\r\n") == std::string_view::npos);
    lines.remove_prefix(end + 2);
  }
  if (!l.filter.allowed()) FUZZ_ASSERT(!l.filter.rejection_body().empty());
  (void)l.snapshot.identifiers.redact_target(view.target);
}

// One request from `buffer`; returns whether the connection would carry another.
bool one_request(beast::flat_buffer& buffer, std::string_view peer) {
  const Config& cfg = config();
  phlow::gateway::detail::FlatHead head;
  RequestParser parser(head);
  const auto header_limit = phlow::gateway::configure_request_parser(parser, cfg.http);
  // Session::buffer_head: the raw head is scanned before Beast parses it.
  phlow::gateway::HeadScanner scanner(cfg.http.max_headers);
  const auto bytes = buffer.cdata();
  const auto verdict = scanner.scan(std::string_view(static_cast<const char*>(bytes.data()), bytes.size()));
  using Verdict = phlow::gateway::HeadScanner::Verdict;
  if (verdict == Verdict::malformed || verdict == Verdict::too_many_fields) return false;  // 400, 431
  if (verdict == Verdict::need_more && buffer.size() < header_limit) return false;  // EOF: closed
  error_code ec = feed(parser, buffer, [&] { return parser.is_header_done(); });
  if (ec) return false;  // 431, 414, 413, 400, or the connection closed
  if (!phlow::gateway::has_unambiguous_framing(parser.get())) return false;  // 400

  auto& req = parser.get();
  bool has_te = false;
  std::size_t lengths = 0;
  for (const auto field : req) {
    if (field.name() == http::field::transfer_encoding) has_te = true;
    if (field.name() != http::field::content_length) continue;
    ++lengths;
    // Beast accepts repeated Content-Lengths, or a list in one field ("5, 5"), only
    // when every value is the same (RFC 9110 8.6); the session forwards one of its own.
    for (auto token : http::token_list(field.value())) {
      std::uint64_t value = 0;
      const auto [ptr, err] = std::from_chars(token.data(), token.data() + token.size(), value);
      FUZZ_ASSERT(err == std::errc{} && ptr == token.data() + token.size());
      FUZZ_ASSERT(parser.content_length() && *parser.content_length() == value);
    }
  }
  FUZZ_ASSERT(!(has_te && lengths > 0));
  FUZZ_ASSERT(!parser.chunked() || has_te);

  std::string host;
  phlow::gateway::lowercase_host(req[http::field::host], host);
  phlow::gateway::FieldsSource headers;
  headers.reset(req);
  const phlow::gateway::RequestView view{req.method_string(), req.target(), host, peer, headers};
  if (const phlow::config::Route* route = phlow::gateway::match_route(cfg, view)) {
    FUZZ_ASSERT(view.path().starts_with(route->match.path_prefix));
    FUZZ_ASSERT(!route->match.host || *route->match.host == host);
    check_limits(*route, view);
  }
  // The head the session would send upstream: whole lines, each "Name: value" or the
  // request line, and no field the client named hop-by-hop in Connection.
  static std::string upstream_head;
  upstream_head.clear();
  phlow::gateway::detail::UpstreamRequestHead how{"/base", peer, "", {parser.chunked(), std::nullopt}, false,
                                                  phlow::gateway::detail::is_websocket_upgrade(req) ? "websocket" : ""};
  if (parser.content_length()) how.framing.length = *parser.content_length();
  phlow::gateway::detail::append_upstream_request_head(upstream_head, req, how);
  FUZZ_ASSERT(upstream_head.ends_with("\r\n\r\n"));
  const phlow::gateway::detail::ConnectionTokens connection(req);
  for (std::string_view rest = upstream_head; rest.size() > 2;) {
    const auto end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, end);
    FUZZ_ASSERT(line.find_first_of("\r\n") == std::string_view::npos);
    if (line.data() != upstream_head.data()) {
      const auto colon = line.find(": ");
      FUZZ_ASSERT(colon != std::string_view::npos && colon > 0);
      const std::string_view name = line.substr(0, colon);
      static constexpr std::array<std::string_view, 6> kOwn = {
          "X-Forwarded-For", "X-Forwarded-Proto", "Content-Length", "Transfer-Encoding", "Connection",
          "Upgrade"};  // written by the gateway itself
      FUZZ_ASSERT(!connection.names(name) || std::find(kOwn.begin(), kOwn.end(), name) != kOwn.end());
    }
    rest.remove_prefix(end + 2);
  }
  const bool keep_alive = parser.keep_alive();  // as Session::route_request
  ec = feed(parser, buffer, [&] { return parser.is_done(); });
  return !ec && keep_alive;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static constexpr std::array<std::string_view, 3> kPeers = {"127.0.0.1", "203.0.113.9", "2001:db8::1"};
  beast::flat_buffer buffer;
  auto space = buffer.prepare(size);
  if (size > 0) std::memcpy(space.data(), data, size);
  buffer.commit(size);
  for (std::size_t i = 0; i < 16 && buffer.size() > 0; ++i) {
    if (!one_request(buffer, kPeers[i % kPeers.size()])) break;
  }
  return 0;
}
