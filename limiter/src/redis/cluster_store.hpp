#pragma once
// Redis Cluster (redis+cluster://): keys map to slots by CRC16 (KeyLayout::slot), the
// slot map comes from CLUSTER SLOTS (asked of a known node or a seed), refreshed every
// 5 s, at once on -MOVED, and every 250 ms while a master is unreachable. One
// pipelined connection per master per store (so per worker), the check script loaded
// on each. The keys of one request that share a slot are decided in one script call;
// keys in different slots by one call per slot, sent together, and when an enforced
// limit rejects (or a call fails), what the other calls consumed is refunded at once.
// -MOVED is followed once (the map updated), -ASK once after ASKING; -TRYAGAIN and
// -CLUSTERDOWN fail the check (the failure policy decides).

#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "limiter/async_store.hpp"
#include "limiter/redis_options.hpp"

namespace phlow::limiter::redis {

class ClusterStore final : public AsyncStore {
 public:
  ClusterStore(boost::asio::any_io_executor executor, RedisOptions options,
               std::shared_ptr<RedisHealth> health);
  ~ClusterStore() override;

  void start() override;
  void stop() override;
  bool ready() const override;
  void async_check(std::span<const Descriptor> descriptors, CheckMode mode,
                   CheckHandler handler) override;
  void async_reset(std::string_view key, ResetHandler handler) override;
  void async_release(std::string_view key, std::string_view slot, ResetHandler handler) override;
  void async_renew(std::string_view key, std::string_view slot, std::int64_t window_ms,
                   ResetHandler handler) override;
  void start_presence(std::string key, std::string member) override;
  const RedisHealth* health() const override { return health_.get(); }

 private:
  class State;
  std::shared_ptr<RedisHealth> health_;
  std::shared_ptr<State> state_;  // shared with the calls in flight
};

}  // namespace phlow::limiter::redis
