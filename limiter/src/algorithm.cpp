#include "limiter/algorithm.hpp"

#include <algorithm>
#include <cassert>
#include <iterator>

namespace phlow::limiter {
namespace {

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return -floor_div(-a, b); }

// --- sliding_log: timestamps in ms; an entry at t counts while now - window < t.
LimitResult evaluate_log(const Limit& limit, LimitState& s, std::int64_t now_ms) {
  while (!s.log.empty() && s.log.front() <= now_ms - limit.window_ms) s.log.pop_front();
  const auto count = static_cast<std::int64_t>(s.log.size());
  LimitResult r;
  if (count < limit.requests) {
    r.remaining = limit.requests - count - 1;
    r.reset_ms = now_ms + limit.window_ms;
    return r;
  }
  r.allowed = false;
  const std::int64_t oldest_to_leave = s.log[static_cast<std::size_t>(count - limit.requests)];
  r.retry_after_ms = oldest_to_leave + limit.window_ms - now_ms;
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

LimitResult evaluate_window(const Limit& limit, LimitState& s, std::int64_t now_ms) {
  roll_window(limit, s, now_ms);
  const std::int64_t w = limit.window_ms;
  const std::int64_t n = limit.requests;
  const std::int64_t elapsed = now_ms - s.window * w;
  const std::int64_t weighted = s.previous * (w - elapsed) + s.current * w;
  LimitResult r;
  if (weighted + w <= n * w) {
    r.remaining = (n * w - weighted - w) / w;
    r.reset_ms = (s.window + 2) * w;
    return r;
  }
  r.allowed = false;
  if (s.current + 1 <= n) {
    // Wait until the previous window's weight has decayed enough.
    const std::int64_t needed = w - (n - 1 - s.current) * w / s.previous;
    r.retry_after_ms = needed - elapsed;
  } else {
    // Wait for the next window, then for the current count (as `previous`) to decay.
    const std::int64_t needed = w - (n - 1) * w / s.current;
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

LimitResult evaluate_bucket(const Limit& limit, LimitState& s, std::int64_t now_us) {
  const std::int64_t t = emission_us(limit);
  const std::int64_t tat = std::max(s.tat_us, now_us);
  const std::int64_t new_tat = tat + t;
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

LimitResult evaluate(const Limit& limit, LimitState& state, std::int64_t now_us) {
  const std::int64_t now_ms = floor_div(now_us, 1000);
  LimitResult r;
  switch (limit.algorithm) {
    case Algorithm::sliding_log: r = evaluate_log(limit, state, now_ms); break;
    case Algorithm::sliding_window: r = evaluate_window(limit, state, now_ms); break;
    case Algorithm::token_bucket: r = evaluate_bucket(limit, state, now_us); break;
  }
  r.limit = limit.quota();
  r.shadow = limit.shadow;
  return r;
}

void consume(const Limit& limit, LimitState& state, std::int64_t now_us) {
  switch (limit.algorithm) {
    case Algorithm::sliding_log:
      state.log.push_back(floor_div(now_us, 1000));
      break;
    case Algorithm::sliding_window:
      roll_window(limit, state, floor_div(now_us, 1000));
      ++state.current;
      break;
    case Algorithm::token_bucket:
      state.tat_us = std::max(state.tat_us, now_us) + emission_us(limit);
      break;
  }
}

std::int64_t expires_at_ms(const Limit& limit, const LimitState& state) {
  switch (limit.algorithm) {
    case Algorithm::sliding_log:
      return state.log.empty() ? 0 : state.log.back() + limit.window_ms;
    case Algorithm::sliding_window:
      return (state.window + 2) * limit.window_ms;
    case Algorithm::token_bucket:
      return ceil_div(state.tat_us, 1000);
  }
  return 0;
}

void merge_conservatively(const Limit& limit, LimitState& into, const LimitState& from) {
  switch (limit.algorithm) {
    case Algorithm::sliding_log: {
      std::deque<std::int64_t> merged;
      std::merge(into.log.begin(), into.log.end(), from.log.begin(), from.log.end(),
                 std::back_inserter(merged));
      while (static_cast<std::int64_t>(merged.size()) > limit.requests) merged.pop_front();
      into.log = std::move(merged);
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
  }
}

}  // namespace phlow::limiter
