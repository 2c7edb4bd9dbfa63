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

// One `host[:port]` or `[v6][:port]` of the node list.
std::variant<RedisNode, std::string> parse_node(std::string_view text, std::uint16_t default_port) {
  RedisNode node;
  node.port = default_port;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return std::string("Redis URL has an unclosed [IPv6] host");
    node.host = std::string(text.substr(1, close - 1));
    std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return std::string("Redis URL has junk after its [IPv6] host");
      port_text = after.substr(1);
      if (port_text.empty()) return std::string("Redis URL port must be a number from 1 to 65535");
    }
  } else {
    const auto colon = text.rfind(':');
    node.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = text.substr(colon + 1);
      if (port_text.empty()) return std::string("Redis URL port must be a number from 1 to 65535");
    }
  }
  if (node.host.empty()) return std::string("Redis URL has no host");
  if (node.host.find_first_of(" /?#@,") != std::string::npos) {
    return std::string("Redis URL has an invalid host");
  }
  if (!port_text.empty()) {
    unsigned port = 0;
    if (!parse_int(port_text, port) || port == 0 || port > 65535) {
      return std::string("Redis URL port must be a number from 1 to 65535");
    }
    node.port = static_cast<std::uint16_t>(port);
  }
  return node;
}

struct Scheme {
  std::string_view prefix;
  RedisTopology topology;
  bool tls;
};
constexpr Scheme kSchemes[] = {
    {"redis://", RedisTopology::standalone, false},
    {"rediss://", RedisTopology::standalone, true},
    {"redis+sentinel://", RedisTopology::sentinel, false},
    {"rediss+sentinel://", RedisTopology::sentinel, true},
    {"redis+cluster://", RedisTopology::cluster, false},
    {"rediss+cluster://", RedisTopology::cluster, true},
};

}  // namespace

std::string_view to_string(RedisTopology t) {
  switch (t) {
    case RedisTopology::standalone: return "standalone";
    case RedisTopology::sentinel: return "sentinel";
    case RedisTopology::cluster: return "cluster";
  }
  return "standalone";
}

std::string RedisNode::endpoint() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string RedisUrl::endpoint() const {
  std::string out;
  for (const RedisNode& node : nodes) {
    if (!out.empty()) out += ',';
    out += node.endpoint();
  }
  return out;
}

std::variant<RedisUrl, std::string> parse_redis_url(std::string_view url) {
  RedisUrl out;
  std::string_view rest = url;
  bool known = false;
  for (const Scheme& scheme : kSchemes) {
    if (!rest.starts_with(scheme.prefix)) continue;
    rest.remove_prefix(scheme.prefix.size());
    out.topology = scheme.topology;
    out.tls = scheme.tls;
    known = true;
    break;
  }
  if (!known) {
    return std::string(
        "Redis URL must start with redis://, rediss://, redis+sentinel://, rediss+sentinel://, "
        "redis+cluster:// or rediss+cluster://");
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
  const std::uint16_t default_port = out.topology == RedisTopology::sentinel ? 26379 : 6379;
  while (true) {
    const auto comma = rest.find(',');
    auto node = parse_node(rest.substr(0, comma), default_port);
    if (auto* error = std::get_if<std::string>(&node)) return std::move(*error);
    out.nodes.push_back(std::get<RedisNode>(std::move(node)));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (out.topology == RedisTopology::standalone && out.nodes.size() > 1) {
    return std::string("Redis URL lists several hosts: use redis+sentinel:// or redis+cluster://");
  }
  if (out.topology == RedisTopology::sentinel) {
    const auto slash = path.find('/');
    out.master_name = std::string(path.substr(0, slash));
    if (out.master_name.empty()) {
      return std::string("Redis Sentinel URL needs the master's name, as in /mymaster");
    }
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
  }
  if (!path.empty()) {
    if (!parse_int(path, out.db) || out.db < 0) {
      return std::string("Redis URL database must be a non-negative integer, as in /0");
    }
    if (out.topology == RedisTopology::cluster && out.db != 0) {
      return std::string("Redis Cluster has only database 0");
    }
  }
  return out;
}

}  // namespace phlow::limiter
