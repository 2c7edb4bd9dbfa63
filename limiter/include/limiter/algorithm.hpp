#pragma once
// The three algorithms as pure functions over a state and a time. The Lua script in
// src/redis/check.lua implements the same arithmetic; tests/limiter/semantics_test
// runs one table of cases against both.

#include <cstdint>
#include <deque>

#include "limiter/decision.hpp"
#include "limiter/limit.hpp"

namespace phlow::limiter {

struct LimitState {
  std::deque<std::int64_t> log;   // sliding_log: ms timestamps, oldest first
  std::int64_t window = 0;        // sliding_window: index of the current window
  std::int64_t current = 0;       //   requests counted in it
  std::int64_t previous = 0;      //   requests counted in the one before
  std::int64_t tat_us = 0;        // token_bucket: theoretical arrival time
};

// Decides whether one more request fits, without consuming it. May drop state that
// has left the window. `remaining` and `reset_ms` describe the state after the
// request would be consumed.
LimitResult evaluate(const Limit& limit, LimitState& state, std::int64_t now_us);

// Counts one request. Call only after evaluate() allowed it at the same time.
void consume(const Limit& limit, LimitState& state, std::int64_t now_us);

// Unix ms after which `state` constrains nothing and may be forgotten.
std::int64_t expires_at_ms(const Limit& limit, const LimitState& state);

// Folds `from` into `into` so that `into` allows no more than either did.
void merge_conservatively(const Limit& limit, LimitState& into, const LimitState& from);

}  // namespace phlow::limiter
