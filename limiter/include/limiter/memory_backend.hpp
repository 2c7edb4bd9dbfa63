#pragma once
// In-process limit store: sharded (no lock shared by all threads), bounded in keys.

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "limiter/algorithm.hpp"
#include "limiter/backend.hpp"
#include "limiter/clock.hpp"

namespace phlow::limiter {

struct MemoryBackendOptions {
  std::size_t max_keys = 1'000'000;  // over all shards
  std::size_t shards = 64;
};

// When a shard is full, expired keys are reclaimed first; if none, a live key is
// evicted and its usage folded into an overflow slot (per limit, by key hash) that
// seeds any key that later arrives in that slot. An evicted key therefore never
// comes back with more budget than it had; keys sharing its slot may get less.
class MemoryBackend final : public RateLimitBackend {
 public:
  explicit MemoryBackend(std::shared_ptr<const Clock> clock = nullptr,
                         MemoryBackendOptions options = {});
  ~MemoryBackend() override;

  Decision check(std::span<const Descriptor> descriptors) override;
  void reset(std::string_view key) override;
  LimitResult peek(const Descriptor& descriptor) override;
  // The same, enforcing share_of(limit, share) of each limit (the Redis fallback's
  // part of a budget several instances share). share <= 1 is the whole limit.
  Decision check(std::span<const Descriptor> descriptors, std::uint32_t share);
  LimitResult peek(const Descriptor& descriptor, std::uint32_t share);
  // Consumes each descriptor's cost unconditionally, even past its limit (what a
  // response reported using: cost_from_response). Returns the usage after it.
  Decision debit(std::span<const Descriptor> descriptors, std::uint32_t share = 1);
  // Gives back one slot of the concurrency limit `descriptor` names.
  void release(const Descriptor& descriptor);

  std::size_t size() const;  // keys held, for tests and metrics
  std::int64_t now_us() const { return clock_->now_us(); }

 private:
  struct Shard;
  Shard& shard_for(std::size_t hash) const;
  Decision apply(std::span<const Descriptor> descriptors, std::uint32_t share, bool debit);

  std::shared_ptr<const Clock> clock_;
  std::size_t keys_per_shard_;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace phlow::limiter
