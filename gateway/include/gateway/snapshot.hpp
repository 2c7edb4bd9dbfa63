#pragma once
// One loaded configuration and what the data path derives from it. Immutable; shared
// by pointer; a reload builds a new one and hands it to every worker.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/identifier_extractor.hpp"
#include "gateway/metrics.hpp"
#include "limiter/key_layout.hpp"
#include "limiter/limit.hpp"

namespace phlow::gateway {

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  // The limits as enforced (global shadow_mode applied), indexed like config->limits.
  // Descriptors point into this vector while a request holds the snapshot.
  std::vector<limiter::Limit> limits;
  // "host:port" per upstream, indexed like config->upstreams: the pool's key.
  std::vector<std::string> upstream_keys;
  // Metric ids (stable across reloads) and labels, indexed like config->routes/limits.
  std::vector<std::string> route_labels;  // "POST /roles", "/", "GET api.example.com/v1"
  std::vector<std::size_t> route_ids;
  std::vector<std::size_t> limit_ids;
  std::size_t unmatched_route_id = 0;    // requests no route matched
  IdentifierExtractor identifiers;
  limiter::KeyLayout keys;  // redis.key_prefix: every limit key is built and split by it
  std::uint64_t generation = 0;

  Snapshot(std::shared_ptr<const config::Config> config, std::uint64_t generation,
           NameTable& route_names, NameTable& limit_names);
};

// The label metrics and logs use for a route.
std::string route_label(const config::Route& route);

}  // namespace phlow::gateway
