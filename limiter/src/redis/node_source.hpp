#pragma once
// Which node a connection connects to, asked before every attempt: one fixed node
// (standalone), or the master the sentinels name (sentinel.hpp). A new way of finding
// the node is a NodeSource class plus a line in make_store().

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <string>
#include <variant>

#include "limiter/redis_url.hpp"

namespace phlow::limiter::redis {

class NodeSource {
 public:
  using Located = std::variant<RedisNode, std::string>;  // the node, or why none is known

  virtual ~NodeSource() = default;
  virtual boost::asio::awaitable<Located> locate() = 0;
  // True when the node must confirm with ROLE that it is a master before it carries
  // checks (a Sentinel's answer may be stale).
  virtual bool master_only() const = 0;
  // Calls `abandon` whenever the node in use is no longer the one to use (a Sentinel's
  // +switch-master), until stop(). Call on the connection's executor.
  virtual void watch(std::function<void(const std::string& why)> abandon) = 0;
  virtual void stop() = 0;
};

// Always `node`.
std::shared_ptr<NodeSource> fixed_node(RedisNode node);

}  // namespace phlow::limiter::redis
