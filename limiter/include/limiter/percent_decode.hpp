#pragma once
// Percent-decoding (RFC 3986 2.1), one implementation for the Redis URL's credentials,
// query parameters that carry identifiers, and the admin API's path. '+' stays '+'
// (only HTML forms mean a space by it).

#include <optional>
#include <string>
#include <string_view>

namespace phlow::limiter {

// What a '%' not followed by two hex digits does.
enum class BadEscape {
  reject,  // the whole text is invalid: nullopt
  keep,    // the '%' stays as it is, and decoding goes on
};

std::optional<std::string> percent_decode(std::string_view text, BadEscape bad);

}  // namespace phlow::limiter
