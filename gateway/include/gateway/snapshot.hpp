#pragma once
// One loaded configuration and what the data path derives from it. Immutable; shared
// by pointer; a reload builds a new one and hands it to every worker.

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "gateway/identifier_extractor.hpp"
#include "gateway/jwt_verifier.hpp"
#include "gateway/metrics.hpp"
#include "limiter/key_layout.hpp"
#include "limiter/limit.hpp"

namespace phlow::gateway {

// A config that loaded but whose snapshot cannot be built; what() names the cause.
struct SnapshotError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

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
  // identifiers.agent_id.jwt with its key material read (the PEM or JWKS file is read
  // here, so each reload rereads it); nullptr without jwt. Declared before identifiers,
  // which points to it.
  std::shared_ptr<const JwtVerifier> jwt;
  IdentifierExtractor identifiers;
  limiter::KeyLayout keys;  // redis.key_prefix: every limit key is built and split by it
  std::uint64_t generation = 0;

  // Throws SnapshotError when what the config names cannot be loaded (a JWT key file
  // that is missing or holds no usable key): startup fails, a reload keeps the old one.
  Snapshot(std::shared_ptr<const config::Config> config, std::uint64_t generation,
           NameTable& route_names, NameTable& limit_names);
};

// The label metrics and logs use for a route.
std::string route_label(const config::Route& route);

}  // namespace phlow::gateway
