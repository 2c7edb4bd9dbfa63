#include "limiter/key_layout.hpp"

namespace phlow::limiter {

std::string KeyLayout::key_of_stored(std::string_view limit, std::string_view stored_identifier) const {
  std::string out;
  out.reserve(prefix_.size() + limit.size() + 1 + stored_identifier.size());
  out.append(prefix_).append(limit).append(":").append(stored_identifier);
  return out;
}

std::string KeyLayout::presence_key() const {
  return std::string(prefix_).append(kPresenceKeySuffix);
}

}  // namespace phlow::limiter
