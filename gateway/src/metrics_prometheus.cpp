// render_prometheus: the text exposition format 0.0.4.

#include <initializer_list>

#include "gateway/append_number.hpp"
#include "gateway/metrics.hpp"
#include "metrics_totals.hpp"

namespace phlow::gateway {

namespace {

using detail::NameGroup;
using detail::Totals;
using Label = std::pair<std::string_view, std::string_view>;

constexpr std::string_view kPrefix = "phlow_gateway_";

void append_escaped_label(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
}

void family(std::string& out, std::string_view name, std::string_view type,
            std::string_view help) {
  out.append("# HELP ").append(kPrefix).append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(kPrefix).append(name).append(" ").append(type).append("\n");
}

template <typename Number>
void sample(std::string& out, std::string_view name, std::initializer_list<Label> labels,
            Number value) {
  out.append(kPrefix).append(name);
  if (labels.size() != 0) {
    char separator = '{';
    for (const auto& [key, label_value] : labels) {
      out.append(1, separator).append(key).append("=\"");
      append_escaped_label(out, label_value);
      out.append("\"");
      separator = ',';
    }
    out.append("}");
  }
  out.append(" ");
  append_number(out, value);
  out.append("\n");
}

void histogram(std::string& out, std::string_view name, std::string_view help,
               const Histogram::Snapshot& h) {
  family(out, name, "histogram", help);
  const std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < Histogram::kBuckets; ++i) {
    cumulative += h.buckets[i];
    sample(out, bucket, {{"le", Histogram::kBucketLabels[i]}}, cumulative);
  }
  sample(out, std::string(name) + "_sum", {}, static_cast<double>(h.sum_ns) / 1e9);
  sample(out, std::string(name) + "_count", {}, h.count);
}

void requests(std::string& out, const Totals& t, const std::vector<NameGroup>& routes) {
  family(out, "requests_total", "counter", "Requests answered, by route and status class.");
  for (const NameGroup& route : routes) {
    const auto row = detail::sum_rows(t.requests, route);
    for (std::size_t c = 0; c < kStatusClasses; ++c) {
      if (row[c] == 0) continue;
      sample(out, "requests_total",
             {{"route", route.name}, {"code_class", to_string(static_cast<StatusClass>(c))}},
             row[c]);
    }
  }
}

void decisions(std::string& out, const Totals& t, const std::vector<NameGroup>& limits) {
  family(out, "decisions_total", "counter", "Rate-limit decisions, by limit and outcome.");
  for (const NameGroup& limit : limits) {
    const auto row = detail::sum_rows(t.decisions, limit);
    for (std::size_t o = 0; o < kOutcomes; ++o) {
      if (row[o] == 0) continue;
      sample(out, "decisions_total",
             {{"limit", limit.name}, {"outcome", to_string(static_cast<Outcome>(o))}}, row[o]);
    }
  }
}

void units(std::string& out, const Totals& t, const std::vector<NameGroup>& limits) {
  family(out, "limit_units_total", "counter",
         "Units consumed in limits with a cost, by limit and source (request cost, response usage).");
  for (const NameGroup& limit : limits) {
    const auto row = detail::sum_rows(t.units, limit);
    for (std::size_t s = 0; s < kUnitSources; ++s) {
      if (row[s] == 0) continue;
      sample(out, "limit_units_total",
             {{"limit", limit.name}, {"source", to_string(static_cast<UnitSource>(s))}}, row[s]);
    }
  }
  family(out, "concurrency_slots_held", "gauge", "Concurrency slots held now by this gateway's requests, by limit.");
  for (const NameGroup& limit : limits) {
    std::int64_t held = 0;
    bool used = false;
    for (std::size_t id : limit.ids) {
      held += t.slots_held[id];
      used = used || t.slots_used[id];
    }
    if (used) sample(out, "concurrency_slots_held", {{"limit", limit.name}}, held);
  }
  family(out, "concurrency_renewals_total", "counter",
         "Lease renewals of concurrency slots in Redis: ok, lost (the lease had run out), failed.");
  sample(out, "concurrency_renewals_total", {{"result", "ok"}}, t.slot_renewals[0]);
  sample(out, "concurrency_renewals_total", {{"result", "lost"}}, t.slot_renewals[1]);
  sample(out, "concurrency_renewals_total", {{"result", "failed"}}, t.slot_renewals[2]);
  family(out, "concurrency_release_retries_total", "counter",
         "Releases of concurrency slots in Redis retried (Redis was unreachable).");
  sample(out, "concurrency_release_retries_total", {}, t.slot_release_retries);
  family(out, "concurrency_releases_lost_total", "counter",
         "Releases of concurrency slots given up: the slot's lease ended first.");
  sample(out, "concurrency_releases_lost_total", {}, t.slot_releases_lost);
  family(out, "cost_errors_total", "counter",
         "Cost headers that were not whole numbers: requests (answered 400 BAD_COST), responses (ignored).");
  sample(out, "cost_errors_total", {{"side", "request"}}, t.cost_errors[0]);
  sample(out, "cost_errors_total", {{"side", "response"}}, t.cost_errors[1]);
}

template <typename Kind, std::size_t N>
void errors(std::string& out, std::string_view name, std::string_view help,
            const std::array<std::uint64_t, N>& counts) {
  family(out, name, "counter", help);
  for (std::size_t k = 0; k < N; ++k)
    sample(out, name, {{"kind", to_string(static_cast<Kind>(k))}}, counts[k]);
}

void redis(std::string& out, const Totals& t, const GlobalStats& g) {
  histogram(out, "redis_check_duration_seconds", "Duration of one Redis limit check.",
            t.redis_check);
  family(out, "redis_errors_total", "counter", "Failed Redis limit checks, by kind.");
  for (const limiter::StoreError e : limiter::kRoundTripFailures) {
    sample(out, "redis_errors_total", {{"kind", limiter::metric_label(e)}},
           t.redis_errors[static_cast<std::size_t>(e)]);
  }
  family(out, "redis_fallback", "gauge",
         "1 while limit checks use the in-memory fallback instead of Redis.");
  sample(out, "redis_fallback", {}, g.in_fallback ? 1 : 0);
  family(out, "redis_fallback_transitions_total", "counter",
         "Switches between Redis and the in-memory fallback, by the side switched to.");
  sample(out, "redis_fallback_transitions_total", {{"to", "fallback"}}, g.fallback_transitions);
  sample(out, "redis_fallback_transitions_total", {{"to", "redis"}}, g.recoveries);
  family(out, "redis_master_changes_total", "counter",
         "Times the Redis master the gateway reaches has changed (a Sentinel failover).");
  sample(out, "redis_master_changes_total", {}, g.master_changes);
  family(out, "redis_redirects_total", "counter", "Redis Cluster redirections followed, by kind.");
  sample(out, "redis_redirects_total", {{"kind", "moved"}}, g.moved);
  sample(out, "redis_redirects_total", {{"kind", "ask"}}, g.asked);
  family(out, "redis_refunds_total", "counter",
         "Redis Cluster refunds: what one slot's call consumed for a request another slot rejected.");
  sample(out, "redis_refunds_total", {}, g.refunds);
  family(out, "redis_script_calls_total", "counter",
         "Calls of the Redis check script (one call decides the checks of one worker's loop turn).");
  sample(out, "redis_script_calls_total", {}, g.script_calls);
  family(out, "redis_checks_total", "counter", "Limit checks (requests) sent to Redis.");
  sample(out, "redis_checks_total", {}, g.checks_sent);
  family(out, "over_limit_cache_hits_total", "counter",
         "Requests rejected by a rejection Redis gave earlier, without asking Redis.");
  sample(out, "over_limit_cache_hits_total", {}, t.over_limit_cache_hits);
  family(out, "redis_live_gateways", "gauge",
         "Gateway instances last seen live in Redis (0 until this one has been seen).");
  sample(out, "redis_live_gateways", {}, g.live_gateways);
  family(out, "redis_fallback_share", "gauge",
         "During fallback each limit is divided by this (redis.fallback_share).");
  sample(out, "redis_fallback_share", {}, g.fallback_share);
}

void upstream(std::string& out, const Totals& t) {
  histogram(out, "upstream_duration_seconds",
            "Time from sending a request upstream to its complete response.", t.upstream);
  errors<UpstreamError>(out, "upstream_errors_total", "Failed upstream exchanges, by kind.",
                        t.upstream_errors);
  family(out, "open_connections", "gauge", "Open connections, by side.");
  sample(out, "open_connections", {{"side", "client"}}, t.client_connections);
  sample(out, "open_connections", {{"side", "upstream"}}, t.upstream_connections);
  sample(out, "open_connections", {{"side", "websocket"}}, t.websocket_tunnels);
  family(out, "tls_handshakes_total", "counter",
         "TLS handshakes completed, by side (client: the HTTPS listener; upstream: https upstreams).");
  sample(out, "tls_handshakes_total", {{"side", "client"}}, t.client_tls_handshakes);
  sample(out, "tls_handshakes_total", {{"side", "upstream"}}, t.upstream_tls_handshakes);
  family(out, "tls_handshake_errors_total", "counter",
         "Client TLS handshakes on the HTTPS listener that failed, by reason.");
  for (std::size_t i = 0; i < kTlsHandshakeErrors; ++i) {
    sample(out, "tls_handshake_errors_total",
           {{"reason", to_string(static_cast<TlsHandshakeError>(i))}}, t.tls_handshake_errors[i]);
  }
}

void jwt(std::string& out, const Totals& t) {
  family(out, "jwt_invalid_total", "counter",
         "Bearer tokens that failed verification for agent_id (identifiers.agent_id.jwt), by reason.");
  for (std::size_t r = 1; r < kJwtErrors; ++r) {  // 0 is JwtError::none
    sample(out, "jwt_invalid_total", {{"reason", to_string(static_cast<JwtError>(r))}}, t.jwt_invalid[r]);
  }
}

void process(std::string& out, const GlobalStats& g) {
  family(out, "config_reloads_total", "counter", "Configuration reloads, by result.");
  sample(out, "config_reloads_total", {{"result", "ok"}}, g.reloads_ok);
  sample(out, "config_reloads_total", {{"result", "failed"}}, g.reloads_failed);
  family(out, "config_generation", "gauge", "Generation of the configuration in use.");
  sample(out, "config_generation", {}, g.config_generation);
  family(out, "uptime_seconds", "gauge", "Seconds since the gateway started.");
  sample(out, "uptime_seconds", {}, g.uptime_seconds);
  family(out, "build_info", "gauge", "Always 1; the build's version as a label.");
  sample(out, "build_info", {{"version", g.version}}, 1);
}

}  // namespace

std::string render_prometheus(const std::vector<const WorkerStats*>& workers,
                              const NameTable& routes, const NameTable& limits,
                              const GlobalStats& global) {
  const Totals totals = detail::sum_workers(workers);
  std::string out;
  out.reserve(8192);
  requests(out, totals, detail::group_names(routes));
  const auto limit_names = detail::group_names(limits);
  decisions(out, totals, limit_names);
  units(out, totals, limit_names);
  redis(out, totals, global);
  upstream(out, totals);
  jwt(out, totals);
  process(out, global);
  return out;
}

}  // namespace phlow::gateway
