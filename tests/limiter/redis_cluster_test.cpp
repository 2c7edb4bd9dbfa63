// Redis Cluster from the store's side, against a real 3-master + 3-replica cluster:
// slots computed like the server's, a request whose limits live on three masters
// decided exactly with refunds (a rejected request consumes nothing anywhere), and a
// slot migrated under traffic (-ASK, then -MOVED) without one check failing.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "limiter/distributed_rate_limiter.hpp"
#include "limiter/key_layout.hpp"
#include "limiter/store_factory.hpp"
#include "support/redis_cluster.hpp"
#include "support/store_runner.hpp"

using namespace phlow::limiter;
using phlow::test::ClusterSet;
using phlow::test::RedisServer;
using namespace std::chrono_literals;

namespace {

using Store = phlow::test::StoreRunner;

// Limit names whose keys for `id` are served by `count` different masters.
std::vector<std::string> names_on_different_masters(ClusterSet& cluster, const std::string& id,
                                                    std::size_t count) {
  std::vector<std::string> names;
  std::set<std::uint16_t> ports;
  for (int i = 0; names.size() < count && i < 1000; ++i) {
    const std::string name = "c" + std::to_string(i);
    if (ports.insert(cluster.master_of(KeyLayout().key(name, id)).port()).second) names.push_back(name);
  }
  return names;
}

}  // namespace

TEST_CASE("redis cluster: a request on three masters - the tightest limit exact - rejections refunded") {
  ClusterSet cluster;
  const auto names = names_on_different_masters(cluster, "u", 3);
  REQUIRE(names.size() == 3);
  const Limit tight{.name = names[0], .requests = 5, .window_ms = 3'600'000};
  const Limit window{.name = names[1], .requests = 100, .window_ms = 3'600'000,
                     .algorithm = Algorithm::sliding_window};
  const Limit bucket{.name = names[2], .requests = 100, .window_ms = 3'600'000,
                     .algorithm = Algorithm::token_bucket};
  const std::vector<Descriptor> d{{&tight, KeyLayout().key(tight.name, "u")},
                                  {&window, KeyLayout().key(window.name, "u")},
                                  {&bucket, KeyLayout().key(bucket.name, "u")}};
  Store store(cluster.url());
  REQUIRE(store.store->ready());
  int allowed = 0;
  for (int i = 0; i < 12; ++i) {
    const auto decision = store.check(d);
    REQUIRE(decision);
    CHECK(decision->source == DecisionSource::redis);
    if (decision->allowed) {
      ++allowed;
    } else {
      CHECK(decision->rejected_by == 0);
    }
  }
  CHECK(allowed == 5);
  // The 7 rejected requests consumed nothing on the other two masters (the refunds
  // go out before the next command on each connection).
  const auto look = store.check(d, false);
  REQUIRE(look);
  CHECK(look->results[1].remaining == 100 - 5 - 1);
  CHECK(look->results[2].remaining == 100 - 5 - 1);
  CHECK(log_units(cluster, d[0].key) == "5");
  CHECK(store.health->refunds() == 2 * 7);
  // Reset reaches the key's own master.
  bool reset = false;
  store.store->async_reset(d[0].key, [&](boost::system::error_code ec) { reset = !ec; });
  const auto end = std::chrono::steady_clock::now() + 5s;
  while (!reset && std::chrono::steady_clock::now() < end) store.io.run_for(1ms);
  CHECK(reset);
  CHECK(cluster.command({"EXISTS", d[0].key}) == "0");

  // The library takes the same URL.
  LimiterOptions options;
  options.name = "lib-cluster";
  DistributedRateLimiter limiter(2, 60'000, cluster.url(), options);
  CHECK(limiter.is_allowed("x"));
  CHECK(limiter.is_allowed("x"));
  CHECK_FALSE(limiter.is_allowed("x"));
  CHECK(log_units(cluster, KeyLayout().key("lib-cluster", "x")) == "2");

  // Requests weighing units (cost) on three masters: a rejection refunds exactly the
  // units the other masters took, a weighted sliding_log's entry and total included;
  // a debit (cost_from_response) reaches every master, past the limit.
  const auto weighted_names = names_on_different_masters(cluster, "w", 3);
  REQUIRE(weighted_names.size() == 3);
  const Limit wtight{.name = weighted_names[0], .requests = 10, .window_ms = 3'600'000,
                     .algorithm = Algorithm::sliding_window, .weighted = true};
  const Limit wlog{.name = weighted_names[1], .requests = 100, .window_ms = 3'600'000, .weighted = true};
  const Limit wbucket{.name = weighted_names[2], .requests = 100, .window_ms = 3'600'000,
                      .algorithm = Algorithm::token_bucket, .weighted = true};
  std::vector<Descriptor> w{{&wtight, KeyLayout().key(wtight.name, "w"), 4},
                            {&wlog, KeyLayout().key(wlog.name, "w"), 4},
                            {&wbucket, KeyLayout().key(wbucket.name, "w"), 4}};
  std::string outcomes;
  for (int i = 0; i < 5; ++i) {
    const auto decision = store.check(w);
    REQUIRE(decision);
    outcomes += decision->allowed ? 'A' : 'R';
  }
  CHECK(outcomes == "AARRR");
  for (auto& one : w) one.cost = 1;
  auto weighted_look = store.check(w, false);
  REQUIRE(weighted_look);
  CHECK(weighted_look->results[1].remaining == 100 - 8 - 1);
  CHECK(weighted_look->results[2].remaining == 100 - 8 - 1);
  CHECK(cluster.command({"ZSCORE", w[1].key, "#"}) == "-8");
  CHECK(cluster.command({"ZCARD", w[1].key}) == "3");  // two entries and the total
  for (auto& one : w) one.cost = 50;
  REQUIRE(store.debit(w));
  for (auto& one : w) one.cost = 1;
  weighted_look = store.check(w, false);
  REQUIRE(weighted_look);
  CHECK_FALSE(weighted_look->results[0].allowed);  // 58 units of 10
  CHECK(weighted_look->results[1].remaining == 100 - 58 - 1);
  CHECK(weighted_look->results[2].remaining == 100 - 58 - 1);
  CHECK(cluster.command({"ZSCORE", w[1].key, "#"}) == "-58");

  // Concurrency slots on a key's own master: taken by checks, given back and renewed by
  // commands sent there.
  const Limit slots{.name = "slots", .requests = 2, .window_ms = 60'000, .algorithm = Algorithm::concurrency};
  const std::string slot_key = KeyLayout().key(slots.name, "s");
  const auto take = [&](std::string_view id) {
    const Descriptor one{&slots, slot_key, 1, id};
    const auto decision = store.check(std::span(&one, 1));
    REQUIRE(decision);
    return decision->allowed;
  };
  const auto on_key = [&](auto&& send) {
    std::optional<boost::system::error_code> result;
    send([&](boost::system::error_code ec) { result = ec; });
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!result && std::chrono::steady_clock::now() < until) store.io.run_for(1ms);
    REQUIRE(result);
    return *result;
  };
  CHECK(take("a"));
  CHECK(take("b"));
  CHECK_FALSE(take("c"));
  CHECK(cluster.command({"ZCARD", slot_key}) == "2");
  CHECK_FALSE(on_key([&](auto h) { store.store->async_renew(slot_key, "a", 60'000, h); }));
  CHECK(on_key([&](auto h) { store.store->async_renew(slot_key, "gone", 60'000, h); }) == StoreError::bad_reply);
  CHECK_FALSE(on_key([&](auto h) { store.store->async_release(slot_key, "a", h); }));
  CHECK(take("c"));
  CHECK(cluster.command({"ZRANGE", slot_key, "0", "-1"}) == "b c");
}

TEST_CASE("redis cluster: a slot migrated under traffic - ASK and MOVED followed, no check fails") {
  ClusterSet cluster;
  const Limit limit{.name = "migrating", .requests = 1000, .window_ms = 3'600'000};
  const Descriptor d{&limit, KeyLayout().key("migrating", "u")};
  const std::uint16_t slot = KeyLayout::slot(d.key);
  Store store(cluster.url());
  REQUIRE(store.store->ready());
  int decided = 0;
  const auto check_some = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const auto decision = store.check(std::span(&d, 1));
      REQUIRE(decision);
      CHECK(decision->source == DecisionSource::redis);
      CHECK(decision->allowed);
      ++decided;
    }
  };
  check_some(5);
  RedisServer& from = cluster.master_of(d.key);
  RedisServer* to = nullptr;
  for (auto& node : cluster.nodes()) {
    if (node.get() != &from && node->command({"ROLE"}).starts_with("master")) to = node.get();
  }
  REQUIRE(to != nullptr);
  const std::string s = std::to_string(slot);
  REQUIRE(to->command({"CLUSTER", "SETSLOT", s, "IMPORTING", ClusterSet::id_of(from)}) == "OK");
  REQUIRE(from.command({"CLUSTER", "SETSLOT", s, "MIGRATING", ClusterSet::id_of(*to)}) == "OK");
  // The key moves; the old owner answers -ASK for it from now on.
  REQUIRE(from.command({"MIGRATE", "127.0.0.1", std::to_string(to->port()), "", "0", "5000", "KEYS", d.key}) == "OK");
  check_some(5);
  CHECK(store.health->ask_redirects() >= 1);
  for (auto& node : cluster.nodes()) {
    if (node->command({"ROLE"}).starts_with("master")) {
      CHECK(node->command({"CLUSTER", "SETSLOT", s, "NODE", ClusterSet::id_of(*to)}) == "OK");
    }
  }
  check_some(5);
  CHECK(store.health->moved_redirects() >= 1);
  CHECK(log_units(*to, d.key) == std::to_string(decided));
}
