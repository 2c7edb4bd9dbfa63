#include "limiter/store_factory.hpp"

#include <stdexcept>

namespace phlow::limiter {

std::string unsupported_store(const RedisUrl& url) {
  if (url.tls) return "rediss:// (TLS to Redis) is not supported yet; use redis://";
  return {};
}

std::unique_ptr<AsyncStore> make_store(boost::asio::any_io_executor executor,
                                       const RedisOptions& options,
                                       std::shared_ptr<RedisHealth> health) {
  if (const std::string why = unsupported_store(options.url); !why.empty()) {
    throw std::invalid_argument(why);
  }
  return std::make_unique<RedisBackend>(std::move(executor), options, std::move(health));
}

}  // namespace phlow::limiter
