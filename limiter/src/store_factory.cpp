#include "limiter/store_factory.hpp"

#include "redis/cluster_store.hpp"
#include "redis/node_source.hpp"
#include "redis/sentinel.hpp"
#include "redis/stream.hpp"

namespace phlow::limiter {

std::unique_ptr<AsyncStore> make_store(boost::asio::any_io_executor executor,
                                       const RedisOptions& options,
                                       std::shared_ptr<RedisHealth> health) {
  switch (options.url.topology) {
    case RedisTopology::sentinel:
      return std::make_unique<RedisBackend>(
          executor, options, std::move(health),
          std::make_shared<redis::SentinelSource>(executor, options.url, redis::make_transport(options),
                                                  options.sentinel_password, options.connect_timeout));
    case RedisTopology::cluster:
      return std::make_unique<redis::ClusterStore>(std::move(executor), options, std::move(health));
    case RedisTopology::standalone: break;
  }
  return std::make_unique<RedisBackend>(std::move(executor), options, std::move(health),
                                        redis::fixed_node(options.url.nodes.at(0)));
}

}  // namespace phlow::limiter
