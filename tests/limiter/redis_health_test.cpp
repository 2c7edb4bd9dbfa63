// RedisHealth: the process-wide Redis state the gateway waits on before it listens.
#include <catch2/catch.hpp>

#include <chrono>

#include "limiter/redis_health.hpp"

using namespace phlow::limiter;
using namespace std::chrono_literals;

TEST_CASE("redis health: connected only while every registered connection is up") {
  RedisHealth health("127.0.0.1:6379", false);
  const int first = health.add_connection();
  CHECK(health.wait_settled(1ms) == RedisState::connecting);
  health.report(first, true, "");
  CHECK(health.state() == RedisState::connected);
  // A connection registered after the others were up (a worker started later) is not
  // up yet: waiting for Redis must wait for it too.
  const int second = health.add_connection();
  CHECK(health.state() == RedisState::connecting);
  CHECK(health.wait_settled(1ms) == RedisState::connecting);
  health.report(second, true, "");
  CHECK(health.wait_settled(1ms) == RedisState::connected);
  health.report(second, false, "refused");
  CHECK(health.state() == RedisState::fallback);
  CHECK(health.fallback_transitions() == 0);  // counted only where transitions are logged
}

TEST_CASE("redis health: the live gateways seen in Redis are kept while it is down") {
  RedisHealth health("127.0.0.1:6379");
  CHECK(health.live_instances() == 0);
  const int id = health.add_connection();
  health.report(id, true, "");
  health.set_live_instances(3);
  health.report(id, false, "refused");
  CHECK(health.state() == RedisState::fallback);
  CHECK(health.live_instances() == 3);
  CHECK(health.fallback_transitions() == 1);
}
