#include "gateway/snapshot.hpp"

namespace phlow::gateway {

Snapshot::Snapshot(std::shared_ptr<const config::Config> cfg, std::uint64_t gen)
    : config(std::move(cfg)), identifiers(config->identifiers), generation(gen) {
  limits.reserve(config->limits.size());
  for (const auto& spec : config->limits) {
    limits.push_back(spec.limit);
    if (config->shadow_mode) limits.back().shadow = true;
  }
  upstream_keys.reserve(config->upstreams.size());
  for (const auto& upstream : config->upstreams) {
    upstream_keys.push_back(upstream.url.host + ":" + std::to_string(upstream.url.port));
  }
}

}  // namespace phlow::gateway
