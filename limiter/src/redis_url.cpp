#include "limiter/redis_url.hpp"

#include "limiter/percent_decode.hpp"

#include <charconv>

namespace phlow::limiter {
namespace {

// Decodes %XX escapes (passwords may hold '@' or ':'); false on a bad escape.
bool decode_credential(std::string_view in, std::string& out) {
  auto decoded = percent_decode(in, BadEscape::reject);
  if (!decoded) return false;
  out = std::move(*decoded);
  return true;
}

template <class Int>
bool parse_int(std::string_view text, Int& value) {
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc{} && p == text.data() + text.size() && !text.empty();
}

}  // namespace

std::string RedisUrl::endpoint() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::variant<RedisUrl, std::string> parse_redis_url(std::string_view url) {
  RedisUrl out;
  std::string_view rest = url;
  if (rest.starts_with("redis://")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("rediss://")) {
    rest.remove_prefix(9);
    out.tls = true;
  } else {
    return std::string("Redis URL must start with redis:// or rediss://");
  }
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    const auto colon = userinfo.find(':');
    std::string_view user = colon == std::string_view::npos ? std::string_view{} : userinfo.substr(0, colon);
    std::string_view pass = colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1);
    if (!decode_credential(user, out.username) || !decode_credential(pass, out.password)) {
      return std::string("Redis URL has a bad %-escape in its credentials");
    }
  }
  std::string_view path;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string_view port_text;
  if (rest.starts_with('[')) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return std::string("Redis URL has an unclosed [IPv6] host");
    out.host = std::string(rest.substr(1, close - 1));
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return std::string("Redis URL has junk after its [IPv6] host");
      port_text = after.substr(1);
    }
  } else {
    const auto colon = rest.rfind(':');
    out.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
  }
  if (out.host.empty()) return std::string("Redis URL has no host");
  if (out.host.find_first_of(" /?#@") != std::string::npos) return std::string("Redis URL has an invalid host");
  if (!port_text.empty() || rest.ends_with(':')) {
    unsigned port = 0;
    if (!parse_int(port_text, port) || port == 0 || port > 65535) {
      return std::string("Redis URL port must be a number from 1 to 65535");
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  if (!path.empty()) {
    if (!parse_int(path, out.db) || out.db < 0) {
      return std::string("Redis URL database must be a non-negative integer, as in /0");
    }
  }
  return out;
}

}  // namespace phlow::limiter
