#include "limiter/redis_health.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace phlow::limiter {

std::string_view to_string(RedisState state) {
  switch (state) {
    case RedisState::disabled: return "disabled";
    case RedisState::connecting: return "connecting";
    case RedisState::connected: return "connected";
    case RedisState::fallback: return "fallback";
  }
  return "unknown";
}

RedisHealth::RedisHealth(std::string endpoint, bool log_transitions)
    : endpoint_(std::move(endpoint)), log_transitions_(log_transitions) {}

int RedisHealth::add_connection() {
  std::lock_guard lock(mutex_);
  up_.push_back(false);
  retired_.push_back(false);
  endpoint_of_.emplace_back();
  // Not every connection is up any more: wait_settled() waits for this one too.
  if (state_.load() == RedisState::connected) state_.store(RedisState::connecting);
  return static_cast<int>(up_.size()) - 1;
}

RedisState RedisHealth::wait_settled(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [this] { return state_.load() != RedisState::connecting; });
  return state_.load();
}

std::string RedisHealth::last_failure() const {
  std::lock_guard lock(mutex_);
  return last_failure_;
}

void RedisHealth::retire_connection(int connection) {
  std::lock_guard lock(mutex_);
  retired_.at(static_cast<std::size_t>(connection)) = true;
  update_state(true, {});
}

void RedisHealth::note_master_change(const std::string& from, const std::string& to) {
  std::lock_guard lock(mutex_);
  count_master_change(from, to);
}

// Counts `from` -> `to` once for the process, however many connections (workers)
// make the same move.
void RedisHealth::count_master_change(const std::string& from, const std::string& to) {
  if (from.empty() || from == to) return;
  if (replaced_.insert(from).second) {
    ++master_changes_;
    if (log_transitions_) spdlog::warn("Redis master changed: now {} (was {})", to, from);
  }
  replaced_.erase(to);
}

void RedisHealth::report(int connection, bool up, const std::string& detail) {
  std::lock_guard lock(mutex_);
  const auto id = static_cast<std::size_t>(connection);
  if (retired_.at(id)) return;
  up_.at(id) = up;
  if (!up) {
    last_failure_ = detail;
  } else {
    count_master_change(endpoint_of_.at(id), detail);
    endpoint_of_.at(id) = detail;
  }
  update_state(up, detail);
}

void RedisHealth::update_state(bool up, const std::string& detail) {
  const RedisState before = state_.load();
  RedisState after = before;
  bool all_up = true;
  for (std::size_t i = 0; i < up_.size(); ++i) all_up = all_up && (up_[i] || retired_[i]);
  if (!up) {
    after = RedisState::fallback;
  } else if (all_up) {
    after = RedisState::connected;
  }
  if (after == before) return;
  state_.store(after);
  changed_.notify_all();
  if (!log_transitions_) return;
  if (after == RedisState::fallback) {
    ++to_fallback_;
    spdlog::warn("{}", kFallbackMessage);
    spdlog::warn("Redis at {}: {}", endpoint_, detail);
  } else if (before == RedisState::fallback) {
    ++to_connected_;
    spdlog::info("Reconnected to Redis at {}, leaving in-memory fallback", endpoint_);
  } else if (!announced_) {  // once: a connection added later connects silently
    announced_ = true;
    spdlog::info("Connected to Redis at {}", endpoint_);
  }
}

}  // namespace phlow::limiter
