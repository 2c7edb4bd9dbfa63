#pragma once
// The rate-limit headers and the 429 body (SPEC.md, "Responses"), as plain strings.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "limiter/decision.hpp"

namespace phlow::gateway {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Calls `out` with each header of the limit `index` of `decision` (the rejecting limit
// for a 429, the most restrictive one otherwise), for the families enabled in
// `families`; names are string literals. `limit_name` and `window_ms` describe that
// limit. Calls nothing when `index` is not a limit of `decision` (kNone: a route
// without limits).
//   x-ratelimit: X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (Unix
//   seconds, rounded up)
//   ietf: RateLimit-Policy: "name";q=N;w=SECONDS   RateLimit: "name";r=R;t=SECONDS
//   (window_ms 0, a concurrency limit: no w - its quota is slots, not per window)
//   and, whatever the families, Retry-After (seconds, rounded up) when rejected.
using HeaderSink = std::function<void(std::string_view name, std::string_view value)>;
void for_each_rate_limit_header(const config::ResponseHeaders& families,
                                const limiter::Decision& decision, int index,
                                const std::string& limit_name, std::int64_t window_ms,
                                const HeaderSink& out);

// The same headers appended to `out`.
void append_rate_limit_headers(const config::ResponseHeaders& families,
                               const limiter::Decision& decision, int index,
                               const std::string& limit_name, std::int64_t window_ms,
                               HeaderList& out);

// {"error":"Rate limit exceeded","code":"RATE_LIMIT","limit":"auth","retry_after":12}
std::string rate_limited_body(const std::string& limit_name, std::int64_t retry_after_ms);

// {"error":"<message>","code":"<code>"} for the gateway's own error responses.
std::string error_body(std::string_view message, std::string_view code);

}  // namespace phlow::gateway
