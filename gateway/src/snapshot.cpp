#include "gateway/snapshot.hpp"

#include <boost/asio/ssl/context.hpp>

#include "gateway/tls_server.hpp"
#include "limiter/tls_client.hpp"

namespace phlow::gateway {
namespace {

std::shared_ptr<const JwtVerifier> load_jwt(const config::Config& config) {
  const auto& settings = config.identifiers.agent_id.jwt;
  if (!settings) return nullptr;
  std::string error;
  auto verifier = JwtVerifier::load(*settings, error);
  if (!verifier) throw SnapshotError("identifiers.agent_id.jwt: " + error);
  return verifier;
}

}  // namespace

std::string route_label(const config::Route& route) {
  std::string label;
  for (const auto& method : route.match.methods) {
    if (!label.empty()) label += ',';
    label += method;
  }
  if (!label.empty()) label += ' ';
  if (route.match.host) label += *route.match.host;
  return label + route.match.path_prefix;
}

Snapshot::Snapshot(std::shared_ptr<const config::Config> cfg, std::uint64_t gen,
                   NameTable& route_names, NameTable& limit_names)
    : config(std::move(cfg)),
      jwt(load_jwt(*config)),
      identifiers(config->identifiers, jwt.get()),
      keys(config->redis.key_prefix),
      generation(gen) {
  limits.reserve(config->limits.size());
  for (const auto& spec : config->limits) {
    limits.push_back(spec.limit);
    if (config->shadow_mode) limits.back().shadow = true;
    limit_ids.push_back(limit_names.id(spec.name()));
    has_response_costs = has_response_costs || !spec.response_cost_header.empty();
  }
  upstream_keys.reserve(config->upstreams.size());
  for (const auto& upstream : config->upstreams) {
    std::string key = upstream.url.scheme + "://" + upstream.url.host + ":" + std::to_string(upstream.url.port);
    std::shared_ptr<boost::asio::ssl::context> tls;
    if (upstream.url.tls()) {
      const auto& t = upstream.tls;
      key += "|" + t.ca_file + "|" + t.cert_file + "|" + t.key_file + "|" + t.server_name + "|" +
             (t.verify ? "verify" : "no-verify");
      std::string why;
      tls = limiter::make_tls_client_context(t, why);
      if (!tls) throw SnapshotError("upstreams." + upstream.name + ".tls: " + why);
    }
    upstream_keys.push_back(std::move(key));
    upstream_tls.push_back(std::move(tls));
  }
  if (config->tls.enabled()) {
    std::string why;
    listener_tls = make_tls_server_context(config->tls, why);
    if (!listener_tls) throw SnapshotError("tls: " + why);
  }
  for (const auto& route : config->routes) {
    route_labels.push_back(route_label(route));
    route_ids.push_back(route_names.id(route_labels.back()));
  }
  unmatched_route_id = route_names.id("(no route)");
}

}  // namespace phlow::gateway
