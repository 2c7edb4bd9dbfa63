#pragma once
// Reads the fields of one mapping, converting and checking each, and reports the
// keys nobody asked for: a typo must never silently disable a setting.
// Every getter returns `fallback` when the key is absent or null, and also after
// reporting a bad value, so validation can go on and collect further errors.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "diagnostics.hpp"

namespace phlow::config {

class ObjectReader {
 public:
  // A node that is neither a mapping nor null is reported and read as empty.
  ObjectReader(Diagnostics& diag, Node node);

  // The child at `key` (marked as known), or nullopt when absent or null.
  std::optional<Node> get(std::string_view key);
  bool has(std::string_view key) { return get(key).has_value(); }
  // A reader for the mapping at `key`; an absent key reads as an empty mapping.
  ObjectReader object(std::string_view key);
  const Path& path() const { return node_.path; }

  std::string string(std::string_view key, std::string fallback);
  std::optional<std::string> optional_string(std::string_view key);
  std::int64_t integer(std::string_view key, std::int64_t fallback, std::int64_t min,
                       std::int64_t max);
  bool boolean(std::string_view key, bool fallback);
  std::chrono::milliseconds duration(std::string_view key, std::chrono::milliseconds fallback);
  std::uint64_t size(std::string_view key, std::uint64_t fallback);
  // Each string of a list, with its path. A missing key gives an empty list.
  std::vector<std::pair<std::string, Path>> string_list(std::string_view key);

  template <typename Enum>
  Enum choice(std::string_view key, Enum fallback,
              std::initializer_list<std::pair<std::string_view, Enum>> names) {
    const auto text = optional_string(key);
    if (!text) return fallback;
    for (const auto& [name, value] : names) {
      if (*text == name) return value;
    }
    std::string list;
    for (const auto& [name, value] : names) list += (list.empty() ? "" : ", ") + std::string(name);
    diag_.error(node_.path.key(key), "expected one of " + list + ", got \"" + *text + "\"");
    return fallback;
  }

  // The keys of the mapping, in file order, each marked as known.
  std::vector<std::string> keys();
  // Reports every key that was never asked for.
  void finish();

  Diagnostics& diagnostics() { return diag_; }

 private:
  Diagnostics& diag_;
  Node node_;
  bool is_object_ = false;
  std::set<std::string, std::less<>> known_;
};

}  // namespace phlow::config
