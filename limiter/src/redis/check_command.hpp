#pragma once
// The check script's command and reply, sans I/O: what a store sends for one check
// and how it reads the answer, and the refund of what a check consumed. Kept apart so
// the RESP fuzzer drives the same code.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "limiter/decision.hpp"
#include "limiter/descriptor.hpp"
#include "redis/resp.hpp"

namespace phlow::limiter::redis {

// Whether a check consumes when allowed; `report` also returns what each limit added
// (so that a refund can take exactly that back: Cluster, checks across slots).
enum class Consume : char { no = '0', yes = '1', report = '2' };

// Writes EVALSHA (or EVAL, when `by_sha` is false, after NOSCRIPT) of the check script
// into `out`, for `descriptors` - or, when `pick` is not empty, for
// descriptors[pick[0]], descriptors[pick[1]], ... only.
void encode_check(std::string& out, bool by_sha, std::string_view sha_or_script,
                  std::span<const Descriptor> descriptors, Consume consume,
                  std::span<const std::uint8_t> pick = {});

// Turns the script's reply into a decision; false when the reply breaks its contract
// (then `out` is unspecified). `descriptors`, `consume` and `pick` as encoded. With no
// pick, `out` is the whole decision (summarized); with one, only out.results at the
// picked positions are written (the caller summarizes when every part is in). With
// Consume::report, added[i] is what the i-th picked limit added (-1: nothing).
bool parse_check(const Value& v, std::span<const Descriptor> descriptors, Decision& out,
                 Consume consume = Consume::yes, std::span<const std::uint8_t> pick = {},
                 std::int64_t* added = nullptr);

// Reads a check's reply as parse_check does, and says how it failed: server_error for
// an error reply (-OOM, -TRYAGAIN, ...: logged at most every 10 s), bad_reply for one
// that breaks the contract, none when `out` holds the answer.
StoreError read_check_reply(const Value& v, std::span<const Descriptor> descriptors, Decision& out,
                            Consume consume = Consume::yes, std::span<const std::uint8_t> pick = {},
                            std::int64_t* added = nullptr);

// Writes the EVAL of the refund script that takes back what a check added:
// added[i] for descriptors[pick[i]] (entries of -1 are skipped).
void encode_refund(std::string& out, std::span<const Descriptor> descriptors,
                   std::span<const std::uint8_t> pick, const std::int64_t* added);

}  // namespace phlow::limiter::redis
