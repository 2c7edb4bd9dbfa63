#pragma once
// Where Redis is, as a URL:
//   redis://[[user]:password@]host[:port][/db]                     standalone
//   redis+sentinel://[[user]:password@]h1[:p1][,h2[:p2]...]/MASTER[/db]
//   redis+cluster://[[user]:password@]h1[:p1][,h2[:p2]...]          (db is always 0)
// and the same with rediss (TLS): rediss://, rediss+sentinel://, rediss+cluster://.
// Hosts may be [IPv6] literals. The credentials are the data nodes'.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace phlow::limiter {

enum class RedisTopology : std::uint8_t { standalone, sentinel, cluster };
std::string_view to_string(RedisTopology t);  // "standalone", "sentinel", "cluster"

struct RedisNode {
  std::string host;
  std::uint16_t port = 6379;
  std::string endpoint() const;  // host:port, [v6]:port
  bool operator==(const RedisNode&) const = default;
};

struct RedisUrl {
  RedisTopology topology = RedisTopology::standalone;
  bool tls = false;             // rediss
  // standalone: the server; sentinel: the sentinels (default port 26379); cluster: the
  // seed nodes the slot map is first asked from.
  std::vector<RedisNode> nodes;
  std::string master_name;      // sentinel: the master set's name
  std::string username;         // Redis 6 ACL user; empty for plain AUTH <password>
  std::string password;
  int db = 0;

  // The nodes as host:port[,host:port...], safe to log (no credentials).
  std::string endpoint() const;
  bool operator==(const RedisUrl&) const = default;
};

// Returns the parsed URL, or a message saying what is wrong with it. The message
// never contains the password.
std::variant<RedisUrl, std::string> parse_redis_url(std::string_view url);


}  // namespace phlow::limiter
