#include "gateway/proxy_error.hpp"

#include <array>

#include "gateway/rate_limit_response.hpp"

namespace phlow::gateway {
namespace {

using enum UpstreamError;

// Indexed by ProxyError: one row per enumerator, the last one included.
static_assert(static_cast<std::size_t>(ProxyError::bad_cost) + 1 == kProxyErrors);
constexpr std::array<ProxyErrorInfo, kProxyErrors> kTable{{
    {400, "Malformed request", "BAD_REQUEST", std::nullopt},
    {400, "Ambiguous message framing", "BAD_REQUEST", std::nullopt},
    {400, "Malformed request body", "BAD_REQUEST", std::nullopt},
    {431, "Too many request header fields", "TOO_MANY_HEADERS", std::nullopt},
    {431, "Request header fields too large", "HEADERS_TOO_LARGE", std::nullopt},
    {414, "Request line too long", "URI_TOO_LONG", std::nullopt},
    {413, "Request body too large", "BODY_TOO_LARGE", std::nullopt},
    {404, "No route matches", "NO_ROUTE", std::nullopt},
    {504, "Upstream connect timed out", "UPSTREAM_TIMEOUT", connect_timeout},
    {502, "Upstream unreachable", "UPSTREAM_UNREACHABLE", connect_refused},
    {502, "Upstream failed while receiving the request", "UPSTREAM_ERROR", reset},
    {504, "Upstream timed out", "UPSTREAM_TIMEOUT", timeout},
    {502, "Upstream sent no valid response", "UPSTREAM_ERROR", bad_response},
    {502, "Upstream sent no valid response", "UPSTREAM_ERROR", reset},
    {502, "Upstream TLS handshake failed", "UPSTREAM_TLS_ERROR", tls},
    {401, "Invalid token", "INVALID_TOKEN", std::nullopt},
    {400, "Invalid request cost", "BAD_COST", std::nullopt},
}};

}  // namespace

const ProxyErrorInfo& describe(ProxyError error) { return kTable[static_cast<std::size_t>(error)]; }

std::string proxy_error_body(ProxyError error) {
  const ProxyErrorInfo& info = describe(error);
  return error_body(info.message, info.code);
}

ProxyError rejected_head_error(HeadScanner::Verdict verdict, std::size_t request_line_bytes,
                               std::size_t limit) {
  if (verdict == HeadScanner::Verdict::malformed) return ProxyError::malformed_request;
  if (verdict == HeadScanner::Verdict::too_many_fields) return ProxyError::too_many_headers;
  if (request_line_bytes == 0 || request_line_bytes > limit) return ProxyError::request_line_too_long;
  return ProxyError::headers_too_large;
}

}  // namespace phlow::gateway
