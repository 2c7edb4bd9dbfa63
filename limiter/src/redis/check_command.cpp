#include "redis/check_command.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <atomic>
#include <chrono>

#include "redis/check_script.hpp"

namespace phlow::limiter::redis {

namespace {

// The i-th descriptor of a call: descriptors[pick[i]], or descriptors[i] without a pick.
const Descriptor& nth(std::span<const Descriptor> descriptors, std::span<const std::uint8_t> pick,
                      std::size_t i) {
  return pick.empty() ? descriptors[i] : descriptors[pick[i]];
}

// KEYS[i] the keys; ARGV: per key its algorithm, window_ms, what the check added (the
// sliding_log entry's stamp, the sliding_window index, the token_bucket interval in
// us), the units it weighed, and a concurrency limit's slot id.
constexpr std::string_view kRefundScript = R"lua(
local function int(x) return string.format('%.0f', x) end
for i, key in ipairs(KEYS) do
  local b = (i - 1) * 5
  local algo, added, units = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  if algo == 0 then
    if redis.call('ZREM', key, ARGV[b + 3] .. ':' .. ARGV[b + 4]) == 1 and redis.call('ZSCORE', key, '#') then
      redis.call('ZINCRBY', key, units, '#')
    end
  elseif algo == 1 then
    local v = redis.call('HMGET', key, 'w', 'c', 'p')
    local w, c, p = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
    if w == added then redis.call('HSET', key, 'c', int(math.max(c - units, 0)))
    elseif w == added + 1 then redis.call('HSET', key, 'p', int(math.max(p - units, 0))) end
  elseif algo == 3 then
    redis.call('ZREM', key, ARGV[b + 5])
  else
    local tat = tonumber(redis.call('GET', key))
    local ttl = redis.call('PTTL', key)
    if tat and ttl > 0 then redis.call('SET', key, int(tat - added), 'PX', ttl) end
  end
end
return 1
)lua";

// A limit as the check script reads it: "algorithm requests window_ms burst shadow".
std::string_view limit_params(const Limit& l, std::array<char, 128>& buffer) {
  char* at = buffer.data();
  char* const end = buffer.data() + buffer.size();
  for (const std::int64_t v : {static_cast<std::int64_t>(l.algorithm), l.requests, l.window_ms,
                               static_cast<std::int64_t>(l.burst), std::int64_t{l.shadow ? 1 : 0}}) {
    if (at != buffer.data()) *at++ = ' ';
    at = std::to_chars(at, end, v).ptr;
  }
  return {buffer.data(), static_cast<std::size_t>(at - buffer.data())};
}

// A check's mode argument: "1", or when a limit weighs other than 1 or takes a slot,
// one word per limit: "1 5 1 gw.0.2a" (its cost, or a concurrency limit's slot id; "_"
// for none).
constexpr std::size_t kMaxWord = std::max<std::size_t>(kMaxSlotId, 20);  // a slot id or an int64
using ModeBuffer = std::array<char, 2 + kMaxLimitsPerCheck * (kMaxWord + 1)>;
std::string_view check_mode(const CheckArgs& c, ModeBuffer& buffer) {
  buffer[0] = static_cast<char>(c.consume);
  bool words = false;
  for (std::size_t i = 0; i < c.limits(); ++i) {
    const Descriptor& d = nth(c.descriptors, c.pick, i);
    words = words || d.cost != 1 || d.limit->algorithm == Algorithm::concurrency;
  }
  if (!words) return {buffer.data(), 1};
  char* at = buffer.data() + 1;
  char* const end = buffer.data() + buffer.size();
  for (std::size_t i = 0; i < c.limits() && i < kMaxLimitsPerCheck; ++i) {
    const Descriptor& d = nth(c.descriptors, c.pick, i);
    *at++ = ' ';
    if (d.limit->algorithm == Algorithm::concurrency) {
      const std::string_view slot = d.slot.empty() ? std::string_view("_") : d.slot.substr(0, kMaxWord);
      at = std::copy(slot.begin(), slot.end(), at);
    } else {
      at = std::to_chars(at, end, std::max<std::int64_t>(d.cost, 0)).ptr;
    }
  }
  return {buffer.data(), static_cast<std::size_t>(at - buffer.data())};
}

// Redis errors (-OOM, -LOADING, ...) come per check; say so at most every 10 s.
void log_server_error(const std::string& message) {
  static std::atomic<std::int64_t> last_ms{0};
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t last = last_ms.load();
  if (now_ms - last < 10'000 || !last_ms.compare_exchange_strong(last, now_ms)) return;
  spdlog::warn("Redis answered a limit check with an error: {}", message.substr(0, 200));
}

}  // namespace

StoreError read_check_reply(const Value& v, std::span<const Descriptor> descriptors, Decision& out,
                            Consume consume, std::span<const std::uint8_t> pick,
                            std::int64_t* added) {
  const CheckArgs args{descriptors, consume, pick};
  const StoreError e = validate_checks_reply(v, 1 + args.reply_size());
  if (e == StoreError::none) read_check_at(v, 1, args, out, added);
  return e;
}

std::optional<ScriptForm> retry_form(ScriptForm form, const Value& error) {
  if (form == ScriptForm::function &&
      (error.str.starts_with("ERR Function not found") || error.str.starts_with("NOPERM"))) {
    return ScriptForm::sha;
  }
  if (form == ScriptForm::sha && error.str.starts_with("NOSCRIPT")) return ScriptForm::source;
  return std::nullopt;
}

void encode_checks(std::string& out, ScriptForm form, std::string_view sha,
                   std::span<const CheckArgs> checks) {
  std::size_t keys = 0;
  for (const CheckArgs& c : checks) keys += c.limits();
  std::array<char, 128> params;
  ModeBuffer mode;
  out.clear();
  CommandWriter w(out, 3 + keys + 1 + 2 * checks.size() + keys);
  switch (form) {
    case ScriptForm::function: w.arg("FCALL").arg(kCheckFunction); break;
    case ScriptForm::sha: w.arg("EVALSHA").arg(sha); break;
    case ScriptForm::source: w.arg("EVAL").arg(kCheckScript); break;
  }
  w.arg(static_cast<std::int64_t>(keys));
  for (const CheckArgs& c : checks) {
    for (std::size_t i = 0; i < c.limits(); ++i) w.arg(nth(c.descriptors, c.pick, i).key);
  }
  w.arg("");
  for (const CheckArgs& c : checks) {
    w.arg(static_cast<std::int64_t>(c.limits())).arg(check_mode(c, mode));
    for (std::size_t i = 0; i < c.limits(); ++i) {
      w.arg(limit_params(*nth(c.descriptors, c.pick, i).limit, params));
    }
  }
}

void encode_check(std::string& out, ScriptForm form, std::string_view sha,
                  std::span<const Descriptor> descriptors, Consume consume,
                  std::span<const std::uint8_t> pick) {
  const CheckArgs one{descriptors, consume, pick};
  encode_checks(out, form, sha, std::span(&one, 1));
}

StoreError validate_checks_reply(const Value& v, std::size_t expected) {
  if (v.is_error()) {
    log_server_error(v.str);
    return StoreError::server_error;
  }
  if (v.type != Value::Type::array || v.elements.size() != expected) return StoreError::bad_reply;
  for (const Value& e : v.elements) {
    if (e.type != Value::Type::integer) return StoreError::bad_reply;
  }
  return StoreError::none;
}

std::size_t read_check_at(const Value& v, std::size_t offset, const CheckArgs& args, Decision& out,
                          std::int64_t* added) {
  const std::size_t n = args.limits();
  out.source = DecisionSource::redis;
  out.count = args.descriptors.size();
  out.now_ms = std::max(out.now_ms, v.elements[0].integer);
  for (std::size_t i = 0; i < n; ++i) {
    const Value* e = &v.elements[offset + 4 * i];
    const std::size_t at = args.pick.empty() ? i : args.pick[i];
    LimitResult& r = out.results[at];
    r.allowed = e[0].integer == 1;
    r.remaining = e[1].integer;
    r.reset_ms = e[2].integer;
    r.retry_after_ms = e[3].integer;
    r.limit = args.descriptors[at].limit->quota();
    r.shadow = args.descriptors[at].limit->shadow;
  }
  offset += 4 * n;
  if (args.consume == Consume::report) {
    for (std::size_t i = 0; i < n; ++i) {
      if (added != nullptr) added[i] = v.elements[offset + i].integer;
    }
    offset += n;
  }
  if (args.pick.empty()) summarize(out);
  return offset;
}

bool parse_check(const Value& v, std::span<const Descriptor> descriptors, Decision& out,
                 Consume consume, std::span<const std::uint8_t> pick, std::int64_t* added) {
  const CheckArgs args{descriptors, consume, pick};
  if (v.is_error() || validate_checks_reply(v, 1 + args.reply_size()) != StoreError::none) return false;
  read_check_at(v, 1, args, out, added);
  return true;
}

void encode_release(std::string& out, std::string_view key, std::string_view slot) {
  out.clear();
  CommandWriter(out, 3).arg("ZREM").arg(key).arg(slot.substr(0, kMaxSlotId));
}

void encode_renew(std::string& out, std::string_view key, std::string_view slot, std::int64_t window_ms) {
  // The lease runs `window_ms` from the server's now again - if the slot still exists
  // (XX): a slot whose lease ended and was removed is not brought back.
  constexpr std::string_view kRenewScript = R"lua(
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[2])
local kept = redis.call('ZADD', KEYS[1], 'XX', 'CH', string.format('%d', until_ms), ARGV[1])
if kept == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return kept
)lua";
  out.clear();
  CommandWriter(out, 6).arg("EVAL").arg(kRenewScript).arg(std::int64_t{1}).arg(key)
      .arg(slot.substr(0, kMaxSlotId)).arg(window_ms);
}

void encode_refund(std::string& out, std::span<const Descriptor> descriptors,
                   std::span<const std::uint8_t> pick, const std::int64_t* added) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < pick.size(); ++i) n += added[i] >= 0 ? 1 : 0;
  out.clear();
  CommandWriter w(out, 3 + n + 5 * n);
  w.arg("EVAL").arg(kRefundScript).arg(static_cast<std::int64_t>(n));
  for (std::size_t i = 0; i < pick.size(); ++i) {
    if (added[i] >= 0) w.arg(descriptors[pick[i]].key);
  }
  for (std::size_t i = 0; i < pick.size(); ++i) {
    if (added[i] < 0) continue;
    const Descriptor& d = descriptors[pick[i]];
    const Limit& l = *d.limit;
    w.arg(static_cast<std::int64_t>(l.algorithm)).arg(l.window_ms).arg(added[i]).arg(d.cost);
    w.arg(d.slot.substr(0, kMaxWord));
  }
}

}  // namespace phlow::limiter::redis
