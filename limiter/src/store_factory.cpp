#include "limiter/store_factory.hpp"

#include <stdexcept>

#include "redis/node_source.hpp"
#include "redis/sentinel.hpp"
#include "redis/stream.hpp"

namespace phlow::limiter {

std::string unsupported_store(const RedisUrl& url) {
  if (url.topology == RedisTopology::cluster) return "redis+cluster:// is not supported yet";
  return {};
}

std::unique_ptr<AsyncStore> make_store(boost::asio::any_io_executor executor,
                                       const RedisOptions& options,
                                       std::shared_ptr<RedisHealth> health) {
  if (const std::string why = unsupported_store(options.url); !why.empty()) {
    throw std::invalid_argument(why);
  }
  std::shared_ptr<redis::NodeSource> nodes;
  switch (options.url.topology) {
    case RedisTopology::standalone: nodes = redis::fixed_node(options.url.nodes.at(0)); break;
    case RedisTopology::sentinel:
      nodes = std::make_shared<redis::SentinelSource>(executor, options.url, redis::make_transport(options),
                                                      options.sentinel_password, options.connect_timeout);
      break;
    case RedisTopology::cluster: break;  // refused by unsupported_store()
  }
  return std::make_unique<RedisBackend>(std::move(executor), options, std::move(health), std::move(nodes));
}

}  // namespace phlow::limiter
