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

namespace boost::asio::ssl {
class context;
}

namespace phlow::gateway {

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
  IdentifierExtractor identifiers;
  limiter::KeyLayout keys;  // redis.key_prefix: every limit key is built and split by it
  std::uint64_t generation = 0;

  // Throws std::runtime_error when a TLS file cannot be used (startup fails, a reload
  // keeps the running config).
  Snapshot(std::shared_ptr<const config::Config> config, std::uint64_t generation,
           NameTable& route_names, NameTable& limit_names);
};

// The label metrics and logs use for a route.
std::string route_label(const config::Route& route);

}  // namespace phlow::gateway
