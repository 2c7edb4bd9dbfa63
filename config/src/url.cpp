#include "config/url.hpp"

#include <charconv>

#include "config/listen_address.hpp"

namespace phlow::config {
namespace {

struct HostPort {
  std::string host;
  std::optional<std::uint16_t> port;
};

template <typename T>
std::optional<T> fail(std::string* why, std::string message) {
  if (why) *why = std::move(message);
  return std::nullopt;
}

// Parses "host", "host:port", "[v6]" or "[v6]:port".
std::optional<HostPort> parse_authority(std::string_view text, std::string* why) {
  HostPort out;
  std::string_view rest;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return fail<HostPort>(why, "unclosed '[' in host");
    out.host = std::string(text.substr(1, close - 1));
    rest = text.substr(close + 1);
  } else {
    const auto colon = text.find(':');
    out.host = std::string(text.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon);
  }
  if (out.host.empty()) return fail<HostPort>(why, "missing host");
  if (!rest.empty()) {
    if (rest.front() != ':' || !(out.port = parse_port(rest.substr(1))) || *out.port == 0) {
      return fail<HostPort>(why, "port must be an integer 1..65535");
    }
  }
  return out;
}

}  // namespace

std::optional<UpstreamUrl> parse_upstream_url(std::string_view text, std::string* why) {
  UpstreamUrl url;
  if (text.starts_with("https://")) {
    url.scheme = "https";
    url.port = 443;
  } else if (!text.starts_with("http://")) {
    return fail<UpstreamUrl>(why, "expected http://host:port[/base] or https://host:port[/base]");
  }
  text.remove_prefix(url.scheme.size() + 3);
  if (text.find_first_of("?#@") != std::string_view::npos) {
    return fail<UpstreamUrl>(why, "no user info, query or fragment allowed");
  }
  const auto slash = text.find('/');
  auto authority = parse_authority(text.substr(0, slash), why);
  if (!authority) return std::nullopt;
  url.host = authority->host;
  url.port = authority->port.value_or(url.port);
  if (slash != std::string_view::npos) url.base_path = std::string(text.substr(slash));
  while (url.base_path.ends_with('/')) url.base_path.pop_back();
  return url;
}

std::string UpstreamUrl::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + base_path;
}

std::optional<RedisUrl> parse_redis_url(std::string_view text, std::string* why) {
  // One parser for the config and the limiter that connects with it.
  auto parsed = limiter::parse_redis_url(text);
  if (auto* error = std::get_if<std::string>(&parsed)) {
    return fail<RedisUrl>(why, "invalid Redis URL \"" + redact_redis_url(text) + "\": " + *error);
  }
  return std::get<RedisUrl>(std::move(parsed));
}

std::string redact_redis_url(std::string_view text) {
  if (!std::holds_alternative<RedisUrl>(limiter::parse_redis_url(text))) return "***";
  const auto scheme_end = text.find("://") + 3;
  const auto at = text.rfind('@');
  if (at == std::string_view::npos) return std::string(text);
  const auto userinfo = text.substr(scheme_end, at - scheme_end);
  const auto colon = userinfo.find(':');
  // Without a colon some clients read the lone userinfo as the password: hide it too.
  if (colon == std::string_view::npos) {
    return std::string(text.substr(0, scheme_end)) + "***" + std::string(text.substr(at));
  }
  return std::string(text.substr(0, scheme_end + colon + 1)) + "***" +
         std::string(text.substr(at));
}

}  // namespace phlow::config
