// RejectedKeys: what a worker remembers of Redis' rejections - for the in-memory
// fallback, and as the over-limit cache while Redis is up.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "limiter/rejected_keys.hpp"

using namespace phlow::limiter;

namespace {

Limit make_limit(bool shadow = false, Algorithm algorithm = Algorithm::sliding_log) {
  Limit l;
  l.algorithm = algorithm;
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
  keys.record(ds, redis_decision({1000, 0, 500}), 10'000 * 1000);
  CHECK(keys.size() == 1);  // the shadow rejection is not enforced: not remembered
  CHECK(keys.rejected_until("k:a", 10'000) == 11'000);
  CHECK(keys.rejected_until("k:a", 10'999) == 11'000);
  CHECK(keys.rejected_until("k:a", 11'000) == 0);  // its time has come
  CHECK(keys.rejected_until("k:b", 10'000) == 0);
  CHECK(keys.rejected_until("k:s", 10'000) == 0);

  keys.record(ds, redis_decision({3000, 0, 0}), 10'500 * 1000);  // a later verdict wins
  CHECK(keys.rejected_until("k:a", 10'500) == 13'500);
  keys.record(ds, redis_decision({0, 0, 0}), 12'000 * 1000);  // Redis allows it again
  CHECK(keys.rejected_until("k:a", 12'000) == 0);
  CHECK(keys.empty());

  keys.record(ds, redis_decision({1000, 1000, 0}), 20'000 * 1000);
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
  keys.record(one, redis_decision({1000}), 50 * 1000);  // full and nothing expired: not kept
  CHECK(keys.size() == RejectedKeys::kMaxKeys);
  CHECK(keys.rejected_until("k:new", 50) == 0);
  keys.record(one, redis_decision({1000}), 500 * 1000);  // pruned at most once a second
  CHECK(keys.rejected_until("k:new", 500) == 0);
  keys.record(one, redis_decision({1000}), 2000 * 1000);  // the even half has expired
  CHECK(keys.size() == RejectedKeys::kMaxKeys / 2 + 1);
  CHECK(keys.rejected_until("k:new", 2000) == 3000);
  CHECK(keys.rejected_until("k:1", 2000) == 100'000);
}

TEST_CASE("over-limit cache: answers for Redis one ms short of the retry time and at most kCacheMaxMs") {
  const Limit log = make_limit();
  const Limit bucket = make_limit(false, Algorithm::token_bucket);
  const Limit window = make_limit(false, Algorithm::sliding_window);
  const Limit shadow = make_limit(true);
  RejectedKeys keys;
  std::vector<Descriptor> one{{&log, "k:log"}};
  keys.record(one, redis_decision({300}), 10'000'000);  // checked at 10 s, retry in 300 ms

  std::vector<Descriptor> two{{&window, "k:other"}, {&log, "k:log"}};
  auto hit = keys.cached_rejection(two, 10'100'000);
  REQUIRE(hit.has_value());
  CHECK(hit->source == DecisionSource::cache);
  CHECK_FALSE(hit->allowed);
  CHECK(hit->rejected_by == 1);
  CHECK(hit->results[1].retry_after_ms == 200);
  CHECK(hit->results[1].reset_ms == 10'300);
  CHECK(hit->results[0].allowed);
  CHECK(keys.cached_rejection(two, 10'298'999).has_value());
  CHECK_FALSE(keys.cached_rejection(two, 10'299'000).has_value());  // Redis decides from here
  CHECK(keys.rejected_until("k:log", 10'299) != 0);                 // the fallback still would

  one[0] = {&bucket, "k:bucket"};
  keys.record(one, redis_decision({60'000}), 20'000'000);  // a long retry: capped
  CHECK(keys.cached_rejection(one, 20'999'999).has_value());
  CHECK_FALSE(keys.cached_rejection(one, 21'000'000).has_value());
  CHECK(keys.rejected_until("k:bucket", 21'000) == 80'000);

  one[0] = {&window, "k:window"};  // sliding_window: not exact enough to cache
  keys.record(one, redis_decision({5000}), 30'000'000);
  CHECK_FALSE(keys.cached_rejection(one, 30'000'001).has_value());
  CHECK(keys.rejected_until("k:window", 30'001) == 35'000);

  one[0] = {&shadow, "k:log"};  // a shadow limit never rejects, cached or not
  CHECK_FALSE(keys.cached_rejection(one, 10'100'000).has_value());

  keys.record(std::vector<Descriptor>{{&log, "k:log2"}}, redis_decision({1}), 40'000'000);
  CHECK_FALSE(keys.cached_rejection(std::vector<Descriptor>{{&log, "k:log2"}}, 40'000'000).has_value());

  keys.clear();
  CHECK(keys.empty());
}
