#include "limiter/rejected_keys.hpp"

#include <algorithm>

namespace phlow::limiter {

namespace {

// The algorithms in which only consuming moves the retry time, and only later.
bool exact_when_cached(const Limit& limit) {
  return limit.algorithm == Algorithm::sliding_log || limit.algorithm == Algorithm::token_bucket;
}

}  // namespace

void RejectedKeys::record(std::span<const Descriptor> descriptors, const Decision& d,
                          std::int64_t checked_at_us) {
  const std::int64_t now_ms = checked_at_us / 1000;
  const std::size_t n = std::min(descriptors.size(), d.count);
  for (std::size_t i = 0; i < n; ++i) {
    const LimitResult& r = d.results[i];
    const Limit& limit = *descriptors[i].limit;
    if (limit.shadow) continue;
    if (!r.allowed) {
      const std::int64_t retry_ms = std::max<std::int64_t>(r.retry_after_ms, 1);
      Entry entry{now_ms + retry_ms, 0};
      // The retry time is rounded up to the ms; counted from when the check was sent,
      // one ms short, the cache never rejects past the time Redis would allow again.
      if (exact_when_cached(limit) && descriptors[i].cost <= 1 && retry_ms > 1) {
        entry.cache_until_us = checked_at_us + std::min(retry_ms - 1, kCacheMaxMs) * 1000;
      }
      remember(descriptors[i].key, entry, now_ms);
    } else if (!until_.empty()) {
      forget(descriptors[i].key);
    }
  }
}

void RejectedKeys::remember(std::string_view key, Entry entry, std::int64_t now_ms) {
  if (auto it = until_.find(key); it != until_.end()) {
    it->second = entry;
    return;
  }
  if (until_.size() >= kMaxKeys) {
    // Full: drop expired entries, at most once a second. While it stays full of live
    // rejections, new ones are not remembered (Redis, or the fallback, decides them).
    if (now_ms < next_prune_ms_) return;
    next_prune_ms_ = now_ms + 1000;
    std::erase_if(until_, [now_ms](const auto& e) { return e.second.until_ms <= now_ms; });
    if (until_.size() >= kMaxKeys) return;
  }
  until_.emplace(key, entry);
}

std::int64_t RejectedKeys::rejected_until(std::string_view key, std::int64_t now_ms) const {
  const auto it = until_.find(key);
  return it != until_.end() && it->second.until_ms > now_ms ? it->second.until_ms : 0;
}

std::optional<Decision> RejectedKeys::cached_rejection(std::span<const Descriptor> descriptors,
                                                       std::int64_t now_us) const {
  const std::size_t n = std::min(descriptors.size(), kMaxLimitsPerCheck);
  int hit = kNone;
  std::int64_t until_ms = 0;
  for (std::size_t i = 0; i < n && hit == kNone; ++i) {
    if (descriptors[i].limit->shadow) continue;
    const auto it = until_.find(descriptors[i].key);
    if (it == until_.end() || it->second.cache_until_us <= now_us) continue;
    hit = static_cast<int>(i);
    until_ms = it->second.until_ms;
  }
  if (hit == kNone) return std::nullopt;
  Decision d;
  d.source = DecisionSource::cache;
  d.now_ms = now_us / 1000;
  d.count = n;
  for (std::size_t i = 0; i < n; ++i) {
    const Limit& limit = *descriptors[i].limit;
    LimitResult& r = d.results[i];
    r.limit = limit.quota();
    r.shadow = limit.shadow;
    if (static_cast<int>(i) == hit) {
      r.allowed = false;
      r.remaining = 0;
      r.reset_ms = until_ms;
      r.retry_after_ms = std::max<std::int64_t>(until_ms - d.now_ms, 1);
    } else {
      r.remaining = limit.quota();  // not consulted: the request stops here
      r.reset_ms = d.now_ms;
    }
  }
  summarize(d);
  return d;
}

void RejectedKeys::forget(std::string_view key) {
  if (auto it = until_.find(key); it != until_.end()) until_.erase(it);
}

}  // namespace phlow::limiter
