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

namespace boost::asio::ssl {
class context;
}

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
  // Per upstream, indexed like config->upstreams: the pool's key ("http://host:port";
  // for https also the TLS settings, so that a reload that changes them opens new
  // connections), and the TLS client context of an https upstream (else null).
  std::vector<std::string> upstream_keys;
  std::vector<std::shared_ptr<boost::asio::ssl::context>> upstream_tls;
  // The listener's TLS context when `tls` is set (else null): connections accepted
  // after a reload use the reloaded certificate.
  std::shared_ptr<boost::asio::ssl::context> listener_tls;
  // Metric ids (stable across reloads) and labels, indexed like config->routes/limits.
  std::vector<std::string> route_labels;  // "POST /roles", "/", "GET api.example.com/v1"
  std::vector<std::size_t> route_ids;
  std::vector<std::size_t> limit_ids;
  std::size_t unmatched_route_id = 0;    // requests no route matched
  bool has_response_costs = false;       // some limit has cost_from_response
  // identifiers.agent_id.jwt with its key material read (the PEM or JWKS file is read
  // here, so each reload rereads it); nullptr without jwt. Declared before identifiers,
  // which points to it.
  std::shared_ptr<const JwtVerifier> jwt;
  IdentifierExtractor identifiers;
  limiter::KeyLayout keys;  // redis.key_prefix: every limit key is built and split by it
  std::uint64_t generation = 0;

  // Throws SnapshotError when a TLS file or a JWT key file cannot be used: startup
  // fails, a reload keeps the running config, --check reports it.
  Snapshot(std::shared_ptr<const config::Config> config, std::uint64_t generation,
           NameTable& route_names, NameTable& limit_names);
};

// The label metrics and logs use for a route.
std::string route_label(const config::Route& route);

}  // namespace phlow::gateway
