// Batching against a real redis-server: the checks one turn of the event loop issues go
// as few script calls, each decided exactly as if it had come alone, and a batch of
// large checks is cut so that no reply outgrows what the reader accepts.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "limiter/key_layout.hpp"
#include "limiter/store_factory.hpp"
#include "support/redis_server.hpp"

using namespace phlow::limiter;
using phlow::test::RedisServer;
using namespace std::chrono_literals;

namespace {

struct Store {
  explicit Store(const std::string& url) {
    RedisOptions options;
    options.url = std::get<RedisUrl>(parse_redis_url(url));
    options.timeout = 2s;
    health = std::make_shared<RedisHealth>(options.url.endpoint(), false);
    store = make_store(io.get_executor(), options, health);
    store->start();
    const auto end = std::chrono::steady_clock::now() + 5s;
    while (!store->ready() && std::chrono::steady_clock::now() < end) io.run_for(10ms);
  }
  ~Store() {
    store->stop();
    io.run_for(20ms);
  }
  // Issues every check of `checks` from one handler (one loop turn) and runs the loop
  // until all are answered; nullopt for a check that failed.
  std::vector<std::optional<Decision>> check_all(const std::vector<std::vector<Descriptor>>& checks) {
    std::vector<std::optional<Decision>> out(checks.size());
    std::size_t done = 0;
    boost::asio::post(io, [&] {
      for (std::size_t i = 0; i < checks.size(); ++i) {
        store->async_check(checks[i], true, [&, i](boost::system::error_code ec, Decision d) {
          ++done;
          if (!ec) out[i] = d;
        });
      }
    });
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (done < checks.size() && std::chrono::steady_clock::now() < end) io.run_for(1ms);
    return out;
  }
  boost::asio::io_context io;
  std::shared_ptr<RedisHealth> health;
  std::unique_ptr<AsyncStore> store;
};

}  // namespace

TEST_CASE("redis batch: one turn's checks go as few script calls and stay exact") {
  RedisServer server;
  Store store(server.url());
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
  CHECK(server.command({"ZCARD", KeyLayout().key(log.name, "same")}) == "5");
  CHECK(server.command({"HGET", KeyLayout().key(window.name, "same"), "c"}) == "5");
}

TEST_CASE("redis batch: checks of 16 limits are cut into calls whose replies the reader accepts") {
  RedisServer server;
  Store store(server.url());
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
  CHECK(server.command({"ZCARD", KeyLayout().key("wide15", "id0")}) == "8");
}
