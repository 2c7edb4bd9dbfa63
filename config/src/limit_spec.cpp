#include "config/limit_spec.hpp"

#include <array>
#include <utility>

namespace phlow::config {
namespace {

constexpr std::array<std::pair<std::string_view, IdentifierKind>, 4> kKinds{{
    {"token_hash", IdentifierKind::token_hash},
    {"agent_id", IdentifierKind::agent_id},
    {"ip", IdentifierKind::ip},
    {"api_key", IdentifierKind::api_key},
}};

// RFC 9110 token characters: what a header field name may contain.
bool is_header_name(std::string_view name) {
  constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  if (name.empty()) return false;
  for (char c : name) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum && kExtra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace

std::optional<IdentifierKey> parse_identifier_key(std::string_view text) {
  for (const auto& [name, kind] : kKinds) {
    if (text == name) return IdentifierKey{kind, {}};
  }
  constexpr std::string_view kHeader = "header:";
  if (text.starts_with(kHeader) && is_header_name(text.substr(kHeader.size()))) {
    return IdentifierKey{IdentifierKind::header, std::string(text.substr(kHeader.size()))};
  }
  return std::nullopt;
}

std::optional<std::string> parse_header_source(std::string_view text) {
  constexpr std::string_view kHeader = "header:";
  if (!text.starts_with(kHeader) || !is_header_name(text.substr(kHeader.size()))) return std::nullopt;
  return std::string(text.substr(kHeader.size()));
}

std::string IdentifierKey::to_string() const {
  if (kind == IdentifierKind::header) return "header:" + header_name;
  for (const auto& [name, k] : kKinds) {
    if (k == kind) return std::string(name);
  }
  return "unknown";
}

// limiter::Limit has no operator==, and this module should not add one to it.
bool LimitSpec::operator==(const LimitSpec& other) const {
  const auto& a = limit;
  const auto& b = other.limit;
  return a.name == b.name && a.requests == b.requests && a.window_ms == b.window_ms &&
         a.algorithm == b.algorithm && a.burst == b.burst && a.shadow == b.shadow &&
         a.weighted == b.weighted && key == other.key && cost_header == other.cost_header &&
         response_cost_header == other.response_cost_header;
}

}  // namespace phlow::config
