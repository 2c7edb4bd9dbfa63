#include "redis/cluster_map.hpp"

#include <charconv>

#include "limiter/key_layout.hpp"

namespace phlow::limiter::redis {

namespace {

template <class Int>
bool parse_int(std::string_view text, Int& value) {
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc{} && p == text.data() + text.size() && !text.empty();
}

}  // namespace

std::variant<std::vector<SlotRange>, std::string> parse_cluster_slots(const Value& reply,
                                                                      const RedisNode& asked) {
  if (reply.is_error()) return "CLUSTER SLOTS: " + reply.str;
  if (reply.type != Value::Type::array) return std::string("CLUSTER SLOTS: not an array");
  std::vector<SlotRange> out;
  for (const Value& range : reply.elements) {
    if (range.type != Value::Type::array || range.elements.size() < 3) {
      return std::string("CLUSTER SLOTS: a range without a master");
    }
    const Value& first = range.elements[0];
    const Value& last = range.elements[1];
    const Value& master = range.elements[2];
    if (first.type != Value::Type::integer || last.type != Value::Type::integer ||
        first.integer < 0 || last.integer < first.integer ||
        last.integer >= static_cast<std::int64_t>(kClusterSlots)) {
      return std::string("CLUSTER SLOTS: a bad slot range");
    }
    if (master.type != Value::Type::array || master.elements.size() < 2 ||
        master.elements[0].type != Value::Type::string ||
        master.elements[1].type != Value::Type::integer || master.elements[1].integer <= 0 ||
        master.elements[1].integer > 65535) {
      return std::string("CLUSTER SLOTS: a bad master address");
    }
    SlotRange r;
    r.first = static_cast<std::uint16_t>(first.integer);
    r.last = static_cast<std::uint16_t>(last.integer);
    r.master.host = master.elements[0].str.empty() ? asked.host : master.elements[0].str;
    r.master.port = static_cast<std::uint16_t>(master.elements[1].integer);
    out.push_back(std::move(r));
  }
  if (out.empty()) return std::string("CLUSTER SLOTS: no slot is served");
  return out;
}

SlotGroups::SlotGroups(std::span<const Descriptor> descriptors) {
  for (std::size_t i = 0; i < descriptors.size(); ++i) {
    const std::uint16_t s = KeyLayout::slot(descriptors[i].key);
    std::size_t g = 0;
    while (g < count && slot[g] != s) ++g;
    if (g == count) slot[count++] = s;
    pick[g][size[g]++] = static_cast<std::uint8_t>(i);
  }
}

std::optional<Redirect> parse_redirect(std::string_view error) {
  Redirect r;
  if (error.starts_with("MOVED ")) {
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    r.ask = true;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = error.find(' ');
  if (space == std::string_view::npos || !parse_int(error.substr(0, space), r.slot) ||
      r.slot >= kClusterSlots) {
    return std::nullopt;
  }
  const std::string_view endpoint = error.substr(space + 1);
  const auto colon = endpoint.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || !parse_int(endpoint.substr(colon + 1), r.node.port) ||
      r.node.port == 0) {
    return std::nullopt;
  }
  std::string_view host = endpoint.substr(0, colon);
  if (host.starts_with('[') && host.ends_with(']')) host = host.substr(1, host.size() - 2);
  r.node.host = std::string(host);
  return r;
}

}  // namespace phlow::limiter::redis
