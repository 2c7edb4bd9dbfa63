// RejectedKeys: what the in-memory fallback remembers of Redis' rejections.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "limiter/fallback_backend.hpp"

using namespace phlow::limiter;

namespace {

Limit make_limit(bool shadow = false) {
  Limit l;
  l.name = "l";
  l.requests = 5;
  l.window_ms = 60'000;
  l.shadow = shadow;
  return l;
}

// A Redis decision over `n` limits: limit i rejected with `retry_ms[i]`, or allowed
// when it is 0.
Decision redis_decision(const std::vector<std::int64_t>& retry_ms) {
  Decision d;
  d.source = DecisionSource::redis;
  d.count = retry_ms.size();
  for (std::size_t i = 0; i < d.count; ++i) {
    d.results[i].allowed = retry_ms[i] == 0;
    d.results[i].retry_after_ms = retry_ms[i];
  }
  summarize(d);
  return d;
}

}  // namespace

TEST_CASE("rejected keys: remembered until the retry time Redis gave - allowed forgets") {
  const Limit limit = make_limit();
  const Limit shadow = make_limit(true);
  std::vector<Descriptor> ds{{&limit, "k:a"}, {&limit, "k:b"}, {&shadow, "k:s"}};
  RejectedKeys keys;
  keys.record(ds, redis_decision({1000, 0, 500}), 10'000);
  CHECK(keys.size() == 1);  // the shadow rejection is not enforced: not remembered
  CHECK(keys.rejected_until("k:a", 10'000) == 11'000);
  CHECK(keys.rejected_until("k:a", 10'999) == 11'000);
  CHECK(keys.rejected_until("k:a", 11'000) == 0);  // its time has come
  CHECK(keys.rejected_until("k:b", 10'000) == 0);
  CHECK(keys.rejected_until("k:s", 10'000) == 0);

  keys.record(ds, redis_decision({3000, 0, 0}), 10'500);  // a later verdict wins
  CHECK(keys.rejected_until("k:a", 10'500) == 13'500);
  keys.record(ds, redis_decision({0, 0, 0}), 12'000);  // Redis allows it again
  CHECK(keys.rejected_until("k:a", 12'000) == 0);
  CHECK(keys.empty());

  keys.record(ds, redis_decision({1000, 1000, 0}), 20'000);
  keys.forget("k:b");
  CHECK(keys.rejected_until("k:a", 20'000) != 0);
  CHECK(keys.rejected_until("k:b", 20'000) == 0);
}

TEST_CASE("rejected keys: bounded - expired entries make room and live ones are kept") {
  const Limit limit = make_limit();
  RejectedKeys keys;
  std::vector<Descriptor> one{{&limit, ""}};
  for (std::size_t i = 0; i < RejectedKeys::kMaxKeys; ++i) {
    one[0].key = "k:" + std::to_string(i);
    keys.record(one, redis_decision({i % 2 == 0 ? 100 : 100'000}), 0);
  }
  CHECK(keys.size() == RejectedKeys::kMaxKeys);
  one[0].key = "k:new";
  keys.record(one, redis_decision({1000}), 50);  // full and nothing expired: not kept
  CHECK(keys.size() == RejectedKeys::kMaxKeys);
  CHECK(keys.rejected_until("k:new", 50) == 0);
  keys.record(one, redis_decision({1000}), 500);  // pruned at most once a second
  CHECK(keys.rejected_until("k:new", 500) == 0);
  keys.record(one, redis_decision({1000}), 2000);  // the even half has expired
  CHECK(keys.size() == RejectedKeys::kMaxKeys / 2 + 1);
  CHECK(keys.rejected_until("k:new", 2000) == 3000);
  CHECK(keys.rejected_until("k:1", 2000) == 100'000);
}
