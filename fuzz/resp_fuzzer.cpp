// Replies from a Redis that may be broken or hostile, through the code the client
// runs on them: the ValueReader (hiredis's parser building Values) fed in arbitrary
// pieces (as reads arrive, Pipeline::feed), then what each reply means: a check decision
// (parse_check, the RedisBackend's reading of the script's reply), an error reply
// (server_error, NOSCRIPT, a missing function), or a handshake answer (INFO's version,
// SCRIPT LOAD's sha).
// Input: byte 0 = descriptors in the check (low 5 bits mod 17) and consume (bit 7),
// byte 1 = feed size - 1, the rest = the bytes Redis sends.
// Also: each check command encode_check() writes parses back, argument for argument.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_assert.hpp"
#include "redis/check_command.hpp"
#include "redis/resp.hpp"

namespace {

using phlow::limiter::Decision;
using phlow::limiter::Descriptor;
using phlow::limiter::kMaxLimitsPerCheck;
using phlow::limiter::kNone;
using phlow::limiter::Limit;
using phlow::limiter::redis::Value;

struct Checks {
  std::array<Limit, kMaxLimitsPerCheck> limits;
  std::array<Descriptor, kMaxLimitsPerCheck> descriptors;

  Checks() {
    for (std::size_t i = 0; i < kMaxLimitsPerCheck; ++i) {
      Limit& l = limits[i];
      l.name = "l" + std::to_string(i);
      l.requests = static_cast<std::int64_t>(i) + 1;
      l.window_ms = 1000 * (static_cast<std::int64_t>(i) + 1);
      l.algorithm = static_cast<phlow::limiter::Algorithm>(i % 4);
      l.burst = i % 4 == 2 ? 2 * l.requests : 0;
      l.shadow = i % 4 == 1;
      l.weighted = i % 4 != 3 && i % 5 == 1;
      // Raw bytes a key would never hold after build_key: the framing must not care.
      descriptors[i].limit = &l;
      descriptors[i].key = "phlow:ratelimit:" + l.name + ":id\r\n$-1\r\n" + std::string(i, '*');
      slots[i] = "slot." + std::to_string(i);
      if (i % 4 == 3) descriptors[i].slot = slots[i];
    }
  }
  std::array<std::string, kMaxLimitsPerCheck> slots;
  // Every descriptor weighs 1, or (weighted) its index + 1 units.
  void set_costs(bool weighted) {
    for (std::size_t i = 0; i < kMaxLimitsPerCheck; ++i) {
      descriptors[i].cost = weighted ? static_cast<std::int64_t>(i) + 1 : 1;
    }
  }
};

void check_decision(const Decision& d, std::span<const Descriptor> descriptors) {
  FUZZ_ASSERT(d.count == descriptors.size());
  bool any_enforced_rejection = false;
  for (std::size_t i = 0; i < d.count; ++i) {
    FUZZ_ASSERT(d.results[i].shadow == descriptors[i].limit->shadow);
    any_enforced_rejection = any_enforced_rejection || (!d.results[i].allowed && !d.results[i].shadow);
  }
  FUZZ_ASSERT(d.allowed == !any_enforced_rejection);
  if (!d.allowed) {
    FUZZ_ASSERT(d.rejected_by >= 0 && static_cast<std::size_t>(d.rejected_by) < d.count);
    FUZZ_ASSERT(!d.results[d.rejected_by].allowed && !d.results[d.rejected_by].shadow);
    FUZZ_ASSERT(d.most_restrictive == d.rejected_by);
  } else {
    FUZZ_ASSERT(d.rejected_by == kNone);
    FUZZ_ASSERT(d.count == 0 ? d.most_restrictive == kNone
                             : d.most_restrictive >= 0 &&
                                   static_cast<std::size_t>(d.most_restrictive) < d.count);
  }
}

// What the client does with one reply, depending on what it was waiting for.
void interpret(const Value& v, std::span<const Descriptor> descriptors) {
  if (v.is_error()) {
    // A store sends the call again by EVALSHA, or EVAL, when it names a missing
    // function or script.
    namespace redis = phlow::limiter::redis;
    using Form = redis::ScriptForm;
    const auto after_function = redis::retry_form(Form::function, v);
    const auto after_sha = redis::retry_form(Form::sha, v);
    FUZZ_ASSERT(!after_function || *after_function == Form::sha);
    FUZZ_ASSERT(!after_sha || *after_sha == Form::source);
    FUZZ_ASSERT(!redis::retry_form(Form::source, v));  // EVAL is the last resort
    return;
  }
  Decision d;
  if (phlow::limiter::redis::parse_check(v, descriptors, d)) check_decision(d, descriptors);
  // The handshake: INFO server, then SCRIPT LOAD (and FUNCTION LOAD from 7.0 on).
  const std::string_view version = phlow::limiter::redis::redis_version(v.str);
  (void)phlow::limiter::redis::version_supported(version);
  (void)phlow::limiter::redis::version_at_least(version, 7);
  (void)(v.type == Value::Type::string && v.str.size() == 40);
}

// Feeds `bytes` `step` at a time and interprets every complete reply; stops at the
// first protocol error or an overfull reader, as the connection closes there.
void read_replies(std::string_view bytes, std::size_t step, std::span<const Descriptor> descriptors) {
  using phlow::limiter::redis::ValueReader;
  ValueReader reader;  // as the connection's Pipeline reads
  bool broken = false;
  while (!bytes.empty() && !broken) {
    const std::size_t n = std::min(step, bytes.size());
    if (!reader.feed(bytes.data(), n)) break;
    bytes.remove_prefix(n);
    while (true) {
      Value value;
      const ValueReader::Next next = reader.next(value);
      if (next == ValueReader::Next::error) {
        broken = true;
        break;
      }
      if (next == ValueReader::Next::none) break;
      interpret(value, descriptors);
    }
    broken = broken || reader.overfull();
  }
}

// encode_check()'s bytes are one RESP array of bulk strings: 3 + n keys + 1 (time)
// + 2 (count, mode) + n limit strings ("algorithm requests window_ms burst shadow").
// The mode is "1"/"0", followed by one word per limit (its cost, or a concurrency
// limit's slot id) when some limit weighs more than 1 or takes a slot.
void check_encoding(std::span<const Descriptor> descriptors, bool consume) {
  std::string command;
  namespace redis = phlow::limiter::redis;
  redis::encode_check(command, redis::ScriptForm::sha, std::string(40, 'a'), descriptors,
                      consume ? redis::Consume::yes : redis::Consume::no);
  redis::ValueReader reader;
  FUZZ_ASSERT(reader.feed(command.data(), command.size()));
  Value v;
  FUZZ_ASSERT(reader.next(v) == redis::ValueReader::Next::value);
  Value rest;
  FUZZ_ASSERT(reader.next(rest) == redis::ValueReader::Next::none);
  const std::size_t n = descriptors.size();
  FUZZ_ASSERT(v.type == Value::Type::array && v.elements.size() == 6 + 2 * n);
  FUZZ_ASSERT(v.elements[0].str == "EVALSHA" && v.elements[2].str == std::to_string(n));
  for (std::size_t i = 0; i < n; ++i) FUZZ_ASSERT(v.elements[3 + i].str == descriptors[i].key);
  FUZZ_ASSERT(v.elements[3 + n].str.empty() && v.elements[4 + n].str == std::to_string(n));
  std::string mode = consume ? "1" : "0";
  bool words = false;
  for (const Descriptor& d : descriptors) {
    words = words || d.cost != 1 || d.limit->algorithm == phlow::limiter::Algorithm::concurrency;
  }
  for (std::size_t i = 0; words && i < n; ++i) {
    const Descriptor& d = descriptors[i];
    mode += " " + (d.limit->algorithm == phlow::limiter::Algorithm::concurrency ? std::string(d.slot)
                                                                                 : std::to_string(d.cost));
  }
  FUZZ_ASSERT(v.elements[5 + n].str == mode);
  for (std::size_t i = 0; i < n; ++i) {
    const phlow::limiter::Limit& l = *descriptors[i].limit;
    FUZZ_ASSERT(v.elements[6 + n + i].str ==
                std::to_string(static_cast<int>(l.algorithm)) + " " + std::to_string(l.requests) + " " +
                    std::to_string(l.window_ms) + " " + std::to_string(l.burst) + " " + (l.shadow ? "1" : "0"));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Checks checks;
  if (size < 2) return 0;
  checks.set_costs((data[0] & 0x40) != 0);
  const std::size_t n = (data[0] & 0x1F) % (kMaxLimitsPerCheck + 1);
  const bool consume = (data[0] & 0x80) != 0;
  const std::size_t step = static_cast<std::size_t>(data[1]) + 1;
  const std::span<const Descriptor> descriptors(checks.descriptors.data(), n);
  check_encoding(descriptors, consume);
  read_replies(std::string_view(reinterpret_cast<const char*>(data + 2), size - 2), step, descriptors);
  return 0;
}
