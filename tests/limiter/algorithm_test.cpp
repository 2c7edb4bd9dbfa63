#include <catch2/catch.hpp>

#include "limiter/algorithm.hpp"

using namespace phlow::limiter;

TEST_CASE("sliding_log allows exactly N per window") {
  Limit limit{.name = "t", .requests = 3, .window_ms = 1000};
  LimitState s;
  const std::int64_t t0 = 1'000'000'000;
  for (int i = 0; i < 3; ++i) {
    auto r = evaluate(limit, s, t0 * 1000);
    REQUIRE(r.allowed);
    CHECK(r.remaining == 2 - i);
    consume(limit, s, t0 * 1000);
  }
  auto r = evaluate(limit, s, t0 * 1000);
  CHECK_FALSE(r.allowed);
  CHECK(r.retry_after_ms == 1000);
}
