// Batching against a real redis-server: the checks one turn of the event loop issues go
// as few script calls, each decided exactly as if it had come alone, and a batch of
// large checks is cut so that no reply outgrows what the reader accepts.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "limiter/key_layout.hpp"
#include "support/redis_server.hpp"
#include "support/store_runner.hpp"

using namespace phlow::limiter;
using phlow::test::RedisServer;
using namespace std::chrono_literals;

using Store = phlow::test::StoreRunner;

namespace {
// The Redis server's clock in Unix ms, to the second (entries are seeded relative to it).
std::int64_t server_now_ms(const RedisServer& server) {
  const std::string time = server.command({"TIME"});
  return std::stoll(time.substr(0, time.find(' '))) * 1000;
}
}  // namespace

TEST_CASE("redis batch: one turn's checks go as few script calls and stay exact") {
  RedisServer server;
  Store store(server.url(), 2s);
  REQUIRE(store.store->ready());
  const Limit log{.name = "b_log", .requests = 10, .window_ms = 3'600'000};
  const Limit bucket{.name = "b_bucket", .requests = 7, .window_ms = 3'600'000,
                     .algorithm = Algorithm::token_bucket};
  const Limit window{.name = "b_window", .requests = 5, .window_ms = 3'600'000,
                     .algorithm = Algorithm::sliding_window};
  std::vector<std::vector<Descriptor>> checks;
  for (int i = 0; i < 60; ++i) {
    // Every request on the same identifier: 3 limits; the tightest (5) decides.
    checks.push_back({{&log, KeyLayout().key(log.name, "same")},
                      {&bucket, KeyLayout().key(bucket.name, "same")},
                      {&window, KeyLayout().key(window.name, "same")}});
  }
  const auto calls_before = store.health->script_calls();
  const auto decisions = store.check_all(checks);
  int allowed = 0;
  for (std::size_t i = 0; i < decisions.size(); ++i) {
    INFO("check " << i);
    REQUIRE(decisions[i].has_value());
    CHECK(decisions[i]->source == DecisionSource::redis);
    if (decisions[i]->allowed) {
      ++allowed;
      CHECK(decisions[i]->results[2].remaining == 4 - static_cast<std::int64_t>(i));
    } else {
      CHECK(decisions[i]->rejected_by == 2);
    }
  }
  CHECK(allowed == 5);
  // The first check went alone (nothing was in flight), the rest as batches.
  const auto calls = store.health->script_calls() - calls_before;
  CHECK(calls >= 2);
  CHECK(calls <= 4);
  // A rejected request consumed nothing: each key holds exactly the 5 allowed.
  CHECK(log_units(server, KeyLayout().key(log.name, "same")) == "5");
  CHECK(server.command({"HGET", KeyLayout().key(window.name, "same"), "c"}) == "5");
}

TEST_CASE("redis batch: checks of 16 limits are cut into calls whose replies the reader accepts") {
  RedisServer server;
  Store store(server.url(), 2s);
  REQUIRE(store.store->ready());
  std::vector<Limit> limits;
  for (int l = 0; l < 16; ++l) {
    limits.push_back(Limit{.name = "wide" + std::to_string(l), .requests = 1000, .window_ms = 60'000});
  }
  std::vector<std::vector<Descriptor>> checks;
  for (int i = 0; i < 64; ++i) {
    std::vector<Descriptor> d;
    for (const Limit& l : limits) d.push_back({&l, KeyLayout().key(l.name, "id" + std::to_string(i % 8))});
    checks.push_back(std::move(d));
  }
  const auto calls_before = store.health->script_calls();
  const auto decisions = store.check_all(checks);
  for (const auto& d : decisions) {
    REQUIRE(d.has_value());  // a reply past 1024 elements would have failed the connection
    CHECK(d->allowed);
    CHECK(d->source == DecisionSource::redis);
  }
  // 64 checks of 16 limits answer 64 * 64 integers: at least 5 calls of at most 1024.
  const auto calls = store.health->script_calls() - calls_before;
  CHECK(calls >= 5);
  CHECK(calls < 64);
  CHECK(store.health->state() == RedisState::connected);
  CHECK(log_units(server, KeyLayout().key("wide15", "id0")) == "8");
}

TEST_CASE("redis batch: a call's admitted requests share one sliding_log entry and older entries still count") {
  RedisServer server;
  Store store(server.url(), 2s);
  REQUIRE(store.store->ready());
  const Limit log{.name = "b_shared", .requests = 10, .window_ms = 3'600'000};
  const std::string key = KeyLayout().key(log.name, "k");
  // Three requests written as earlier versions did: one member per request, no total.
  const std::int64_t then_ms = server_now_ms(server) - 1000;
  server.command({"ZADD", key, std::to_string(then_ms), "1001", std::to_string(then_ms), "1002",
                  std::to_string(then_ms), "1003"});
  std::vector<std::vector<Descriptor>> checks(20, std::vector<Descriptor>{{&log, key}});
  const auto calls_before = store.health->script_calls();
  const auto decisions = store.check_all(checks);
  const auto calls = store.health->script_calls() - calls_before;
  int allowed = 0;
  for (const auto& d : decisions) {
    REQUIRE(d.has_value());
    CHECK(d->source == DecisionSource::redis);
    if (d->allowed) {
      ++allowed;
    } else {
      // The oldest entries leave first: the ones written a second before the checks.
      CHECK(d->results[0].retry_after_ms > 3'600'000 - 1000 - 2000);
      CHECK(d->results[0].retry_after_ms <= 3'600'000 - 1000);
    }
  }
  CHECK(allowed == 7);
  CHECK(log_units(server, key) == "10");
  // The 7 admitted requests are in at most one entry per call (they went in `calls`
  // calls), beside the 3 old members and the total "#".
  const std::int64_t members = std::stoll(server.command({"ZCARD", key}));
  CHECK(members <= 3 + static_cast<std::int64_t>(calls) + 1);
  CHECK(calls < 7);
  std::int64_t units = 0;
  std::istringstream entries(server.command({"ZRANGEBYSCORE", key, "(0", "+inf"}));
  for (std::string m; entries >> m;) {
    const auto colon = m.find(':');
    units += colon == std::string::npos ? 1 : std::stoll(m.substr(colon + 1));
  }
  CHECK(units == 10);
}

TEST_CASE("redis batch: a sliding_log total that no longer adds up is recounted from the entries") {
  RedisServer server;
  Store store(server.url(), 2s);
  REQUIRE(store.store->ready());
  const Limit log{.name = "b_recount", .requests = 10, .window_ms = 60'000};
  const std::string key = KeyLayout().key(log.name, "k");
  const std::int64_t now_ms = server_now_ms(server);
  // A total of 1, but three entries that left the window (another writer added them
  // without the total) and two that are in it: 1 - 3 < 0 cannot be right.
  const std::string old_ms = std::to_string(now_ms - 120'000);
  const std::string recent_ms = std::to_string(now_ms - 1000);
  server.command({"ZADD", key, "-1", "#", old_ms, "11", old_ms, "12", old_ms, "13", recent_ms, "21", recent_ms, "22"});
  const std::vector<std::vector<Descriptor>> one{{Descriptor{&log, key}}};
  const auto decisions = store.check_all(one);
  REQUIRE(decisions[0].has_value());
  CHECK(decisions[0]->source == DecisionSource::redis);
  CHECK(decisions[0]->allowed);
  CHECK(decisions[0]->results[0].remaining == 10 - 2 - 1);
  CHECK(log_units(server, key) == "3");
}
