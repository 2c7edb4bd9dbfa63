#include "config/cidr.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace phlow::config {
namespace {

// Parses a textual address into `out`. Returns false when it is neither family.
bool parse_address(const std::string& text, bool& ipv6, std::array<std::uint8_t, 16>& out) {
  out.fill(0);
  if (inet_pton(AF_INET, text.c_str(), out.data()) == 1) {
    ipv6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), out.data()) == 1) {
    ipv6 = true;
    return true;
  }
  return false;
}

bool prefix_equal(const std::array<std::uint8_t, 16>& a, const std::array<std::uint8_t, 16>& b,
                  int bits) {
  const int whole = bits / 8;
  if (std::memcmp(a.data(), b.data(), static_cast<std::size_t>(whole)) != 0) return false;
  const int rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

bool fail(std::string* why, std::string message) {
  if (why) *why = std::move(message);
  return false;
}

}  // namespace

std::optional<Cidr> parse_cidr(std::string_view text, std::string* why) {
  const auto slash = text.find('/');
  Cidr cidr;
  if (!parse_address(std::string(text.substr(0, slash)), cidr.ipv6, cidr.address)) {
    fail(why, "not an IPv4 or IPv6 address");
    return std::nullopt;
  }
  const int max_bits = cidr.ipv6 ? 128 : 32;
  cidr.prefix_length = max_bits;
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(),
                                     cidr.prefix_length);
    if (ec != std::errc{} || ptr != digits.data() + digits.size() || digits.empty() ||
        cidr.prefix_length < 0 || cidr.prefix_length > max_bits) {
      fail(why, "prefix length must be 0.." + std::to_string(max_bits));
      return std::nullopt;
    }
  }
  Cidr masked = cidr;
  for (int bit = cidr.prefix_length; bit < max_bits; ++bit) {
    masked.address[bit / 8] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
  }
  if (masked.address != cidr.address) {
    fail(why, "host bits set below the prefix; did you mean " + masked.to_string() + "?");
    return std::nullopt;
  }
  return cidr;
}

bool Cidr::contains(std::string_view text) const {
  bool v6 = false;
  std::array<std::uint8_t, 16> other{};
  if (!parse_address(std::string(text), v6, other)) return false;
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (v6 && !ipv6 && std::memcmp(other.data(), kMapped, sizeof kMapped) == 0) {
    std::memmove(other.data(), other.data() + 12, 4);
    std::memset(other.data() + 4, 0, 12);
    v6 = false;
  }
  return v6 == ipv6 && prefix_equal(address, other, prefix_length);
}

std::string Cidr::to_string() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  inet_ntop(ipv6 ? AF_INET6 : AF_INET, address.data(), buffer, sizeof buffer);
  return std::string(buffer) + "/" + std::to_string(prefix_length);
}

}  // namespace phlow::config
