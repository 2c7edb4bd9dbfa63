// The seed's library API, in memory and with a custom store.
#include <catch2/catch.hpp>
#include <map>

#include "limiter/distributed_rate_limiter.hpp"
#include "limiter/key_layout.hpp"
#include "limiter/store_factory.hpp"
#include <boost/asio/io_context.hpp>
#include <optional>

#include "support/redis_server.hpp"

using namespace phlow::limiter;

TEST_CASE("library: check_and_raise throws the seed's message") {
  auto clock = std::make_shared<ManualClock>();
  LimiterOptions o;
  o.clock = clock;
  DistributedRateLimiter limiter(100, 60'000, "", o);
  for (int i = 0; i < 100; ++i) limiter.check_and_raise("ip:1.2.3.4");
  try {
    limiter.check_and_raise("ip:1.2.3.4");
    FAIL("expected RateLimitError");
  } catch (const RateLimitError& e) {
    CHECK(std::string(e.what()) == "Rate limit exceeded: 100 requests per 60.0 seconds");
    CHECK(e.retry_after_ms() == 60'000);
  }
  CHECK(limiter.is_allowed("ip:5.6.7.8"));
  clock->advance_ms(60'000);
  CHECK(limiter.is_allowed("ip:1.2.3.4"));
  CHECK(limiter.redis_state() == RedisState::disabled);
}

TEST_CASE("library: bad arguments are clear errors") {
  CHECK_THROWS_AS(DistributedRateLimiter(0, 1000, "", {}), std::invalid_argument);
  CHECK_THROWS_AS(DistributedRateLimiter(-1, 1000, "", {}), std::invalid_argument);
  CHECK_THROWS_AS(DistributedRateLimiter(1, 0, "", {}), std::invalid_argument);
  CHECK_THROWS_WITH(DistributedRateLimiter(1, 1000, "redis://host:notaport", {}),
                    Catch::Contains("port"));
  CHECK_THROWS_WITH(DistributedRateLimiter(1, 1000, "redis+cluster://host/1", {}),
                    Catch::Contains("only database 0"));
  LimiterOptions bad_tls;
  bad_tls.tls.ca_file = "/nonexistent/ca.pem";
  CHECK_THROWS_WITH(DistributedRateLimiter(1, 1000, "rediss://host", bad_tls),
                    Catch::Contains("redis.tls: ca_file: cannot load"));
  DistributedRateLimiter limiter(1, 1000, "", {});
  CHECK_THROWS_AS(limiter.is_allowed(""), std::invalid_argument);
}

namespace {
// The seed's "custom storage backend": a map-backed fixed-window store.
class CountingBackend final : public RateLimitBackend {
 public:
  Decision check(std::span<const Descriptor> ds) override {
    Decision d;
    d.source = DecisionSource::custom;
    d.count = ds.size();
    for (std::size_t i = 0; i < ds.size(); ++i) {
      const auto used = counts_[ds[i].key];
      d.results[i] = {used < ds[i].limit->requests, false, ds[i].limit->requests,
                      std::max<std::int64_t>(0, ds[i].limit->requests - used - 1), 0, 0};
    }
    summarize(d);
    if (d.allowed) {
      for (const auto& desc : ds) ++counts_[desc.key];
    }
    return d;
  }
  void reset(std::string_view key) override { counts_.erase(std::string(key)); }
  LimitResult peek(const Descriptor&) override { return {}; }
  std::map<std::string, std::int64_t> counts_;
};
}  // namespace

TEST_CASE("library: a custom RateLimitBackend is used as is") {
  auto store = std::make_shared<CountingBackend>();
  LimiterOptions o;
  o.name = "custom";
  DistributedRateLimiter limiter(2, 1000, store, o);
  CHECK(limiter.is_allowed("u"));
  CHECK(limiter.is_allowed("u"));
  CHECK_FALSE(limiter.is_allowed("u"));
  CHECK(store->counts_.at("phlow:ratelimit:custom:u") == 2);
  limiter.reset("u");
  CHECK(limiter.is_allowed("u"));
}

TEST_CASE("library: make_store is the one place a store is built") {
  boost::asio::io_context io;
  phlow::test::RedisServer redis;
  auto plain = std::get<phlow::limiter::RedisUrl>(phlow::limiter::parse_redis_url(redis.url()));
  auto health = std::make_shared<phlow::limiter::RedisHealth>(plain.endpoint());
  std::unique_ptr<phlow::limiter::AsyncStore> store =
      phlow::limiter::make_store(io.get_executor(), phlow::limiter::RedisOptions{.url = plain}, health);
  REQUIRE(store != nullptr);
  store->start();
  // A check through the interface, decided by the real server.
  const phlow::limiter::Limit limit{.name = "factory", .requests = 1, .window_ms = 60'000};
  const phlow::limiter::Descriptor d{&limit, phlow::limiter::KeyLayout().key("factory", "x")};
  std::optional<phlow::limiter::Decision> first, second;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!store->ready() && std::chrono::steady_clock::now() < deadline) io.run_for(std::chrono::milliseconds(10));
  REQUIRE(store->ready());
  store->async_check(std::span(&d, 1), phlow::limiter::CheckMode::consume, [&](boost::system::error_code ec, phlow::limiter::Decision dd) {
    if (!ec) first = dd;
  });
  while (!first && std::chrono::steady_clock::now() < deadline) io.run_for(std::chrono::milliseconds(10));
  store->async_check(std::span(&d, 1), phlow::limiter::CheckMode::consume, [&](boost::system::error_code ec, phlow::limiter::Decision dd) {
    if (!ec) second = dd;
  });
  while (!second && std::chrono::steady_clock::now() < deadline) io.run_for(std::chrono::milliseconds(10));
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->allowed);
  CHECK(first->source == phlow::limiter::DecisionSource::redis);
  CHECK_FALSE(second->allowed);
  CHECK(log_units(redis, d.key) == "1");
  store->stop();
  io.run_for(std::chrono::milliseconds(50));
}
