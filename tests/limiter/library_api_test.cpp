// The seed's library API, in memory and with a custom store.
#include <catch2/catch.hpp>
#include <map>

#include "limiter/distributed_rate_limiter.hpp"

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
  CHECK_THROWS_WITH(DistributedRateLimiter(1, 1000, "rediss://host", {}), Catch::Contains("TLS"));
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
