#pragma once
// The rate-limit headers and the 429 body (SPEC.md, "Responses"), as plain strings.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "limiter/decision.hpp"

namespace phlow::gateway {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Appends the header lines ("Name: value\r\n") of the limit `index` of `decision` (the
// rejecting limit for a 429, the most restrictive one otherwise) to `lines`, for the
// families enabled in `families`, and puts their names (string literals) into `names`
// (as many as fit). Returns the number of lines. `limit_name` and `window_ms`
// describe that limit. Appends nothing when `index` is not a limit of `decision`
// (kNone: a route without limits). Numbers are formatted in place: no allocation
// once `lines` has grown.
//   x-ratelimit: X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (Unix
//   seconds, rounded up)
//   ietf: RateLimit-Policy: "name";q=N;w=SECONDS   RateLimit: "name";r=R;t=SECONDS
//   (window_ms 0, a concurrency limit: no w - its quota is slots, not per window)
//   and, whatever the families, Retry-After (seconds, rounded up) when rejected.
std::size_t append_rate_limit_header_lines(const config::ResponseHeaders& families,
                                           const limiter::Decision& decision, int index,
                                           const std::string& limit_name, std::int64_t window_ms,
                                           std::string& lines, std::span<std::string_view> names);

// The same headers as name/value pairs, appended to `out`.
void append_rate_limit_headers(const config::ResponseHeaders& families,
                               const limiter::Decision& decision, int index,
                               const std::string& limit_name, std::int64_t window_ms,
                               HeaderList& out);

// {"error":"Rate limit exceeded","code":"RATE_LIMIT","limit":"auth","retry_after":12}
std::string rate_limited_body(const std::string& limit_name, std::int64_t retry_after_ms);

// {"error":"<message>","code":"<code>"} for the gateway's own error responses.
std::string error_body(std::string_view message, std::string_view code);

}  // namespace phlow::gateway
