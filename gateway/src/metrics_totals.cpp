#include "metrics_totals.hpp"

#include <algorithm>

namespace phlow::gateway::detail {

namespace {

std::uint64_t load(const std::atomic<std::uint64_t>& a) {
  return a.load(std::memory_order_relaxed);
}

template <std::size_t N>
void add_rows(std::vector<std::array<std::uint64_t, N>>& into,
              const std::array<std::array<std::atomic<std::uint64_t>, N>, kMaxNames>& from) {
  for (std::size_t id = 0; id < kMaxNames; ++id)
    for (std::size_t i = 0; i < N; ++i) into[id][i] += load(from[id][i]);
}

}  // namespace

Totals sum_workers(const std::vector<const WorkerStats*>& workers) {
  Totals t;
  for (const WorkerStats* w : workers) {
    add_rows(t.requests, w->requests);
    add_rows(t.rate_limited, w->rate_limited);
    add_rows(t.decisions, w->decisions);
    add_rows(t.units, w->units);
    for (std::size_t i = 0; i < t.cost_errors.size(); ++i) t.cost_errors[i] += load(w->cost_errors[i]);
    for (std::size_t id = 0; id < kMaxNames; ++id) {
      t.slots_held[id] += w->slots_held[id].load(std::memory_order_relaxed);
      if (w->slots_used[id].load(std::memory_order_relaxed)) t.slots_used[id] = true;
    }
    for (std::size_t i = 0; i < t.slot_renewals.size(); ++i) t.slot_renewals[i] += load(w->slot_renewals[i]);
    t.slot_release_retries += load(w->slot_release_retries);
    t.slot_releases_lost += load(w->slot_releases_lost);
    t.redis_check += w->redis_check.snapshot();
    t.upstream += w->upstream.snapshot();
    for (std::size_t i = 0; i < limiter::kStoreErrors; ++i) t.redis_errors[i] += load(w->redis_errors[i]);
    t.over_limit_cache_hits += load(w->over_limit_cache_hits);
    for (std::size_t i = 0; i < kUpstreamErrors; ++i)
      t.upstream_errors[i] += load(w->upstream_errors[i]);
    for (std::size_t i = 0; i < kJwtErrors; ++i) t.jwt_invalid[i] += load(w->jwt_invalid[i]);
    t.client_connections += w->client_connections.load(std::memory_order_relaxed);
    t.upstream_connections += w->upstream_connections.load(std::memory_order_relaxed);
    t.websocket_tunnels += w->websocket_tunnels.load(std::memory_order_relaxed);
    t.client_tls_handshakes += load(w->client_tls_handshakes);
    t.upstream_tls_handshakes += load(w->upstream_tls_handshakes);
    for (std::size_t i = 0; i < kTlsHandshakeErrors; ++i)
      t.tls_handshake_errors[i] += load(w->tls_handshake_errors[i]);
  }
  return t;
}

std::vector<NameGroup> group_names(const NameTable& table) {
  std::vector<NameGroup> groups;
  const std::vector<std::string> names = table.names();
  for (std::size_t id = 0; id < names.size(); ++id) {
    // The table's names are unique, except that the overflow slot may meet a real "other".
    if (id == kOtherId) {
      auto real = std::find_if(groups.begin(), groups.end(),
                               [](const NameGroup& g) { return g.name == kOtherName; });
      if (real != groups.end()) {
        real->ids.push_back(id);
        continue;
      }
    }
    groups.push_back(NameGroup{names[id], {id}});
  }
  return groups;
}

}  // namespace phlow::gateway::detail
