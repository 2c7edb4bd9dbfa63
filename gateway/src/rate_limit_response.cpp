#include "gateway/rate_limit_response.hpp"

#include <algorithm>
#include <array>

#include <nlohmann/json.hpp>

#include "gateway/append_number.hpp"

namespace phlow::gateway {
namespace {

// Whole seconds, rounded up; negative durations count as 0.
std::int64_t ceil_seconds(std::int64_t ms) {
  return ms <= 0 ? 0 : (ms + 999) / 1000;
}

// Retry-After and the body's retry_after: rounded up so a client that waits that long
// is allowed, and at least 1 because "0" would invite an immediate retry.
std::int64_t retry_after_seconds(std::int64_t retry_after_ms) {
  return std::max<std::int64_t>(1, ceil_seconds(retry_after_ms));
}

// Writes header lines into a string and notes their names.
class LineWriter {
 public:
  LineWriter(std::string& out, std::span<std::string_view> names) : out_(out), names_(names) {}
  LineWriter& start(std::string_view name) {
    if (count_ < names_.size()) names_[count_] = name;
    ++count_;
    out_.append(name).append(": ");
    return *this;
  }
  LineWriter& operator<<(std::string_view text) {
    out_.append(text);
    return *this;
  }
  LineWriter& operator<<(std::int64_t value) {
    append_number(out_, value);
    return *this;
  }
  // An RFC 8941 sf-string. Limit names are validated as tokens, so the escaping is a
  // safety net; bytes a sf-string cannot hold become '?' rather than break the field.
  LineWriter& sf_string(std::string_view text) {
    out_.push_back('"');
    for (char c : text) {
      if (c == '"' || c == '\\') out_.push_back('\\');
      out_.push_back(c >= 0x20 && c <= 0x7E ? c : '?');
    }
    out_.push_back('"');
    return *this;
  }
  void end() { out_.append("\r\n"); }
  std::size_t count() const { return count_; }

 private:
  std::string& out_;
  std::span<std::string_view> names_;
  std::size_t count_ = 0;
};

// dump() throws on invalid UTF-8 by default; a name never should, but a response body
// must not be the place an exception starts.
std::string dump(const nlohmann::ordered_json& json) {
  return json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

std::size_t append_rate_limit_header_lines(const config::ResponseHeaders& families,
                                           const limiter::Decision& decision, int index,
                                           const std::string& limit_name, std::int64_t window_ms,
                                           std::string& lines, std::span<std::string_view> names) {
  // A route without limits has no most restrictive one (kNone): nothing to say.
  if (index < 0 || static_cast<std::size_t>(index) >= decision.count) return 0;
  const limiter::LimitResult& r = decision.results[static_cast<std::size_t>(index)];
  const bool rejected = !decision.allowed && !r.allowed && !r.shadow;
  const std::int64_t remaining = std::max<std::int64_t>(0, r.remaining);
  const std::int64_t retry = retry_after_seconds(r.retry_after_ms);
  LineWriter out(lines, names);
  if (families.x_ratelimit) {
    out.start("X-RateLimit-Limit") << r.limit;
    out.end();
    out.start("X-RateLimit-Remaining") << remaining;
    out.end();
    out.start("X-RateLimit-Reset") << ceil_seconds(r.reset_ms);
    out.end();
  }
  if (families.ietf) {
    const std::int64_t reset_in = rejected ? retry : ceil_seconds(r.reset_ms - decision.now_ms);
    // A concurrency limit (window_ms 0 here) is no quota per time window: no w.
    out.start("RateLimit-Policy").sf_string(limit_name) << ";q=" << r.limit;
    if (window_ms > 0) out << ";w=" << ceil_seconds(window_ms);
    out.end();
    out.start("RateLimit").sf_string(limit_name) << ";r=" << remaining << ";t=" << reset_in;
    out.end();
  }
  // Retry-After is plain HTTP (RFC 9110), not part of either family: every 429 has it.
  if (rejected) {
    out.start("Retry-After") << retry;
    out.end();
  }
  return out.count();
}

void append_rate_limit_headers(const config::ResponseHeaders& families,
                               const limiter::Decision& decision, int index,
                               const std::string& limit_name, std::int64_t window_ms,
                               HeaderList& out) {
  std::string lines;
  std::array<std::string_view, 8> names;
  const std::size_t count =
      append_rate_limit_header_lines(families, decision, index, limit_name, window_ms, lines, names);
  std::string_view rest = lines;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t end = rest.find("\r\n");
    const std::string_view line = rest.substr(0, end);
    out.emplace_back(line.substr(0, line.find(':')), line.substr(line.find(':') + 2));
    rest.remove_prefix(end + 2);
  }
}

std::string rate_limited_body(const std::string& limit_name, std::int64_t retry_after_ms) {
  nlohmann::ordered_json body;
  body["error"] = "Rate limit exceeded";
  body["code"] = "RATE_LIMIT";
  body["limit"] = limit_name;
  body["retry_after"] = retry_after_seconds(retry_after_ms);
  return dump(body);
}

std::string error_body(std::string_view message, std::string_view code) {
  nlohmann::ordered_json body;
  body["error"] = message;
  body["code"] = code;
  return dump(body);
}

}  // namespace phlow::gateway
