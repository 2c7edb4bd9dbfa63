#include "gateway/identifier_extractor.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

#include "gateway/jwt_verifier.hpp"
#include "limiter/descriptor.hpp"
#include "limiter/percent_decode.hpp"

namespace phlow::gateway {
namespace {

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

IdentifierExtractor::IdentifierExtractor(const config::Identifiers& settings,
                                         const JwtVerifier* jwt)
    : settings_(settings), jwt_(jwt) {}

bool IdentifierExtractor::extract(const config::IdentifierKey& key, const RequestView& request,
                                  std::string& out) const {
  return identify(key, request, out) == Identified::found;
}

Identified IdentifierExtractor::identify(const config::IdentifierKey& key, const RequestView& request,
                                         std::string& out, JwtError* why,
                                         limiter::Sha256Memo* digests) const {
  const auto found = [](bool yes) { return yes ? Identified::found : Identified::missing; };
  const auto hash = [digests](std::string_view data, std::string& into) {
    if (digests != nullptr) {
      digests->hex(data, into);
    } else {
      limiter::sha256_hex(data, into);
    }
  };
  const HeaderSource& headers = request.headers;
  switch (key.kind) {
    case config::IdentifierKind::token_hash: {
      const auto token = bearer_token(headers);
      if (!token) return Identified::missing;
      hash(*token, out);
      return Identified::found;
    }
    case config::IdentifierKind::agent_id:
      return agent_id(headers, out, why);
    case config::IdentifierKind::ip:
      ip_identifier(client_ip(request), settings_.ip.ipv6_prefix, out);
      return Identified::found;
    case config::IdentifierKind::api_key: {
      if (!non_empty_header(headers, settings_.api_key.header, out) &&
          !query_parameter(request.query(), settings_.api_key.query, out)) {
        return Identified::missing;
      }
      hash(out, out);
      return Identified::found;
    }
    case config::IdentifierKind::header:
      return found(non_empty_header(headers, key.header_name, out));
  }
  return Identified::missing;
}

Identified IdentifierExtractor::agent_id(const HeaderSource& headers, std::string& out,
                                         JwtError* why) const {
  const config::AgentIdSettings& agent = settings_.agent_id;
  if (!agent.jwt) {
    // Unverified (SPEC.md): a client can put any agent ID in the header or a token, so
    // this identifier only separates well-behaved agents.
    if (non_empty_header(headers, agent.header, out)) return Identified::found;
    const auto token = bearer_token(headers);
    return token && unverified_jwt_claim(*token, agent.jwt_claim, out) ? Identified::found
                                                                       : Identified::missing;
  }
  // Verified: the header is not even looked at (anyone could send it). No token at
  // all is a request without an agent ID, as without verification.
  const auto token = bearer_token(headers);
  if (!token) return Identified::missing;
  // Without its verifier (only a caller that built none) nothing can be trusted.
  const JwtError error =
      jwt_ != nullptr ? jwt_->verify(*token, agent.jwt_claim, out) : JwtError::bad_signature;
  if (why != nullptr) *why = error;
  return error == JwtError::none ? Identified::found : Identified::invalid;
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
