#include "config/env.hpp"

#include <cstdlib>

namespace phlow::config {
namespace {

bool valid_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    const bool ok = c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Expands the body of one "${...}" into `out`. Returns an error message or "".
std::string expand_one(std::string_view body, const Env& env, std::string& out) {
  const auto sep = body.find(":-");
  const auto name = body.substr(0, sep);
  if (!valid_name(name)) return "invalid variable name \"" + std::string(name) + "\" in ${...}";
  const auto value = env ? env(std::string(name)) : std::nullopt;
  if (sep != std::string_view::npos && (!value || value->empty())) {
    out += body.substr(sep + 2);
  } else if (value) {
    out += *value;
  }
  return {};
}

}  // namespace

Env process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

Expansion expand_env(std::string_view text, const Env& env) {
  Expansion result;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] != '$' || i + 1 == text.size()) {
      result.value += text[i++];
    } else if (text[i + 1] == '$') {
      result.value += '$';
      i += 2;
    } else if (text[i + 1] == '{') {
      const auto close = text.find('}', i + 2);
      if (close == std::string_view::npos) {
        result.error = "unterminated \"${\" (expected ${NAME} or ${NAME:-default})";
        return result;
      }
      result.error = expand_one(text.substr(i + 2, close - i - 2), env, result.value);
      if (!result.error.empty()) return result;
      i = close + 1;
    } else {
      result.value += text[i++];
    }
  }
  return result;
}

}  // namespace phlow::config
