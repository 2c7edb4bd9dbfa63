#pragma once
// Where limits live in Redis (SPEC.md, "Redis layout"): the key of one limit and one
// identifier, <prefix><limit>:<identifier>, and the presence set <prefix>gateways. The
// one place that builds and splits keys: the request path, the admin API, the library
// and the presence set all go through it, and a key's Redis Cluster slot is computed here.

#include <cstdint>
#include <string>
#include <string_view>

#include "limiter/descriptor.hpp"

namespace phlow::limiter {

inline constexpr std::string_view kPresenceKeySuffix = "gateways";

class KeyLayout {
 public:
  explicit KeyLayout(std::string prefix = std::string(kDefaultKeyPrefix)) : prefix_(std::move(prefix)) {}

  const std::string& prefix() const { return prefix_; }

  // The key of `identifier` as a request carries it: stored as itself, or as
  // "sha256:<hex>" when it is long or holds bytes that do not belong in a key
  // (key_identifier). Writes into `out`, reusing its capacity.
  void key(std::string& out, std::string_view limit, std::string_view identifier) const {
    build_key(out, prefix_, limit, identifier);
  }
  std::string key(std::string_view limit, std::string_view identifier) const {
    return build_key(prefix_, limit, identifier);
  }
  // The key of an identifier already in its stored form (as keys, the status page and
  // the access log show it): nothing is hashed.
  std::string key_of_stored(std::string_view limit, std::string_view stored_identifier) const;

  // Of a key built here: "<limit>:<stored identifier>", and the stored identifier of a
  // key of `limit`.
  std::string_view limit_and_identifier(std::string_view key) const { return key.substr(prefix_.size()); }
  std::string_view stored_identifier(std::string_view key, std::string_view limit) const {
    return key.substr(prefix_.size() + limit.size() + 1);
  }

  // The sorted set of live gateway instances (fallback_share: auto).
  std::string presence_key() const;

  // The Redis Cluster slot of `key` (0..16383): CRC16 (XMODEM) of the key, or of the
  // part between the first '{' and the next '}' when that part is not empty.
  static std::uint16_t slot(std::string_view key);

 private:
  std::string prefix_;
};

}  // namespace phlow::limiter
