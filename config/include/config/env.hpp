#pragma once
// ${VAR} and ${VAR:-default} expansion from an injectable environment.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace phlow::config {

// Looks up one environment variable; nullopt when it is unset.
using Env = std::function<std::optional<std::string>(const std::string& name)>;

// The real process environment (getenv).
Env process_env();

struct Expansion {
  std::string value;
  std::string error;  // empty on success
};

// Replaces every ${NAME} by the variable's value ("" when unset) and every
// ${NAME:-default} by the value, or by `default` when unset or empty (as sh does).
// "$$" is a literal "$"; any other "$" is kept as is. Errors: an unterminated "${"
// or an invalid name.
Expansion expand_env(std::string_view text, const Env& env);

}  // namespace phlow::config
