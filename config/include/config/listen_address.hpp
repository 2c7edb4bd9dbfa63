#pragma once
// Where a listener binds: "HOST:PORT" or "[IPv6]:PORT".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace phlow::config {

struct ListenAddress {
  std::string host;         // numeric address; IPv6 without brackets
  std::uint16_t port = 0;   // 0 asks the OS for a free port (tests)
  bool ipv6 = false;

  // "0.0.0.0:8080" or "[::1]:8080", parseable by parse_listen_address.
  std::string to_string() const;
  bool operator==(const ListenAddress&) const = default;
};

// Returns nullopt and sets *why when given. The host must be a numeric IP address:
// binding to a name would depend on DNS at start-up.
std::optional<ListenAddress> parse_listen_address(std::string_view text,
                                                  std::string* why = nullptr);

// Parses a decimal port 0..65535. Shared by the URL parsers.
std::optional<std::uint16_t> parse_port(std::string_view text);

}  // namespace phlow::config
