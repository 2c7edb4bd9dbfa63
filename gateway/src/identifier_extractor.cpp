#include "gateway/identifier_extractor.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

#include <nlohmann/json.hpp>

#include "limiter/descriptor.hpp"
#include "limiter/percent_decode.hpp"

namespace phlow::gateway {
namespace {

// A JWT payload larger than this is not decoded: the claim is treated as missing, so
// a client cannot make every request parse a huge JSON document.
constexpr std::size_t kMaxJwtPayloadBytes = 8 * 1024;
// Base64 of kMaxJwtPayloadBytes without padding: longer input decodes to more.
constexpr std::size_t kMaxJwtPayloadEncoded = (kMaxJwtPayloadBytes * 4 + 2) / 3;

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// The token of "Authorization: Bearer <token>" (scheme case-insensitive, one or more
// spaces before the token, RFC 9110 section 11.4), or nullopt for another scheme or an
// empty token.
std::optional<std::string_view> bearer_token(const HeaderSource& headers) {
  const auto value = headers.first("Authorization");
  if (!value) return std::nullopt;
  const std::string_view text = trim(*value);
  const auto space = text.find(' ');
  if (space == std::string_view::npos || !iequals(text.substr(0, space), "Bearer")) {
    return std::nullopt;
  }
  const std::string_view token = trim(text.substr(space));
  if (token.empty()) return std::nullopt;
  return token;
}

int base64url_digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Decodes unpadded base64url (RFC 7515 section 2), the only form a JWT uses; padding
// or the '+' '/' alphabet is rejected. Returns false on any invalid input.
bool base64url_decode(std::string_view text, std::string& out) {
  if (text.size() % 4 == 1) return false;
  out.clear();
  out.reserve(text.size() * 3 / 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const int digit = base64url_digit(c);
    if (digit < 0) return false;
    buffer = ((buffer << 6) | static_cast<std::uint32_t>(digit)) & 0xFFFFU;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFFU));
    }
  }
  return true;
}

// The claim `claim` of the JWT `token` as text: a string as is, an integer in decimal.
// The signature is NOT verified (SPEC.md: "unverified"): a client can put any agent
// ID in a token, so this identifier only separates well-behaved agents; limits that
// must hold against forged IDs belong on token_hash or ip.
bool jwt_claim(std::string_view token, const std::string& claim, std::string& out) {
  const auto first_dot = token.find('.');
  if (claim.empty() || first_dot == std::string_view::npos) return false;
  const auto second_dot = token.find('.', first_dot + 1);
  // Exactly three parts: header.payload.signature (a JWE's payload is encrypted).
  if (second_dot == std::string_view::npos ||
      token.find('.', second_dot + 1) != std::string_view::npos) {
    return false;
  }
  const auto payload = token.substr(first_dot + 1, second_dot - first_dot - 1);
  std::string decoded;
  if (payload.size() > kMaxJwtPayloadEncoded || !base64url_decode(payload, decoded)) {
    return false;
  }
  // No exceptions on the data path: a parse error yields a discarded value.
  const auto json = nlohmann::json::parse(decoded, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return false;
  const auto it = json.find(claim);
  if (it == json.end()) return false;
  if (it->is_string()) {
    out = it->get_ref<const std::string&>();
  } else if (it->is_number_unsigned()) {
    out = std::to_string(it->get<std::uint64_t>());
  } else if (it->is_number_integer()) {
    out = std::to_string(it->get<std::int64_t>());
  } else {
    return false;
  }
  return !out.empty();
}

// Decodes %XX escapes; a '%' not followed by two hex digits stays as it is.
std::string percent_decode(std::string_view text) {
  return *limiter::percent_decode(text, limiter::BadEscape::keep);
}

// The decoded value of the first parameter named `name` in `query` ("a=1&b=2").
bool query_parameter(std::string_view query, std::string_view name, std::string& out) {
  while (!name.empty() && !query.empty()) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq)) == name) {
      out = eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
      return !out.empty();
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // network byte order; IPv4 uses the first 4
};

std::optional<IpAddress> parse_ip(std::string_view text) {
  char buffer[INET6_ADDRSTRLEN + 1] = {};  // inet_pton needs a terminated string
  if (text.empty() || text.size() >= sizeof buffer) return std::nullopt;
  std::memcpy(buffer, text.data(), text.size());
  IpAddress ip;
  if (inet_pton(AF_INET, buffer, ip.bytes.data()) == 1) return ip;
  ip.v6 = true;
  if (inet_pton(AF_INET6, buffer, ip.bytes.data()) == 1) return ip;
  return std::nullopt;
}

bool is_ipv4_mapped(const IpAddress& ip) {
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  return ip.v6 && std::memcmp(ip.bytes.data(), kMapped, sizeof kMapped) == 0;
}

// The `ip` identifier: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6 masked to
// `prefix` bits in canonical form with a "/prefix" suffix (none for 128), so that a
// client cannot escape its limit by rotating through the addresses of its /64.
void ip_identifier(std::string_view text, int prefix, std::string& out) {
  auto ip = parse_ip(text);
  if (!ip) {  // e.g. a peer with a zone ID; count it by its text
    out.assign(text);
    return;
  }
  if (!ip->v6) {  // inet_pton takes only the canonical dotted quad: already the form
    out.assign(text);
    return;
  }
  char buffer[INET6_ADDRSTRLEN] = {};
  if (is_ipv4_mapped(*ip)) {
    inet_ntop(AF_INET, ip->bytes.data() + 12, buffer, sizeof buffer);
    out.assign(buffer);
    return;
  }
  prefix = std::clamp(prefix, 0, 128);
  for (int bit = prefix; bit < 128; ++bit) {
    ip->bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80U >> (bit % 8)));
  }
  inet_ntop(AF_INET6, ip->bytes.data(), buffer, sizeof buffer);
  out.assign(buffer);
  if (prefix < 128) out.append("/").append(std::to_string(prefix));
}

bool is_trusted(const std::vector<config::Cidr>& proxies, std::string_view address) {
  return std::any_of(proxies.begin(), proxies.end(),
                     [&](const config::Cidr& cidr) { return cidr.contains(address); });
}

// Every occurrence of the header `name`, joined with commas in arrival order: a
// list-valued header split across lines means the same as one line (RFC 9110 5.3).
std::string joined_header(const HeaderSource& headers, std::string_view name) {
  std::string joined;
  headers.for_each(name, [&](std::string_view value) {
    if (!joined.empty()) joined.push_back(',');
    joined.append(value);
  });
  return joined;
}

bool non_empty_header(const HeaderSource& headers, const std::string& name, std::string& out) {
  if (name.empty()) return false;
  const auto value = headers.first(name);
  if (!value || value->empty()) return false;
  out.assign(*value);
  return true;
}

}  // namespace

IdentifierExtractor::IdentifierExtractor(const config::Identifiers& settings)
    : settings_(settings) {}

bool IdentifierExtractor::extract(const config::IdentifierKey& key, const RequestView& request,
                                  std::string& out) const {
  const HeaderSource& headers = request.headers;
  switch (key.kind) {
    case config::IdentifierKind::token_hash: {
      const auto token = bearer_token(headers);
      if (!token) return false;
      limiter::sha256_hex(*token, out);
      return true;
    }
    case config::IdentifierKind::agent_id: {
      if (non_empty_header(headers, settings_.agent_id.header, out)) return true;
      const auto token = bearer_token(headers);
      return token && jwt_claim(*token, settings_.agent_id.jwt_claim, out);
    }
    case config::IdentifierKind::ip:
      ip_identifier(client_ip(request), settings_.ip.ipv6_prefix, out);
      return true;
    case config::IdentifierKind::api_key: {
      if (!non_empty_header(headers, settings_.api_key.header, out) &&
          !query_parameter(request.query(), settings_.api_key.query, out)) {
        return false;
      }
      out = limiter::sha256_hex(out);
      return true;
    }
    case config::IdentifierKind::header:
      return non_empty_header(headers, key.header_name, out);
  }
  return false;
}

std::string IdentifierExtractor::client_ip(const RequestView& request) const {
  const std::string_view peer = request.peer_address;
  // Only a server without a real socket has no peer; "unknown" keeps the contract.
  if (peer.empty()) return "unknown";
  const auto& proxies = settings_.ip.trusted_proxies;
  if (!is_trusted(proxies, peer)) return std::string(peer);  // spoofed headers ignored
  const std::string chain = joined_header(request.headers, settings_.ip.forwarded_header);
  // Walk right to left: each trusted hop vouches for the address before it.
  std::string_view rest = chain;
  std::string_view leftmost_trusted;
  while (true) {
    const auto comma = rest.rfind(',');
    const auto entry = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    if (!parse_ip(entry)) return std::string(peer);
    if (!is_trusted(proxies, entry)) return std::string(entry);
    leftmost_trusted = entry;
    if (comma == std::string_view::npos) break;
    rest = rest.substr(0, comma);
  }
  return std::string(leftmost_trusted);
}

std::string IdentifierExtractor::redact_target(std::string_view target) const {
  const auto question = target.find('?');
  const std::string& name = settings_.api_key.query;
  if (question == std::string_view::npos || name.empty()) return std::string(target);
  std::string out(target.substr(0, question + 1));
  std::string_view query = target.substr(question + 1);
  for (bool first = true;; first = false) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (!first) out += '&';
    if (eq != std::string_view::npos && percent_decode(pair.substr(0, eq)) == name) {
      out.append(pair.substr(0, eq + 1)).append("***");
    } else {
      out.append(pair);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace phlow::gateway
