// Redis Sentinel from the library's side, against real sentinels: the master found
// through them (any of them may be down), their own password, a master name they do
// not know, and a replica refused by ROLE.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include "limiter/distributed_rate_limiter.hpp"
#include "limiter/key_layout.hpp"
#include "limiter/store_factory.hpp"
#include "redis/handshake.hpp"
#include "support/redis_sentinel.hpp"

using namespace phlow::limiter;
using phlow::test::SentinelSet;

namespace {

// Waits (3 s at most) for a store on `url` to connect or fail; returns the failure.
std::string connect_failure(const std::string& url, const std::string& sentinel_password = "") {
  boost::asio::io_context io;
  RedisOptions options;
  options.url = std::get<RedisUrl>(parse_redis_url(url));
  options.sentinel_password = sentinel_password;
  auto health = std::make_shared<RedisHealth>(options.url.endpoint(), false);
  auto store = make_store(io.get_executor(), options, health);
  store->start();
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!store->ready() && health->last_failure().empty() && std::chrono::steady_clock::now() < end) {
    io.run_for(std::chrono::milliseconds(10));
  }
  std::string failure = store->ready() ? "" : health->last_failure();
  store->stop();
  io.run_for(std::chrono::milliseconds(20));
  return failure;
}

}  // namespace

TEST_CASE("redis sentinel: the library counts on the master the sentinels name, with its password") {
  SentinelSet sentinels("sentinel-secret");
  // The first sentinel listed is down: the next one answers.
  sentinels.sentinels()[0]->kill();
  LimiterOptions options;
  options.name = "via-sentinel";
  options.sentinel_password = "sentinel-secret";
  DistributedRateLimiter limiter(3, 60'000, sentinels.url(), options);
  CHECK(limiter.is_allowed("a"));
  CHECK(limiter.is_allowed("a"));
  CHECK(limiter.is_allowed("a"));
  CHECK_FALSE(limiter.is_allowed("a"));
  CHECK(log_units(sentinels.current_master(), KeyLayout().key("via-sentinel", "a")) == "3");

  const std::string wrong_password = connect_failure(sentinels.url(), "not-it");
  CHECK(wrong_password.find("AUTH") != std::string::npos);
  CHECK(wrong_password.find("not-it") == std::string::npos);
  CHECK(connect_failure(sentinels.url()).find("NOAUTH") != std::string::npos);
}

TEST_CASE("redis sentinel: an unknown master name is a connection failure that says so") {
  SentinelSet sentinels;
  std::string url = sentinels.url();
  url.replace(url.rfind('/'), std::string::npos, "/nosuchmaster");
  const std::string why = connect_failure(url);
  CHECK(why.find("no sentinel named the master \"nosuchmaster\"") != std::string::npos);
  CHECK(connect_failure(sentinels.url()).empty());
}

TEST_CASE("redis sentinel: ROLE refuses a replica where a master is needed") {
  const RedisUrl url = std::get<RedisUrl>(parse_redis_url("redis+sentinel://s/m"));
  redis::Handshake h(url, "return 1", true);
  CHECK(h.accept({}, redis::Value{redis::Value::Type::string, 0, "redis_version:7.0.15\r\n", {}}).empty());
  CHECK(h.next().find("ROLE") != std::string::npos);
  redis::Value replica{redis::Value::Type::array, 0, "", {}};
  replica.elements.push_back({redis::Value::Type::string, 0, "slave", {}});
  CHECK(h.accept({}, replica) == "ROLE: the node is a slave, not the master");
  redis::Handshake m(url, "return 1", true);
  (void)m.accept({}, redis::Value{redis::Value::Type::string, 0, "redis_version:7.0.15\r\n", {}});
  redis::Value master{redis::Value::Type::array, 0, "", {}};
  master.elements.push_back({redis::Value::Type::string, 0, "master", {}});
  CHECK(m.accept({}, master).empty());
  CHECK(m.next().find("SCRIPT") != std::string::npos);
}
