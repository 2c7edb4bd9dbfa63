#include "config/listen_address.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace phlow::config {
namespace {

bool is_address(int family, const std::string& host) {
  unsigned char buffer[16];
  return inet_pton(family, host.c_str(), buffer) == 1;
}

std::optional<ListenAddress> fail(std::string* why, std::string message) {
  if (why) *why = std::move(message);
  return std::nullopt;
}

}  // namespace

std::optional<std::uint16_t> parse_port(std::string_view text) {
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || value > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(value);
}

std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* why) {
  ListenAddress address;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || text.substr(close + 1, 1) != ":") {
      return fail(why, "expected [IPv6]:PORT");
    }
    address.host = std::string(text.substr(1, close - 1));
    address.ipv6 = true;
    port_text = text.substr(close + 2);
    if (!is_address(AF_INET6, address.host)) return fail(why, "not an IPv6 address");
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return fail(why, "expected HOST:PORT");
    address.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (address.host.empty()) address.host = "0.0.0.0";  // ":8080", as nginx reads it
    if (address.host.find(':') != std::string::npos) {
      return fail(why, "an IPv6 host needs brackets: [::1]:8080");
    }
    if (!is_address(AF_INET, address.host)) {
      return fail(why, "host must be a numeric IP address such as 0.0.0.0 or 127.0.0.1");
    }
  }
  const auto port = parse_port(port_text);
  if (!port) return fail(why, "port must be an integer 0..65535");
  address.port = *port;
  return address;
}

std::string ListenAddress::to_string() const {
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace phlow::config
