#pragma once
// An IPv4 or IPv6 network such as 10.0.0.0/8 or ::1/128.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace phlow::config {

struct Cidr {
  bool ipv6 = false;
  std::array<std::uint8_t, 16> address{};  // network byte order; IPv4 uses the first 4
  int prefix_length = 0;                   // 0..32 for IPv4, 0..128 for IPv6

  // True when `address` (textual IPv4 or IPv6) lies inside this network.
  // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) matches IPv4 networks.
  bool contains(std::string_view address) const;
  std::string to_string() const;

  bool operator==(const Cidr&) const = default;
};

// Parses "a.b.c.d/N", "v6/N", or a bare address (a single-host network).
// Returns nullopt and sets *why when given, e.g. for host bits set below the prefix
// (10.0.0.1/8), which is almost always a typo for 10.0.0.0/8 or 10.0.0.1/32.
std::optional<Cidr> parse_cidr(std::string_view text, std::string* why = nullptr);

}  // namespace phlow::config
