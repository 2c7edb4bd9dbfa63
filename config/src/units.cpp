#include "config/units.hpp"

#include <array>
#include <charconv>
#include <limits>
#include <utility>

namespace phlow::config {
namespace {

// Splits "30s" into 30 and "s". Returns false when there is no leading integer.
bool split_number(std::string_view text, std::uint64_t& number, std::string_view& unit) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, number);
  if (ec != std::errc{} || ptr == begin) return false;
  unit = std::string_view(ptr, static_cast<std::size_t>(end - ptr));
  return true;
}

constexpr std::array<std::pair<std::string_view, std::uint64_t>, 5> kDurationUnits{{
    {"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}}};

constexpr std::array<std::pair<std::string_view, std::uint64_t>, 4> kSizeUnits{{
    {"GiB", 1ULL << 30}, {"MiB", 1ULL << 20}, {"KiB", 1ULL << 10}, {"", 1}}};

template <typename Units>
std::optional<std::uint64_t> scaled(std::string_view text, const Units& units) {
  std::uint64_t number = 0;
  std::string_view unit;
  if (!split_number(text, number, unit)) return std::nullopt;
  for (const auto& [name, factor] : units) {
    if (unit != name) continue;
    if (number > std::numeric_limits<std::int64_t>::max() / factor) return std::nullopt;
    return number * factor;
  }
  return std::nullopt;
}

template <typename Units>
std::string largest_exact(std::uint64_t value, const Units& units) {
  for (const auto& [name, factor] : units) {
    if (value != 0 && value % factor == 0) return std::to_string(value / factor) + std::string(name);
  }
  return std::to_string(value) + std::string(units.back().first);
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto ms = scaled(text, kDurationUnits);
  if (!ms) return std::nullopt;
  return std::chrono::milliseconds(static_cast<std::int64_t>(*ms));
}

std::optional<std::uint64_t> parse_size(std::string_view text) { return scaled(text, kSizeUnits); }

std::string format_duration(std::chrono::milliseconds duration) {
  return largest_exact(static_cast<std::uint64_t>(duration.count()), kDurationUnits);
}

std::string format_size(std::uint64_t bytes) { return largest_exact(bytes, kSizeUnits); }

}  // namespace phlow::config
