#pragma once
// Every response the gateway makes up itself, other than a 429: one enum, and one table
// that gives each its status, JSON message and code, and the upstream_errors_total
// label it counts under (SPEC.md, "Responses"). The request path names the error; what
// the client sees is decided here only.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/head_scanner.hpp"
#include "gateway/metrics.hpp"

namespace phlow::gateway {

enum class ProxyError : std::uint8_t {
  malformed_request,         // 400: the head or the framing cannot be parsed
  ambiguous_framing,         // 400: repeated Content-Length, TE other than chunked, ...
  malformed_body,            // 400: a chunked body that cannot be parsed
  too_many_headers,          // 431: more than http.max_headers fields
  headers_too_large,         // 431: a head larger than http.max_header_bytes
  request_line_too_long,     // 414: the request line alone is over the limit
  body_too_large,            // 413: over http.max_body_bytes
  no_route,                  // 404: no route matches (the connection may stay open)
  upstream_connect_timeout,  // 504
  upstream_unreachable,      // 502: connect refused or failed
  upstream_request_failed,   // 502: the upstream failed while the request was sent
  upstream_timeout,          // 504: no response head within upstreams.X.timeout
  upstream_bad_response,     // 502: the response head could not be parsed
  upstream_reset,            // 502: the connection failed before a response head
  upstream_tls,              // 502: the TLS handshake with an https upstream failed
  invalid_token,             // 401: agent_id JWT failed verification (on_invalid: reject);
                             //      sent with kInvalidTokenChallenge
  bad_cost,                  // 400: a limit's cost header is not a whole number from 1 to
                             //      the limit's quota
};
inline constexpr std::size_t kProxyErrors = 17;

// The header line a 401 for invalid_token carries (RFC 6750 section 3).
inline constexpr std::string_view kInvalidTokenChallenge =
    "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n";

struct ProxyErrorInfo {
  int status;
  std::string_view message;  // the JSON body's "error"
  std::string_view code;     // the JSON body's "code"
  std::optional<UpstreamError> counted_as;  // upstream_errors_total{kind}, if any
};

const ProxyErrorInfo& describe(ProxyError error);

// {"error":"<message>","code":"<code>"}
std::string proxy_error_body(ProxyError error);

// The answer to a request head rejected before it is parsed, from the HeadScanner's
// verdict (malformed, too_many_fields, or still need_more at the size limit): 400,
// 431, or 414 when the request line alone is over `limit` (or never ended).
ProxyError rejected_head_error(HeadScanner::Verdict verdict, std::size_t request_line_bytes,
                               std::size_t limit);

}  // namespace phlow::gateway
