#pragma once
// Redis Cluster's slots, sans I/O: the reply to CLUSTER SLOTS as slot ranges and
// their masters, a -MOVED / -ASK redirection, and a check's keys grouped by slot.

#include <array>
#include <cstdint>
#include <span>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "limiter/decision.hpp"
#include "limiter/descriptor.hpp"
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
// The keys of one check grouped by Cluster slot: group g holds the descriptors at
// of(g) (indices into `descriptors`), in their order. No allocation.
struct SlotGroups {
  explicit SlotGroups(std::span<const Descriptor> descriptors);
  std::span<const std::uint8_t> of(std::size_t g) const { return {pick[g].data(), size[g]}; }

  std::size_t count = 0;
  std::array<std::uint16_t, kMaxLimitsPerCheck> slot{};
  std::array<std::uint8_t, kMaxLimitsPerCheck> size{};
  std::array<std::array<std::uint8_t, kMaxLimitsPerCheck>, kMaxLimitsPerCheck> pick{};
};

// "MOVED 3999 127.0.0.1:6381" or "ASK 3999 127.0.0.1:6381" (an error reply's text).
std::optional<Redirect> parse_redirect(std::string_view error);

}  // namespace phlow::limiter::redis
