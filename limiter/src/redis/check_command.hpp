#pragma once
// The check script's command and reply, sans I/O: what RedisBackend sends for one
// check and how it reads the answer. Kept apart so the RESP fuzzer drives the same code.

#include <span>
#include <string>
#include <string_view>

#include "limiter/decision.hpp"
#include "limiter/descriptor.hpp"
#include "redis/resp.hpp"

namespace phlow::limiter::redis {

// Writes EVALSHA (or EVAL, when `by_sha` is false, after NOSCRIPT) of the check script
// for `descriptors` into `out`.
void encode_check(std::string& out, bool by_sha, std::string_view sha_or_script,
                  std::span<const Descriptor> descriptors, bool consume);

// Turns the script's reply into a decision; false when the reply breaks its contract
// (then `out` is unspecified). `descriptors` is what the command was encoded from.
bool parse_check(const Value& v, std::span<const Descriptor> descriptors, Decision& out);

}  // namespace phlow::limiter::redis
