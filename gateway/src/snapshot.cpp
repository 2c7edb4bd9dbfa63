#include "gateway/snapshot.hpp"

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
  }
  upstream_keys.reserve(config->upstreams.size());
  for (const auto& upstream : config->upstreams) {
    upstream_keys.push_back(upstream.url.host + ":" + std::to_string(upstream.url.port));
  }
  for (const auto& route : config->routes) {
    route_labels.push_back(route_label(route));
    route_ids.push_back(route_names.id(route_labels.back()));
  }
  unmatched_route_id = route_names.id("(no route)");
}

}  // namespace phlow::gateway
