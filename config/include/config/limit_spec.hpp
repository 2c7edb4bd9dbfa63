#pragma once
// A named limit from the config: the limiter's policy plus what identifies a client.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "limiter/limit.hpp"

namespace phlow::config {

enum class IdentifierKind : std::uint8_t { token_hash, agent_id, ip, api_key, header };

struct IdentifierKey {
  IdentifierKind kind = IdentifierKind::token_hash;
  std::string header_name;  // only for `header:NAME`, as written

  // "token_hash", ..., or "header:NAME".
  std::string to_string() const;
  bool operator==(const IdentifierKey&) const = default;
};

// Parses the `key` of a limit. Returns nullopt for unknown kinds and "header:" alone.
std::optional<IdentifierKey> parse_identifier_key(std::string_view text);

// Parses "header:NAME" (a limit's `cost`, `cost_from_response`) into NAME; nullopt for
// anything else.
std::optional<std::string> parse_header_source(std::string_view text);

struct LimitSpec {
  limiter::Limit limit;  // limit.name is the config's name for it
  IdentifierKey key;
  // `cost: "header:NAME"`: the request weighs the number in that header (empty: 1).
  std::string cost_header;
  // `cost_from_response: "header:NAME"`: the response's number is consumed as well.
  std::string response_cost_header;

  const std::string& name() const { return limit.name; }
  bool operator==(const LimitSpec& other) const;
};

}  // namespace phlow::config
