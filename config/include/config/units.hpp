#pragma once
// Durations and sizes as users write them in the config file.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace phlow::config {

// Parses "250ms", "30s", "1m", "1h", "1d" (a non-negative integer and one unit).
// Returns nullopt for anything else, including a bare number: a unitless duration
// is ambiguous, so only the key `window_ms` takes one.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Parses "512", "16KiB", "10MiB", "1GiB" (binary units; "KB" etc. are rejected so
// nobody wonders whether 1KB is 1000 or 1024). Returns nullopt on overflow.
std::optional<std::uint64_t> parse_size(std::string_view text);

// The shortest exact spelling in the units parse_duration accepts ("1m", "1500ms").
std::string format_duration(std::chrono::milliseconds duration);
// The shortest exact spelling in the units parse_size accepts ("16KiB", "1000").
std::string format_size(std::uint64_t bytes);

}  // namespace phlow::config
