#pragma once
// The check script's command and reply, sans I/O: what a store sends for one check
// and how it reads the answer, and the refund of what a check consumed. Kept apart so
// the RESP fuzzer drives the same code.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "limiter/async_store.hpp"
#include "limiter/decision.hpp"
#include "limiter/descriptor.hpp"
#include "redis/resp.hpp"

namespace phlow::limiter::redis {

// Whether a check consumes when allowed; `report` also returns what each limit added
// (so that a refund can take exactly that back: Cluster, checks across slots); `debit`
// consumes each descriptor's cost unconditionally (cost_from_response).
enum class Consume : char { no = '0', yes = '1', report = '2', debit = '3' };

inline Consume consume_of(CheckMode mode) {
  return mode == CheckMode::peek ? Consume::no : mode == CheckMode::debit ? Consume::debit : Consume::yes;
}

// One check of a script call: `descriptors` - or, when `pick` is not empty,
// descriptors[pick[0]], descriptors[pick[1]], ... only.
struct CheckArgs {
  std::span<const Descriptor> descriptors;
  Consume consume = Consume::yes;
  std::span<const std::uint8_t> pick = {};

  std::size_t limits() const { return pick.empty() ? descriptors.size() : pick.size(); }
  // How many integers the script answers for it.
  std::size_t reply_size() const { return limits() * (consume == Consume::report ? 5 : 4); }
};

// How a call names the check code: FCALL of its function (Redis 7.0 and newer, once the
// handshake loaded the library), EVALSHA of the script `sha`, or EVAL of its source.
enum class ScriptForm { function, sha, source };

// The form to send a call again in after its error reply `error`: EVALSHA when the node
// has no function (FUNCTION FLUSH; an ACL that refuses FCALL), EVAL after NOSCRIPT (the
// script cache was flushed); none for any other error.
std::optional<ScriptForm> retry_form(ScriptForm form, const Value& error);

// Writes the call of the check code in `form` into `out` (`sha`: the script's, for
// ScriptForm::sha), deciding `checks` one after the other in one call (a batch).
void encode_checks(std::string& out, ScriptForm form, std::string_view sha,
                   std::span<const CheckArgs> checks);

// The one-check form of encode_checks.
void encode_check(std::string& out, ScriptForm form, std::string_view sha,
                  std::span<const Descriptor> descriptors, Consume consume,
                  std::span<const std::uint8_t> pick = {});

// A batch's reply is one array of integers, `expected` long (1 + the checks'
// reply_size()). Server_error (logged at most every 10 s) for an error reply,
// bad_reply for any other shape, none when every check's answer can be read with
// read_check_at().
StoreError validate_checks_reply(const Value& v, std::size_t expected);

// Reads the answer of the check `args` whose integers start at v.elements[offset]
// (the first check's at 1) into `out`, as parse_check does; returns the offset of the
// next check's. The reply must have passed validate_checks_reply().
std::size_t read_check_at(const Value& v, std::size_t offset, const CheckArgs& args, Decision& out,
                          std::int64_t* added = nullptr);

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

// A concurrency slot: ZREM of its id (release), or the EVAL that extends its lease to
// `window_ms` from the server's now if it still exists (renew; answers 1 when it did).
void encode_release(std::string& out, std::string_view key, std::string_view slot);
void encode_renew(std::string& out, std::string_view key, std::string_view slot, std::int64_t window_ms);

// Writes the EVAL of the refund script that takes back what a check added:
// added[i] for descriptors[pick[i]] (entries of -1 are skipped).
void encode_refund(std::string& out, std::span<const Descriptor> descriptors,
                   std::span<const std::uint8_t> pick, const std::int64_t* added);

}  // namespace phlow::limiter::redis
