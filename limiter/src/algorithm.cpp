#include "limiter/algorithm.hpp"

#include <algorithm>
#include <cassert>
#include <climits>
#include <iterator>

namespace phlow::limiter {
namespace {

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return -floor_div(-a, b); }

// --- sliding_log: units per ms; an entry at t counts while now - window < t.
LimitResult evaluate_log(const Limit& limit, LimitState& s, std::int64_t now_ms, std::int64_t cost) {
  while (!s.log.empty() && s.log.front().at_ms <= now_ms - limit.window_ms) {
    s.logged -= s.log.front().units;
    s.log.pop_front();
  }
  LimitResult r;
  if (s.logged + cost <= limit.requests) {
    r.remaining = limit.requests - s.logged - cost;
    r.reset_ms = now_ms + limit.window_ms;
    return r;
  }
  r.allowed = false;
  // The request fits once the oldest entries holding `need` units have left.
  const std::int64_t need = s.logged + cost - limit.requests;
  std::int64_t freed = 0;
  r.retry_after_ms = limit.window_ms;
  for (const LogEntry& e : s.log) {
    freed += e.units;
    if (freed >= need) {
      r.retry_after_ms = e.at_ms + limit.window_ms - now_ms;
      break;
    }
  }
  r.reset_ms = now_ms + r.retry_after_ms;
  return r;
}

// --- sliding_window: the previous fixed window weighs by how much of it still
// overlaps the sliding window. Scaled by window_ms to stay in integers.
void roll_window(const Limit& limit, LimitState& s, std::int64_t now_ms) {
  const std::int64_t current_window = floor_div(now_ms, limit.window_ms);
  if (s.window == current_window) return;
  s.previous = (s.window == current_window - 1) ? s.current : 0;
  s.current = 0;
  s.window = current_window;
}

// The most units one fixed window counts (see consume()).
std::int64_t window_units_cap(const Limit& limit) { return (std::int64_t{1} << 52) / limit.window_ms; }

LimitResult evaluate_window(const Limit& limit, LimitState& s, std::int64_t now_ms, std::int64_t cost) {
  roll_window(limit, s, now_ms);
  const std::int64_t w = limit.window_ms;
  const std::int64_t n = limit.requests;
  const std::int64_t elapsed = now_ms - s.window * w;
  const std::int64_t weighted = s.previous * (w - elapsed) + s.current * w;
  LimitResult r;
  if (weighted + cost * w <= n * w) {
    r.remaining = (n * w - weighted - cost * w) / w;
    r.reset_ms = (s.window + 2) * w;
    return r;
  }
  r.allowed = false;
  if (s.current + cost <= n) {
    // Wait until the previous window's weight has decayed enough (previous > 0 here).
    const std::int64_t needed = w - (n - cost - s.current) * w / s.previous;
    r.retry_after_ms = needed - elapsed;
  } else {
    // Wait for the next window, then for the current count (as `previous`) to decay
    // (current > 0 here, as cost <= n).
    const std::int64_t needed = w - (n - cost) * w / s.current;
    r.retry_after_ms = (w - elapsed) + needed;
  }
  r.reset_ms = now_ms + r.retry_after_ms;
  return r;
}

// --- token_bucket (GCRA) in microseconds. The emission interval rounds up, so the
// rate never exceeds requests/window.
std::int64_t emission_us(const Limit& limit) {
  return ceil_div(limit.window_ms * 1000, limit.requests);
}

// The furthest ahead a bucket's theoretical arrival time may be pushed.
constexpr std::int64_t kBucketDebtCapUs = std::int64_t{1} << 51;

LimitResult evaluate_bucket(const Limit& limit, LimitState& s, std::int64_t now_us, std::int64_t cost) {
  const std::int64_t t = emission_us(limit);
  const std::int64_t tat = std::max(s.tat_us, now_us);
  const std::int64_t new_tat = tat + cost * t;
  const std::int64_t allow_at = new_tat - limit.effective_burst() * t;
  LimitResult r;
  if (now_us >= allow_at) {
    r.remaining = (now_us - allow_at) / t;
    r.reset_ms = ceil_div(new_tat, 1000);
    return r;
  }
  r.allowed = false;
  r.retry_after_ms = ceil_div(allow_at - now_us, 1000);
  r.reset_ms = floor_div(now_us, 1000) + r.retry_after_ms;
  return r;
}

}  // namespace

LimitResult evaluate(const Limit& limit, LimitState& state, std::int64_t now_us, std::int64_t cost) {
  const std::int64_t now_ms = floor_div(now_us, 1000);
  LimitResult r;
  if (cost > limit.quota()) {
    // Never fits (a share of the limit while Redis is down, or a library caller).
    r.allowed = false;
    r.retry_after_ms = limit.window_ms;
    r.reset_ms = now_ms + limit.window_ms;
  } else {
    switch (limit.algorithm) {
      case Algorithm::sliding_log: r = evaluate_log(limit, state, now_ms, cost); break;
      case Algorithm::sliding_window: r = evaluate_window(limit, state, now_ms, cost); break;
      case Algorithm::token_bucket: r = evaluate_bucket(limit, state, now_us, cost); break;
      case Algorithm::concurrency:
        r.allowed = state.inflight + cost <= limit.requests;
        r.remaining = r.allowed ? limit.requests - state.inflight - cost : 0;
        r.retry_after_ms = r.allowed ? 0 : kConcurrencyRetryMs;
        r.reset_ms = now_ms + kConcurrencyRetryMs;
        break;
    }
  }
  r.limit = limit.quota();
  r.shadow = limit.shadow;
  return r;
}

void consume(const Limit& limit, LimitState& state, std::int64_t now_us, std::int64_t units) {
  if (units <= 0) return;
  switch (limit.algorithm) {
    case Algorithm::sliding_log: {
      const std::int64_t now_ms = floor_div(now_us, 1000);
      if (!state.log.empty() && state.log.back().at_ms == now_ms) {
        state.log.back().units += units;
      } else {
        state.log.push_back({now_ms, units});
      }
      state.logged += units;
      break;
    }
    case Algorithm::sliding_window:
      roll_window(limit, state, floor_div(now_us, 1000));
      state.current = std::min(state.current + units, window_units_cap(limit));
      break;
    case Algorithm::token_bucket:
      state.tat_us = std::min(std::max(state.tat_us, now_us) + units * emission_us(limit),
                              now_us + kBucketDebtCapUs);
      break;
    case Algorithm::concurrency:
      state.inflight += units;
      break;
  }
}

std::int64_t expires_at_ms(const Limit& limit, const LimitState& state) {
  switch (limit.algorithm) {
    case Algorithm::sliding_log:
      return state.log.empty() ? 0 : state.log.back().at_ms + limit.window_ms;
    case Algorithm::sliding_window:
      return (state.window + 2) * limit.window_ms;
    case Algorithm::token_bucket:
      return ceil_div(state.tat_us, 1000);
    case Algorithm::concurrency:  // in this process: held until given back
      return state.inflight > 0 ? INT64_MAX : 0;
  }
  return 0;
}

void merge_conservatively(const Limit& limit, LimitState& into, const LimitState& from) {
  switch (limit.algorithm) {
    case Algorithm::sliding_log: {
      std::deque<LogEntry> merged;
      std::merge(into.log.begin(), into.log.end(), from.log.begin(), from.log.end(),
                 std::back_inserter(merged),
                 [](const LogEntry& a, const LogEntry& b) { return a.at_ms < b.at_ms; });
      std::int64_t total = into.logged + from.logged;
      // Keeps the newest entries holding at least `requests` units.
      while (!merged.empty() && total - merged.front().units >= limit.requests) {
        total -= merged.front().units;
        merged.pop_front();
      }
      into.log = std::move(merged);
      into.logged = total;
      break;
    }
    case Algorithm::sliding_window: {
      LimitState other = from;
      const std::int64_t now_window = std::max(into.window, other.window);
      const std::int64_t now_ms = now_window * limit.window_ms;
      roll_window(limit, into, now_ms);
      roll_window(limit, other, now_ms);
      into.current = std::max(into.current, other.current);
      into.previous = std::max(into.previous, other.previous);
      break;
    }
    case Algorithm::token_bucket:
      into.tat_us = std::max(into.tat_us, from.tat_us);
      break;
    case Algorithm::concurrency:
      into.inflight = std::max(into.inflight, from.inflight);
      break;
  }
}

}  // namespace phlow::limiter
