#pragma once
// redis://[[user]:password@]host[:port][/db] and rediss://...

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace phlow::limiter {

struct RedisUrl {
  bool tls = false;          // rediss://
  std::string host;
  std::uint16_t port = 6379;
  std::string username;      // Redis 6 ACL user; empty for plain AUTH <password>
  std::string password;
  int db = 0;

  // host:port, safe to log (no credentials).
  std::string endpoint() const;
};

// Returns the parsed URL, or a message saying what is wrong with it. The message
// never contains the password.
std::variant<RedisUrl, std::string> parse_redis_url(std::string_view url);

// Why `url` cannot be served (e.g. rediss://: TLS to Redis is not implemented yet), or
// "" when make_store() (store_factory.hpp, where it is defined) can build a store for
// it. The config loader and the library refuse a URL with this message.
std::string unsupported_store(const RedisUrl& url);

}  // namespace phlow::limiter
