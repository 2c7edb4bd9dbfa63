#include "config/config.hpp"

namespace phlow::config {

std::optional<std::size_t> Config::find_limit(const std::string& name) const {
  for (std::size_t i = 0; i < limits.size(); ++i) {
    if (limits[i].name() == name) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> Config::find_upstream(const std::string& name) const {
  for (std::size_t i = 0; i < upstreams.size(); ++i) {
    if (upstreams[i].name == name) return i;
  }
  return std::nullopt;
}

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::trace: return "trace";
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
    case LogLevel::critical: return "critical";
    case LogLevel::off: return "off";
  }
  return "unknown";
}

std::string_view to_string(OnFailure on_failure) {
  switch (on_failure) {
    case OnFailure::fallback: return "fallback";
    case OnFailure::allow: return "allow";
    case OnFailure::deny: return "deny";
  }
  return "unknown";
}

std::string_view to_string(JwtOnInvalid on_invalid) {
  switch (on_invalid) {
    case JwtOnInvalid::reject: return "reject";
    case JwtOnInvalid::ignore: return "ignore";
  }
  return "unknown";
}

}  // namespace phlow::config
