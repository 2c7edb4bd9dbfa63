#pragma once
// The one place a shared store is built from its settings: the gateway's workers, its
// admin listener and the library's DistributedRateLimiter all call make_store().

#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "limiter/async_store.hpp"
#include "limiter/redis_backend.hpp"

namespace phlow::limiter {

// A store for `options` (not started), reporting into `health`: RedisBackend on the
// URL's node (standalone) or on the master the sentinels name (Sentinel), or
// ClusterStore (Cluster). Throws std::invalid_argument (make_transport) when the TLS
// files do not load.
std::unique_ptr<AsyncStore> make_store(boost::asio::any_io_executor executor,
                                       const RedisOptions& options,
                                       std::shared_ptr<RedisHealth> health);

}  // namespace phlow::limiter
