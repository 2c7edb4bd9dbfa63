#pragma once
// One limit applied to one identifier: the unit a backend decides.

#include <string>
#include <string_view>

#include "limiter/limit.hpp"

namespace phlow::limiter {

inline constexpr std::string_view kDefaultKeyPrefix = "phlow:ratelimit:";

// Identifiers longer than this, or with bytes outside printable ASCII, are stored
// as "sha256:<hex>" so that keys stay bounded and readable in redis-cli.
inline constexpr std::size_t kMaxRawIdentifier = 128;

// A concurrency slot id (Descriptor::slot) is at most this long.
inline constexpr std::size_t kMaxSlotId = 40;

struct Descriptor {
  const Limit* limit = nullptr;  // must outlive every check that uses it
  std::string key;               // <prefix><limit name>:<identifier>
  // Units this request weighs (config `cost`): 1 <= cost <= limit->quota() for a check;
  // for a debit (cost_from_response), what the response used, 0 <= cost <= max_debit().
  std::int64_t cost = 1;
  // A concurrency limit: the id of the slot this request takes, unique across every
  // gateway sharing the store (no spaces); it must outlive the check. Empty otherwise.
  std::string_view slot;
};

// Returns the identifier as it appears in keys: itself, or its SHA-256 when it is
// long or holds bytes that do not belong in a key.
std::string key_identifier(std::string_view identifier);

// Writes <prefix><limit>:<identifier> into `out` (reusing its capacity).
void build_key(std::string& out, std::string_view prefix, std::string_view limit_name,
               std::string_view identifier);
std::string build_key(std::string_view prefix, std::string_view limit_name,
                      std::string_view identifier);

// Lowercase hex SHA-256 of `data` (into `out`, reusing its capacity).
std::string sha256_hex(std::string_view data);
void sha256_hex(std::string_view data, std::string& out);

// sha256_hex() that remembers its last input and digest: a client connection that
// sends the same token with every request has it hashed once. One entry, one owner
// (a session's): not thread-safe. The input it holds (a raw token) is wiped when it
// is replaced and when the memo goes.
class Sha256Memo {
 public:
  Sha256Memo() = default;
  Sha256Memo(const Sha256Memo&) = delete;
  Sha256Memo& operator=(const Sha256Memo&) = delete;
  ~Sha256Memo();

  // As sha256_hex(data, out); `data` may point into `out`.
  void hex(std::string_view data, std::string& out);

 private:
  void wipe();

  std::string input_;
  std::string digest_;
  bool valid_ = false;
};

}  // namespace phlow::limiter
