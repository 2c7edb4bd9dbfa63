#include "redis/node_source.hpp"

namespace phlow::limiter::redis {

namespace {

class FixedNode final : public NodeSource {
 public:
  explicit FixedNode(RedisNode node) : node_(std::move(node)) {}
  boost::asio::awaitable<Located> locate() override { co_return node_; }
  bool master_only() const override { return false; }
  void watch(std::function<void(const std::string&)>) override {}
  void stop() override {}

 private:
  RedisNode node_;
};

}  // namespace

std::shared_ptr<NodeSource> fixed_node(RedisNode node) {
  return std::make_shared<FixedNode>(std::move(node));
}

}  // namespace phlow::limiter::redis
