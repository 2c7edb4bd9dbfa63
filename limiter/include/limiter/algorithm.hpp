#pragma once
// The three algorithms as pure functions over a state and a time. The Lua script in
// src/redis/check.lua implements the same arithmetic; tests/limiter/semantics_test
// runs one table of cases against both.

#include <cstdint>
#include <deque>

#include "limiter/decision.hpp"
#include "limiter/limit.hpp"

namespace phlow::limiter {

// sliding_log: the units counted at one millisecond.
struct LogEntry {
  std::int64_t at_ms = 0;
  std::int64_t units = 0;
};

struct LimitState {
  std::deque<LogEntry> log;       // sliding_log: oldest first, one entry per ms
  std::int64_t logged = 0;        //   the units in `log`
  std::int64_t window = 0;        // sliding_window: index of the current window
  std::int64_t current = 0;       //   requests counted in it
  std::int64_t previous = 0;      //   requests counted in the one before
  std::int64_t tat_us = 0;        // token_bucket: theoretical arrival time
  std::int64_t inflight = 0;      // concurrency: slots taken and not given back
};

// A concurrency limit's answers carry no time of their own: a rejected request may
// retry in this long (Retry-After: 1), and the reset is that far ahead.
inline constexpr std::int64_t kConcurrencyRetryMs = 1000;

// Gives back one slot of a concurrency limit.
inline void release_slot(LimitState& state) {
  if (state.inflight > 0) --state.inflight;
}

// Decides whether one more request weighing `cost` units fits, without consuming it.
// May drop state that has left the window. `remaining` and `reset_ms` describe the
// state after the request would be consumed. A cost over limit.quota() never fits:
// rejected with a retry of one window.
LimitResult evaluate(const Limit& limit, LimitState& state, std::int64_t now_us,
                     std::int64_t cost = 1);

// Counts `units` (a request's cost after evaluate() allowed it at the same time, or
// what a response used: then even past the limit). Bounded so that the arithmetic
// stays exact in Lua's doubles: a sliding_window counts at most 2^52 / window_ms units
// per window, a token_bucket owes at most 2^51 us (71 years) ahead.
void consume(const Limit& limit, LimitState& state, std::int64_t now_us, std::int64_t units = 1);

// Unix ms after which `state` constrains nothing and may be forgotten.
std::int64_t expires_at_ms(const Limit& limit, const LimitState& state);

// Folds `from` into `into` so that `into` allows no more than either did.
void merge_conservatively(const Limit& limit, LimitState& into, const LimitState& from);

}  // namespace phlow::limiter
