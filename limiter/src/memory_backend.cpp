#include "limiter/memory_backend.hpp"

#include <algorithm>
#include <array>
#include <climits>
#include <functional>
#include <optional>

namespace phlow::limiter {
namespace {

constexpr std::size_t kOverflowSlots = 64;
constexpr std::int64_t kSweepIntervalMs = 10'000;
constexpr std::size_t kEvictionSample = 8;

std::size_t hash_key(std::string_view key) { return std::hash<std::string_view>{}(key); }

}  // namespace

struct MemoryBackend::Shard {
  struct Entry {
    LimitState state;
    std::int64_t expires_ms = 0;
    // The limit last applied, by value without its name: a reload may free the
    // config the descriptor pointed into before this entry is evicted.
    Limit params;
    std::size_t name_hash = 0;
    bool used = false;

    // `limit` is the limit as enforced (maybe a share, without a name); `name` the
    // configured limit's name.
    void remember(const Limit& limit, std::string_view name) {
      if (used && params.requests == limit.requests && params.window_ms == limit.window_ms &&
          params.algorithm == limit.algorithm && params.burst == limit.burst) {
        return;
      }
      params.requests = limit.requests;
      params.window_ms = limit.window_ms;
      params.algorithm = limit.algorithm;
      params.burst = limit.burst;
      name_hash = hash_key(name);
      used = true;
    }
  };
  struct Overflow {
    Limit params;
    LimitState state;
    std::int64_t expires_ms = 0;
  };

  std::mutex mutex;
  std::unordered_map<std::string, Entry> entries;
  std::unordered_map<std::size_t, Overflow> overflow;  // by overflow_key()
  std::int64_t next_sweep_ms = 0;

  static std::size_t overflow_key(std::size_t name_hash, std::size_t key_hash) {
    return name_hash * kOverflowSlots + (key_hash >> 32) % kOverflowSlots;
  }

  // `in_use` are the keys of the check in progress: their entries are referenced and
  // must survive.
  static bool is_in_use(std::string_view key, std::span<const Descriptor> in_use) {
    return std::any_of(in_use.begin(), in_use.end(),
                       [&](const Descriptor& d) { return d.key == key; });
  }

  void sweep(std::int64_t now_ms, std::span<const Descriptor> in_use) {
    std::erase_if(entries, [&](const auto& kv) {
      return kv.second.expires_ms <= now_ms && !is_in_use(kv.first, in_use);
    });
    std::erase_if(overflow, [&](const auto& kv) { return kv.second.expires_ms <= now_ms; });
    next_sweep_ms = now_ms + kSweepIntervalMs;
  }

  // Makes room for one key: reclaims expired keys, else evicts the live key (of a
  // small sample) that expires first, folding its usage into its overflow slot.
  void make_room(std::size_t capacity, std::int64_t now_ms, std::span<const Descriptor> in_use) {
    if (entries.size() < capacity) return;
    if (now_ms >= next_sweep_ms) sweep(now_ms, in_use);
    if (entries.size() < capacity) return;
    auto victim = entries.end();
    std::size_t seen = 0;
    for (auto it = entries.begin(); it != entries.end() && seen < kEvictionSample; ++it) {
      if (is_in_use(it->first, in_use)) continue;
      ++seen;
      if (victim == entries.end() || it->second.expires_ms < victim->second.expires_ms) victim = it;
    }
    if (victim == entries.end()) return;  // everything held is in use: exceed briefly
    if (const Entry& e = victim->second; e.used && e.expires_ms > now_ms) {
      Overflow& slot = overflow[overflow_key(e.name_hash, hash_key(victim->first))];
      slot.params = e.params;
      merge_conservatively(e.params, slot.state, e.state);
      slot.expires_ms = expires_at_ms(e.params, slot.state);
    }
    entries.erase(victim);
  }

  Entry& find_or_create(const Descriptor& d, std::size_t hash, std::size_t capacity,
                        std::int64_t now_ms, std::span<const Descriptor> in_use) {
    if (auto it = entries.find(d.key); it != entries.end()) return it->second;
    make_room(capacity, now_ms, in_use);
    Entry& entry = entries[d.key];
    entry.expires_ms = INT64_MAX;  // set when the check completes
    const std::size_t name_hash = hash_key(d.limit->name);
    if (auto it = overflow.find(overflow_key(name_hash, hash)); it != overflow.end() &&
        it->second.expires_ms > now_ms && it->second.params.algorithm == d.limit->algorithm) {
      entry.state = it->second.state;  // never more budget than an evicted key had
    }
    return entry;
  }
};

MemoryBackend::MemoryBackend(std::shared_ptr<const Clock> clock, MemoryBackendOptions options)
    : clock_(clock ? std::move(clock) : std::make_shared<SystemClock>()) {
  const std::size_t shards = std::max<std::size_t>(1, options.shards);
  keys_per_shard_ = std::max<std::size_t>(1, options.max_keys / shards);
  shards_.reserve(shards);
  for (std::size_t i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

MemoryBackend::~MemoryBackend() = default;

MemoryBackend::Shard& MemoryBackend::shard_for(std::size_t hash) const {
  return *shards_[hash % shards_.size()];
}

Decision MemoryBackend::check(std::span<const Descriptor> descriptors) {
  return check(descriptors, 1);
}

Decision MemoryBackend::check(std::span<const Descriptor> descriptors, std::uint32_t share) {
  return apply(descriptors, share, false);
}

Decision MemoryBackend::debit(std::span<const Descriptor> descriptors, std::uint32_t share) {
  return apply(descriptors, share, true);
}

Decision MemoryBackend::apply(std::span<const Descriptor> descriptors, std::uint32_t share, bool debit) {
  Decision decision;
  decision.source = DecisionSource::memory;
  decision.count = std::min(descriptors.size(), kMaxLimitsPerCheck);
  const std::int64_t now_us = clock_->now_us();
  const std::int64_t now_ms = now_us / 1000;
  decision.now_ms = now_ms;

  // Lock every shard involved, in address order, so that multi-limit checks are
  // atomic without a lock shared by all threads.
  std::array<std::size_t, kMaxLimitsPerCheck> hashes{};
  std::array<Shard*, kMaxLimitsPerCheck> order{};
  for (std::size_t i = 0; i < decision.count; ++i) {
    hashes[i] = hash_key(descriptors[i].key);
    order[i] = &shard_for(hashes[i]);
  }
  std::sort(order.begin(), order.begin() + decision.count);
  const auto last = std::unique(order.begin(), order.begin() + decision.count);
  for (auto it = order.begin(); it != last; ++it) (*it)->mutex.lock();

  // The limits enforced: the configured ones, or (share > 1) their parts, built
  // only then.
  std::optional<std::array<Limit, kMaxLimitsPerCheck>> parts;
  std::array<const Limit*, kMaxLimitsPerCheck> limits{};
  if (share > 1) parts.emplace();
  for (std::size_t i = 0; i < decision.count; ++i) {
    limits[i] = descriptors[i].limit;
    if (parts) limits[i] = &((*parts)[i] = share_of(*limits[i], share));
  }

  std::array<Shard::Entry*, kMaxLimitsPerCheck> entries{};
  for (std::size_t i = 0; i < decision.count; ++i) {
    const Descriptor& d = descriptors[i];
    entries[i] = &shard_for(hashes[i]).find_or_create(d, hashes[i], keys_per_shard_, now_ms,
                                                       descriptors.first(decision.count));
    entries[i]->remember(*limits[i], d.limit->name);
    if (debit) {
      consume(*limits[i], entries[i]->state, now_us, d.cost);
      decision.results[i] = evaluate(*limits[i], entries[i]->state, now_us);
    } else {
      decision.results[i] = evaluate(*limits[i], entries[i]->state, now_us, d.cost);
    }
  }
  summarize(decision);
  if (decision.allowed && !debit) {
    for (std::size_t i = 0; i < decision.count; ++i) {
      if (!decision.results[i].allowed) continue;  // a shadow rejection consumes nothing
      consume(*limits[i], entries[i]->state, now_us, descriptors[i].cost);
    }
  }
  for (std::size_t i = 0; i < decision.count; ++i) {
    entries[i]->expires_ms = expires_at_ms(*limits[i], entries[i]->state);
  }
  for (auto it = order.begin(); it != last; ++it) {
    if (now_ms >= (*it)->next_sweep_ms) (*it)->sweep(now_ms, descriptors.first(decision.count));
    (*it)->mutex.unlock();
  }
  return decision;
}

void MemoryBackend::release(const Descriptor& d) {
  Shard& shard = shard_for(hash_key(d.key));
  std::lock_guard lock(shard.mutex);
  if (auto it = shard.entries.find(d.key); it != shard.entries.end()) {
    release_slot(it->second.state);
    it->second.expires_ms = expires_at_ms(it->second.params, it->second.state);
  }
}

void MemoryBackend::reset(std::string_view key) {
  Shard& shard = shard_for(hash_key(key));
  std::lock_guard lock(shard.mutex);
  if (auto it = shard.entries.find(std::string(key)); it != shard.entries.end()) {
    shard.entries.erase(it);
  }
}

LimitResult MemoryBackend::peek(const Descriptor& d) { return peek(d, 1); }

LimitResult MemoryBackend::peek(const Descriptor& d, std::uint32_t share) {
  const std::int64_t now_us = clock_->now_us();
  Shard& shard = shard_for(hash_key(d.key));
  std::lock_guard lock(shard.mutex);
  LimitState state;
  if (auto it = shard.entries.find(d.key); it != shard.entries.end()) state = it->second.state;
  if (share > 1) return evaluate(share_of(*d.limit, share), state, now_us);
  return evaluate(*d.limit, state, now_us);
}

std::size_t MemoryBackend::size() const {
  std::size_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    total += shard->entries.size();
  }
  return total;
}

}  // namespace phlow::limiter
