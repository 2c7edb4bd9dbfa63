#pragma once
// Counters of the data path and their two renderings: Prometheus text for GET /metrics
// and JSON for the status page. Each worker owns a WorkerStats it alone writes; the
// admin thread sums them when scraped, so counting never takes a lock shared by workers.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gateway/jwt_verifier.hpp"
#include "limiter/store_error.hpp"

namespace phlow::gateway {

inline constexpr std::size_t kMaxNames = 256;  // distinct names per table over the process life
inline constexpr std::size_t kOtherId = kMaxNames - 1;
inline constexpr std::string_view kOtherName = "other";

// Stable small ids for names (routes, limits, upstreams). Assigned on the control plane
// (config load/reload), never on the data path. Thread-safe. Once kMaxNames - 1 names
// are known every further name gets kOtherId ("other"). Names are never forgotten, so
// counters survive reloads.
class NameTable {
 public:
  std::size_t id(const std::string& name);
  // Index = id. Holds "other" at kOtherId once a name overflowed.
  std::vector<std::string> names() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::size_t> ids_;
  std::vector<std::string> names_;
  bool overflowed_ = false;
};

enum class StatusClass : std::uint8_t { s1xx, s2xx, s3xx, s4xx, s5xx };
// Below 200 is 1xx, 500 and above (and nonsense past 599) is 5xx.
StatusClass status_class(int status);
std::string_view to_string(StatusClass c);  // "2xx"

enum class Outcome : std::uint8_t { allowed, limited, shadow_limited, skipped };
// Where units of a limit with a cost came from: admitted requests' `cost`, or what
// responses reported (`cost_from_response`).
enum class UnitSource : std::uint8_t { request, response };
inline constexpr std::size_t kUnitSources = 2;
std::string_view to_string(UnitSource s);
enum class UpstreamError : std::uint8_t {
  connect_refused, connect_timeout, timeout, reset, bad_response, truncated,
  tls  // the TLS handshake with an https upstream failed (its certificate, most often)
};
// Why a client's TLS handshake on the HTTPS listener failed.
enum class TlsHandshakeError : std::uint8_t {
  plain_http,  // a plain-HTTP request arrived on the TLS port
  timeout,     // not done within http.header_timeout
  failed       // anything else (no shared protocol, a bad record, the client gave up)
};
std::string_view to_string(TlsHandshakeError e);
std::string_view to_string(Outcome o);
std::string_view to_string(UpstreamError e);

inline constexpr std::size_t kStatusClasses = 5;
inline constexpr std::size_t kOutcomes = 4;
inline constexpr std::size_t kUpstreamErrors = 7;
inline constexpr std::size_t kTlsHandshakeErrors = 3;

// Adds to a counter that has a single writer thread: a plain load and store instead of
// a locked read-modify-write, since no other thread writes it.
inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Latency histogram with fixed buckets in seconds:
// 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf.
// One writer thread, any reader thread (relaxed atomics): every value read only grows.
class Histogram {
 public:
  static constexpr std::size_t kBuckets = 15;  // the last is +Inf
  static constexpr std::array<std::int64_t, kBuckets - 1> kBoundsNs{
      500'000,     1'000'000,   2'500'000,     5'000'000,     10'000'000,
      25'000'000,  50'000'000,  100'000'000,   250'000'000,   500'000'000,
      1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};
  // The `le` label of each bucket, as Prometheus clients print them.
  static constexpr std::array<std::string_view, kBuckets> kBucketLabels{
      "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
      "0.25",   "0.5",   "1",      "2.5",   "5",    "10",    "+Inf"};

  // Negative durations count as zero.
  void observe(std::chrono::nanoseconds d);

  // Per-bucket (not cumulative) counts; count is their sum, so +Inf always equals it.
  struct Snapshot {
    std::array<std::uint64_t, kBuckets> buckets{};
    std::uint64_t count = 0;
    std::uint64_t sum_ns = 0;
    Snapshot& operator+=(const Snapshot& other);
  };
  Snapshot snapshot() const;

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

// One per worker: written only by that worker, read by the admin thread when scraped.
// Aligned so that two workers' stats never share a cache line.
struct alignas(64) WorkerStats {
  // Ids past the table (>= kMaxNames) count as "other".
  void count_request(std::size_t route_id, int status);
  void count_decision(std::size_t limit_id, Outcome outcome);
  // Units consumed in a limit with a cost (limits without one count only decisions).
  void count_units(std::size_t limit_id, UnitSource source, std::int64_t units);
  // Counts a check Redis failed (by kind; none counts nothing).
  void count_redis_error(limiter::StoreError e) {
    if (e != limiter::StoreError::none) bump(redis_errors[static_cast<std::size_t>(e)]);
  }
  void count_upstream_error(UpstreamError e) {
    bump(upstream_errors[static_cast<std::size_t>(e)]);
  }
  // A bearer token that failed verification for agent_id (JwtError::none counts nothing).
  void count_jwt_invalid(JwtError e) {
    if (e != JwtError::none) bump(jwt_invalid[static_cast<std::size_t>(e)]);
  }

  std::array<std::array<std::atomic<std::uint64_t>, kStatusClasses>, kMaxNames> requests{};
  // 429s by route (a subset of the 4xx above), for the status page.
  std::array<std::array<std::atomic<std::uint64_t>, 1>, kMaxNames> rate_limited{};
  std::array<std::array<std::atomic<std::uint64_t>, kOutcomes>, kMaxNames> decisions{};
  std::array<std::array<std::atomic<std::uint64_t>, kUnitSources>, kMaxNames> units{};
  // Cost headers that were not whole numbers: [0] requests (answered 400 BAD_COST),
  // [1] responses (ignored).
  std::array<std::atomic<std::uint64_t>, 2> cost_errors{};
  // Concurrency slots held now, by limit (a gauge), and what became of them in Redis:
  // lease renewals [ok, lost (the lease had run out), failed (Redis unreachable)],
  // releases retried, releases given up (the lease ended first).
  std::array<std::atomic<std::int64_t>, kMaxNames> slots_held{};
  std::array<std::atomic<bool>, kMaxNames> slots_used{};  // the gauge is shown from then on
  std::array<std::atomic<std::uint64_t>, 3> slot_renewals{};
  std::atomic<std::uint64_t> slot_release_retries{0}, slot_releases_lost{0};
  Histogram redis_check;
  std::array<std::atomic<std::uint64_t>, limiter::kStoreErrors> redis_errors{};  // by StoreError
  std::atomic<std::uint64_t> over_limit_cache_hits{0};  // rejections decided without Redis
  Histogram upstream;
  std::array<std::atomic<std::uint64_t>, kUpstreamErrors> upstream_errors{};
  std::array<std::atomic<std::uint64_t>, kJwtErrors> jwt_invalid{};  // by JwtError
  std::atomic<std::int64_t> client_connections{0}, upstream_connections{0};
  std::atomic<std::int64_t> websocket_tunnels{0};  // WebSocket connections past their 101
  // TLS handshakes completed: clients on the HTTPS listener, https upstream connections.
  std::atomic<std::uint64_t> client_tls_handshakes{0}, upstream_tls_handshakes{0};
  std::array<std::atomic<std::uint64_t>, kTlsHandshakeErrors> tls_handshake_errors{};
  void count_tls_handshake_error(TlsHandshakeError e) {
    bump(tls_handshake_errors[static_cast<std::size_t>(e)]);
  }

  // The most limited identifiers (already hashed/key form, e.g. "auth:9f86d0..."): a
  // space-saving top-k (k = kTopK) behind a mutex of this worker only, taken on limited
  // requests and by the scraper, never shared by workers. Counts may overestimate an
  // identifier that entered late by at most the count of the one it evicted.
  static constexpr std::size_t kTopK = 32;
  void count_limited_identifier(std::string_view limit_and_identifier);
  // At most n entries, highest count first (ties by name).
  std::vector<std::pair<std::string, std::uint64_t>> top_limited(std::size_t n) const;

 private:
  struct TopEntry {
    std::string key;
    std::uint64_t count;
  };
  mutable std::mutex top_mutex_;
  std::vector<TopEntry> top_;
};

// Process-wide facts the scrape adds.
struct GlobalStats {
  bool redis_configured = false;
  bool in_fallback = false;
  std::uint64_t fallback_transitions = 0, recoveries = 0;
  std::uint64_t master_changes = 0;  // Redis master moved (Sentinel or Cluster failover)
  std::uint64_t moved = 0, asked = 0, refunds = 0;  // Redis Cluster redirects and refunds
  std::uint64_t script_calls = 0, checks_sent = 0;   // Redis check script calls, checks in them
  std::uint32_t live_gateways = 0;   // instances last seen live in Redis (0: not yet)
  std::uint32_t fallback_share = 1;  // limits are divided by this during fallback
  std::uint64_t reloads_ok = 0, reloads_failed = 0, config_generation = 0;
  double uptime_seconds = 0;
  std::string version;
};

// Prometheus text format 0.0.4 (every family with # HELP and # TYPE, names prefixed
// phlow_gateway_, counters ending _total, histograms as _bucket{le}/_sum/_count, label
// values escaped). Sums the workers. Families: requests_total{route,code_class},
// decisions_total{limit,outcome}, redis_check_duration_seconds, redis_errors_total{kind},
// redis_fallback, redis_fallback_transitions_total{to}, redis_master_changes_total,
// redis_redirects_total{kind}, redis_refunds_total, redis_script_calls_total,
// redis_checks_total, over_limit_cache_hits_total, limit_units_total{limit,source},
// cost_errors_total{side}, concurrency_slots_held{limit} (once the limit held a slot),
// concurrency_renewals_total{result}, concurrency_release_retries_total,
// concurrency_releases_lost_total,
// upstream_duration_seconds,
// upstream_errors_total{kind}, jwt_invalid_total{reason}, open_connections{side}, config_reloads_total{result},
// config_generation, uptime_seconds, build_info{version}. Route and limit counters
// appear only for non-zero combinations; the fixed-kind counters always appear.
std::string render_prometheus(const std::vector<const WorkerStats*>& workers,
                              const NameTable& routes, const NameTable& limits,
                              const GlobalStats& global);

// The same numbers as JSON for the status page: per route {requests, by_class}, per
// limit {allowed, limited, shadow_limited, skipped, units_request, units_response,
// slots_held}, redis state, connections, reloads,
// top limited identifiers (merged over workers, top 10), generation, uptime, version.
nlohmann::json status_json(const std::vector<const WorkerStats*>& workers,
                           const NameTable& routes, const NameTable& limits,
                           const GlobalStats& global);

}  // namespace phlow::gateway
