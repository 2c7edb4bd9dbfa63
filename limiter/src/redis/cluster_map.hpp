#pragma once
// What Redis Cluster says about where slots live, sans I/O: the reply to CLUSTER SLOTS
// as slot ranges and their masters, and a -MOVED / -ASK redirection.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "limiter/redis_url.hpp"
#include "redis/resp.hpp"

namespace phlow::limiter::redis {

inline constexpr std::size_t kClusterSlots = 16384;

struct SlotRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;  // inclusive
  RedisNode master;
};

// The ranges of a CLUSTER SLOTS reply, or what is wrong with it. A master listed
// without an address (an empty host) is `asked`, the node that answered.
std::variant<std::vector<SlotRange>, std::string> parse_cluster_slots(const Value& reply,
                                                                      const RedisNode& asked);

struct Redirect {
  bool ask = false;  // -ASK (this once, after ASKING) rather than -MOVED (from now on)
  std::uint16_t slot = 0;
  RedisNode node;
};
// "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381" (an error reply's text).
std::optional<Redirect> parse_redirect(std::string_view error);

}  // namespace phlow::limiter::redis
