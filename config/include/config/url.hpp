#pragma once
// The two kinds of URL the config names: upstreams (plain HTTP) and Redis.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "limiter/redis_url.hpp"

namespace phlow::config {

struct UpstreamUrl {
  std::string scheme = "http";  // or "https"
  std::string host;             // name or address; IPv6 without brackets
  std::uint16_t port = 80;
  std::string base_path;        // "" or "/api" (no trailing slash): prefixed to paths

  // "http://host:port/base", parseable by parse_upstream_url.
  std::string to_string() const;
  bool tls() const { return scheme == "https"; }
  bool operator==(const UpstreamUrl&) const = default;
};

// Parses http://host[:port][/base] or https://host[:port][/base] (port 80 / 443 by
// default). Returns nullopt and sets *why when given.
std::optional<UpstreamUrl> parse_upstream_url(std::string_view text, std::string* why = nullptr);

// The limiter's URL type: the config validates with the parser that connects.
using RedisUrl = limiter::RedisUrl;

// Parses a Redis URL (limiter/redis_url.hpp lists the forms). Returns nullopt and sets
// *why when given: "invalid Redis URL \"<redacted>\": <what is wrong>" (never the
// password).
std::optional<RedisUrl> parse_redis_url(std::string_view text, std::string* why = nullptr);

// `url` with any password replaced by "***", for logs and --check output.
// A URL that does not parse is replaced whole: it might still hold a secret.
std::string redact_redis_url(std::string_view url);

}  // namespace phlow::config
