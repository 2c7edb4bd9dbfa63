#pragma once
// A number appended to a string in its shortest decimal form (std::to_chars): no
// locale, no temporary string. Shared by everything the gateway writes as text (heads,
// rate-limit headers, access-log lines, Prometheus exposition).

#include <charconv>
#include <string>

namespace phlow::gateway {

template <typename Number>
void append_number(std::string& out, Number value) {
  char digits[32];  // any integer, and a double's shortest form
  out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
}

}  // namespace phlow::gateway
