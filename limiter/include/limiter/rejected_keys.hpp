#pragma once
// What one worker remembers of Redis' rejections, per key, until the retry time Redis
// gave. Two uses:
// - the over-limit cache, while Redis is up: a request with an enforced sliding_log
//   or token_bucket limit whose key Redis rejected is rejected here, without asking
//   Redis, until that time. Exact: in those algorithms nothing but an admin reset or a
//   config change (which clear this) makes a rejected key allowed before its retry
//   time, and a rejection consumes nothing. Only rejections of one-unit requests are
//   cached (a request of a lighter cost may fit sooner). The entry serves at most kCacheMaxMs, so a
//   reset made on another gateway is seen here within that bound.
// - the fallback, while Redis is down: keys Redis was rejecting stay rejected until
//   their time (any algorithm), so an outage does not hand out a fresh budget.
// Bounded; one thread only.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "limiter/decision.hpp"
#include "limiter/descriptor.hpp"

namespace phlow::limiter {

class RejectedKeys {
 public:
  static constexpr std::size_t kMaxKeys = 65'536;
  // How long one Redis rejection may answer for Redis (the bound on a reset made on
  // another gateway, or on another process's config change, to be seen here).
  static constexpr std::int64_t kCacheMaxMs = 1000;

  // Records Redis' verdicts of one decision for a check sent at `checked_at_us`
  // (the memory backend's clock): rejected keys until their retry time, allowed keys
  // forgotten.
  void record(std::span<const Descriptor> descriptors, const Decision& redis_decision,
              std::int64_t checked_at_us);
  // Unix ms until which `key` stays rejected while Redis is down, or 0.
  std::int64_t rejected_until(std::string_view key, std::int64_t now_ms) const;
  // The over-limit cache: when an enforced sliding_log or token_bucket limit of
  // `descriptors` is rejected at `now_us` by what Redis said, the rejection (source
  // DecisionSource::cache; the other limits are reported allowed and unconsulted).
  std::optional<Decision> cached_rejection(std::span<const Descriptor> descriptors,
                                           std::int64_t now_us) const;
  void forget(std::string_view key);
  void clear() { until_.clear(); }
  bool empty() const { return until_.empty(); }
  std::size_t size() const { return until_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Entry {
    std::int64_t until_ms = 0;        // when Redis allows the key again
    std::int64_t cache_until_us = 0;  // until when the cache may answer (0: never)
  };
  void remember(std::string_view key, Entry entry, std::int64_t now_ms);

  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> until_;
  std::int64_t next_prune_ms_ = 0;
};

}  // namespace phlow::limiter
