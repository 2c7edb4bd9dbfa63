#pragma once
// Internal to the metrics renderers: the workers' counters summed once per scrape, and
// the names of a table grouped so that equal names render as one label value.

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gateway/metrics.hpp"

namespace phlow::gateway::detail {

struct Totals {
  std::vector<std::array<std::uint64_t, kStatusClasses>> requests =
      std::vector<std::array<std::uint64_t, kStatusClasses>>(kMaxNames);
  std::vector<std::array<std::uint64_t, 1>> rate_limited =
      std::vector<std::array<std::uint64_t, 1>>(kMaxNames);
  std::vector<std::array<std::uint64_t, kOutcomes>> decisions =
      std::vector<std::array<std::uint64_t, kOutcomes>>(kMaxNames);
  std::vector<std::array<std::uint64_t, kUnitSources>> units =
      std::vector<std::array<std::uint64_t, kUnitSources>>(kMaxNames);
  std::array<std::uint64_t, 2> cost_errors{};
  std::vector<std::int64_t> slots_held = std::vector<std::int64_t>(kMaxNames);
  std::vector<bool> slots_used = std::vector<bool>(kMaxNames);
  std::array<std::uint64_t, 3> slot_renewals{};
  std::uint64_t slot_release_retries = 0, slot_releases_lost = 0;
  Histogram::Snapshot redis_check, upstream;
  std::array<std::uint64_t, limiter::kStoreErrors> redis_errors{};
  std::uint64_t over_limit_cache_hits = 0;
  std::array<std::uint64_t, kUpstreamErrors> upstream_errors{};
  std::array<std::uint64_t, kJwtErrors> jwt_invalid{};
  std::int64_t client_connections = 0, upstream_connections = 0, websocket_tunnels = 0;
  std::uint64_t client_tls_handshakes = 0, upstream_tls_handshakes = 0;
  std::array<std::uint64_t, kTlsHandshakeErrors> tls_handshake_errors{};
};

Totals sum_workers(const std::vector<const WorkerStats*>& workers);

// One entry per distinct name, in id order; several ids share an entry only when a real
// name "other" and the overflow slot both exist.
struct NameGroup {
  std::string name;
  std::vector<std::size_t> ids;
};
std::vector<NameGroup> group_names(const NameTable& table);

// The element-wise sum of rows[id] over the group's ids.
template <std::size_t N>
std::array<std::uint64_t, N> sum_rows(const std::vector<std::array<std::uint64_t, N>>& rows,
                                      const NameGroup& group) {
  std::array<std::uint64_t, N> out{};
  for (std::size_t id : group.ids)
    for (std::size_t i = 0; i < N; ++i) out[i] += rows[id][i];
  return out;
}

}  // namespace phlow::gateway::detail
