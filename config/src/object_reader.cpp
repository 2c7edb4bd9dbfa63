#include "object_reader.hpp"

#include <algorithm>
#include <limits>

#include "config/units.hpp"

namespace phlow::config {
namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

ObjectReader::ObjectReader(Diagnostics& diag, Node node) : diag_(diag), node_(std::move(node)) {
  is_object_ = node_.value->is_object();
  if (!is_object_ && !node_.value->is_null()) diag_.expected(node_, "a mapping");
}

std::optional<Node> ObjectReader::get(std::string_view key) {
  known_.emplace(key);
  if (!is_object_) return std::nullopt;
  auto it = node_.value->find(key);
  if (it == node_.value->end() || it->is_null()) return std::nullopt;
  return Node{&*it, node_.path.key(key)};
}

ObjectReader ObjectReader::object(std::string_view key) {
  static const Json kNull;
  auto node = get(key);
  return ObjectReader(diag_, node ? *node : Node{&kNull, node_.path.key(key)});
}

std::optional<std::string> ObjectReader::optional_string(std::string_view key) {
  auto node = get(key);
  if (!node) return std::nullopt;
  if (!node->value->is_string()) {
    diag_.expected(*node, "a string");
    return std::nullopt;
  }
  return node->value->get<std::string>();
}

std::string ObjectReader::string(std::string_view key, std::string fallback) {
  return optional_string(key).value_or(std::move(fallback));
}

std::int64_t ObjectReader::integer(std::string_view key, std::int64_t fallback, std::int64_t min,
                                   std::int64_t max) {
  auto node = get(key);
  if (!node) return fallback;
  const std::string range = max == std::numeric_limits<std::int64_t>::max()
                                ? ">= " + std::to_string(min)
                                : std::to_string(min) + ".." + std::to_string(max);
  if (!node->value->is_number_integer()) {
    diag_.expected(*node, "an integer " + range);
    return fallback;
  }
  // A huge unsigned value would wrap to a negative int64: compare unsigned first.
  if (node->value->is_number_unsigned() &&
      node->value->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
    diag_.expected(*node, "an integer " + range);
    return fallback;
  }
  const auto value = node->value->get<std::int64_t>();
  if (value < min || value > max) {
    diag_.expected(*node, "an integer " + range);
    return fallback;
  }
  return value;
}

bool ObjectReader::boolean(std::string_view key, bool fallback) {
  auto node = get(key);
  if (!node) return fallback;
  if (!node->value->is_boolean()) {
    diag_.expected(*node, "true or false");
    return fallback;
  }
  return node->value->get<bool>();
}

std::chrono::milliseconds ObjectReader::duration(std::string_view key,
                                                 std::chrono::milliseconds fallback) {
  auto node = get(key);
  if (!node) return fallback;
  if (node->value->is_string()) {
    if (auto parsed = parse_duration(node->value->get<std::string>())) return *parsed;
  }
  diag_.expected(*node, "a duration such as 250ms, 30s, 1m, 1h or 1d");
  return fallback;
}

std::uint64_t ObjectReader::size(std::string_view key, std::uint64_t fallback) {
  auto node = get(key);
  if (!node) return fallback;
  if (node->value->is_number_unsigned()) return node->value->get<std::uint64_t>();
  if (node->value->is_number_integer() && node->value->get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(node->value->get<std::int64_t>());
  }
  if (node->value->is_string()) {
    if (auto parsed = parse_size(node->value->get<std::string>())) return *parsed;
  }
  diag_.expected(*node, "a size such as 512, 16KiB, 10MiB or 1GiB");
  return fallback;
}

std::vector<std::pair<std::string, Path>> ObjectReader::string_list(std::string_view key) {
  std::vector<std::pair<std::string, Path>> out;
  auto node = get(key);
  if (!node) return out;
  if (!node->value->is_array()) {
    diag_.expected(*node, "a list");
    return out;
  }
  for (std::size_t i = 0; i < node->value->size(); ++i) {
    const Node element{&(*node->value)[i], node->path.index(i)};
    if (element.value->is_string()) {
      out.emplace_back(element.value->get<std::string>(), element.path);
    } else {
      diag_.expected(element, "a string");
    }
  }
  return out;
}

std::vector<std::string> ObjectReader::keys() {
  std::vector<std::string> out;
  if (!is_object_) return out;
  for (const auto& item : node_.value->items()) {
    known_.insert(item.key());
    out.push_back(item.key());
  }
  return out;
}

void ObjectReader::finish() {
  if (!is_object_) return;
  for (const auto& item : node_.value->items()) {
    if (known_.contains(item.key())) continue;
    std::string hint;
    std::string list;
    for (const auto& name : known_) {
      const auto distance = edit_distance(item.key(), name);
      if (hint.empty() && distance <= 2 && distance * 3 <= name.size()) hint = name;
      list += (list.empty() ? "" : ", ") + name;
    }
    diag_.error(node_.path.key(item.key()),
                "unknown key \"" + item.key() + "\" " +
                    (hint.empty() ? "(expected one of: " + list + ")"
                                  : "(did you mean \"" + hint + "\"?)"));
  }
}

}  // namespace phlow::config
