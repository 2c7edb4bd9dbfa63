// status_json: the numbers of render_prometheus for the status page.

#include <algorithm>
#include <map>

#include "gateway/metrics.hpp"
#include "metrics_totals.hpp"

namespace phlow::gateway {

namespace {

using detail::NameGroup;
using detail::Totals;
using nlohmann::json;

constexpr std::size_t kStatusTopLimited = 10;

json routes_json(const Totals& t, const std::vector<NameGroup>& routes) {
  json out = json::object();
  for (const NameGroup& route : routes) {
    const auto row = detail::sum_rows(t.requests, route);
    json by_class = json::object();
    std::uint64_t total = 0;
    for (std::size_t c = 0; c < kStatusClasses; ++c) {
      by_class[std::string(to_string(static_cast<StatusClass>(c)))] = row[c];
      total += row[c];
    }
    out[route.name] = {{"requests", total},
                       {"rate_limited", detail::sum_rows(t.rate_limited, route)[0]},
                       {"by_class", std::move(by_class)}};
  }
  return out;
}

json limits_json(const Totals& t, const std::vector<NameGroup>& limits) {
  json out = json::object();
  for (const NameGroup& limit : limits) {
    const auto row = detail::sum_rows(t.decisions, limit);
    json outcomes = json::object();
    for (std::size_t o = 0; o < kOutcomes; ++o)
      outcomes[std::string(to_string(static_cast<Outcome>(o)))] = row[o];
    const auto units = detail::sum_rows(t.units, limit);
    outcomes["units_request"] = units[0];
    outcomes["units_response"] = units[1];
    std::int64_t held = 0;
    for (std::size_t id : limit.ids) held += t.slots_held[id];
    outcomes["slots_held"] = held;
    out[limit.name] = std::move(outcomes);
  }
  return out;
}

// Each worker keeps its own top-k; an identifier limited on several workers adds up.
json top_limited_json(const std::vector<const WorkerStats*>& workers) {
  std::map<std::string, std::uint64_t> merged;
  for (const WorkerStats* w : workers)
    for (auto& [key, count] : w->top_limited(WorkerStats::kTopK)) merged[key] += count;
  std::vector<std::pair<std::string, std::uint64_t>> sorted(merged.begin(), merged.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (sorted.size() > kStatusTopLimited) sorted.resize(kStatusTopLimited);
  json out = json::array();
  for (auto& [key, count] : sorted) out.push_back({{"identifier", key}, {"count", count}});
  return out;
}

json redis_json(const Totals& t, const GlobalStats& g) {
  const char* state = !g.redis_configured ? "disabled" : g.in_fallback ? "fallback" : "connected";
  json errors = json::object();
  for (const limiter::StoreError e : limiter::kRoundTripFailures)
    errors[std::string(limiter::metric_label(e))] = t.redis_errors[static_cast<std::size_t>(e)];
  return {{"state", state},
          {"fallback_transitions", g.fallback_transitions},
          {"recoveries", g.recoveries},
          {"live_gateways", g.live_gateways},
          {"fallback_share", g.fallback_share},
          {"checks", t.redis_check.count},
          {"errors", std::move(errors)}};
}

}  // namespace

json status_json(const std::vector<const WorkerStats*>& workers, const NameTable& routes,
                 const NameTable& limits, const GlobalStats& global) {
  const Totals totals = detail::sum_workers(workers);
  return {{"version", global.version},
          {"uptime_seconds", global.uptime_seconds},
          {"config_generation", global.config_generation},
          {"reloads", {{"ok", global.reloads_ok}, {"failed", global.reloads_failed}}},
          {"connections",
           {{"client", totals.client_connections}, {"upstream", totals.upstream_connections},
            {"websocket", totals.websocket_tunnels}}},
          {"routes", routes_json(totals, detail::group_names(routes))},
          {"limits", limits_json(totals, detail::group_names(limits))},
          {"redis", redis_json(totals, global)},
          {"top_limited", top_limited_json(workers)}};
}

}  // namespace phlow::gateway
