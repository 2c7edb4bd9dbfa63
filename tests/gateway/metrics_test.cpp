#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "exposition_parser.hpp"
#include "gateway/metrics.hpp"

using namespace std::chrono_literals;
using phlow::gateway::GlobalStats;
using phlow::gateway::Histogram;
using phlow::gateway::kMaxNames;
using phlow::gateway::kOtherId;
using phlow::gateway::NameTable;
using phlow::gateway::Outcome;
using phlow::limiter::StoreError;
using phlow::gateway::render_prometheus;
using phlow::gateway::status_json;
using phlow::gateway::UpstreamError;
using phlow::gateway::WorkerStats;
using phlow::test::Exposition;
using phlow::test::parse_exposition;

namespace {

// WorkerStats is large and aligned: keep it off the test's stack.
std::unique_ptr<WorkerStats> make_stats() { return std::make_unique<WorkerStats>(); }

Exposition scrape(const std::vector<const WorkerStats*>& workers, const NameTable& routes,
                  const NameTable& limits, const GlobalStats& global = {}) {
  const std::string text = render_prometheus(workers, routes, limits, global);
  Exposition e = parse_exposition(text);
  INFO(text);
  REQUIRE(e.error.empty());
  return e;
}

double at(const Exposition& e, const std::string& key) {
  INFO(key);
  REQUIRE(e.samples.contains(key));
  return e.samples.at(key);
}

}  // namespace

TEST_CASE("metrics count requests and decisions by value") {
  NameTable routes, limits;
  const std::size_t api = routes.id("api");
  const std::size_t auth = limits.id("auth");
  auto w = make_stats();
  for (int i = 0; i < 7; ++i) {
    const bool limited = i >= 5;
    w->count_decision(auth, limited ? Outcome::limited : Outcome::allowed);
    w->count_request(api, limited ? 429 : 200);
  }
  const Exposition e = scrape({w.get()}, routes, limits);
  CHECK(at(e, R"(phlow_gateway_decisions_total{limit="auth",outcome="limited"})") == 2);
  CHECK(at(e, R"(phlow_gateway_decisions_total{limit="auth",outcome="allowed"})") == 5);
  CHECK(at(e, R"(phlow_gateway_requests_total{route="api",code_class="2xx"})") == 5);
  CHECK(at(e, R"(phlow_gateway_requests_total{route="api",code_class="4xx"})") == 2);
  // Zero combinations of route and limit counters stay out.
  CHECK_FALSE(e.samples.contains(R"(phlow_gateway_requests_total{route="api",code_class="5xx"})"));
  CHECK_FALSE(e.samples.contains(
      R"(phlow_gateway_decisions_total{limit="auth",outcome="shadow_limited"})"));
}

TEST_CASE("metrics histogram buckets are cumulative with right count and sum") {
  auto w = make_stats();
  w->upstream.observe(300us);
  w->upstream.observe(1ms);  // on a bound: le is inclusive
  w->upstream.observe(7ms);
  w->upstream.observe(20s);
  w->upstream.observe(-5ms);  // a clock step back counts as zero
  NameTable routes, limits;
  const Exposition e = scrape({w.get()}, routes, limits);
  const std::string b = "phlow_gateway_upstream_duration_seconds_bucket";
  CHECK(at(e, b + R"({le="0.0005"})") == 2);
  CHECK(at(e, b + R"({le="0.001"})") == 3);
  CHECK(at(e, b + R"({le="0.005"})") == 3);
  CHECK(at(e, b + R"({le="0.01"})") == 4);
  CHECK(at(e, b + R"({le="10"})") == 4);
  CHECK(at(e, b + R"({le="+Inf"})") == 5);
  CHECK(at(e, "phlow_gateway_upstream_duration_seconds_count") == 5);
  CHECK(at(e, "phlow_gateway_upstream_duration_seconds_sum") == Approx(20.0083));
  CHECK(at(e, "phlow_gateway_redis_check_duration_seconds_count") == 0);
}

TEST_CASE("metrics escape label values") {
  NameTable routes, limits;
  auto w = make_stats();
  w->count_request(routes.id("a\"b\\c\nd"), 503);
  const std::string text = render_prometheus({w.get()}, routes, limits, GlobalStats{});
  CHECK_THAT(text, Catch::Contains(
                       R"(phlow_gateway_requests_total{route="a\"b\\c\nd",code_class="5xx"} 1)"));
  CHECK(parse_exposition(text).error.empty());
}

TEST_CASE("metrics sum two workers") {
  NameTable routes, limits;
  const std::size_t api = routes.id("api");
  const std::size_t auth = limits.id("auth");
  auto a = make_stats();
  auto b = make_stats();
  a->count_request(api, 200);
  b->count_request(api, 204);
  b->count_decision(auth, Outcome::shadow_limited);
  a->redis_check.observe(2ms);
  b->redis_check.observe(3ms);
  a->count_redis_error(StoreError::timeout);
  b->count_upstream_error(UpstreamError::reset);
  a->client_connections = 3;
  b->client_connections = 4;
  b->upstream_connections = 2;
  const Exposition e = scrape({a.get(), b.get()}, routes, limits);
  CHECK(at(e, R"(phlow_gateway_requests_total{route="api",code_class="2xx"})") == 2);
  CHECK(at(e, R"(phlow_gateway_decisions_total{limit="auth",outcome="shadow_limited"})") == 1);
  CHECK(at(e, R"(phlow_gateway_redis_check_duration_seconds_bucket{le="0.0025"})") == 1);
  CHECK(at(e, "phlow_gateway_redis_check_duration_seconds_count") == 2);
  CHECK(at(e, "phlow_gateway_redis_check_duration_seconds_sum") == Approx(0.005));
  CHECK(at(e, R"(phlow_gateway_redis_errors_total{kind="timeout"})") == 1);
  CHECK(at(e, R"(phlow_gateway_redis_errors_total{kind="bad_reply"})") == 0);
  CHECK(at(e, R"(phlow_gateway_upstream_errors_total{kind="reset"})") == 1);
  CHECK(at(e, R"(phlow_gateway_open_connections{side="client"})") == 7);
  CHECK(at(e, R"(phlow_gateway_open_connections{side="upstream"})") == 2);
}

TEST_CASE("metrics render the process-wide facts") {
  NameTable routes, limits;
  auto w = make_stats();
  GlobalStats g;
  g.redis_configured = true;
  g.in_fallback = true;
  g.fallback_transitions = 3;
  g.recoveries = 2;
  g.reloads_ok = 4;
  g.reloads_failed = 1;
  g.config_generation = 5;
  g.uptime_seconds = 12.5;
  g.version = "0.1.0";
  const Exposition e = scrape({w.get()}, routes, limits, g);
  CHECK(at(e, "phlow_gateway_redis_fallback") == 1);
  CHECK(at(e, R"(phlow_gateway_redis_fallback_transitions_total{to="fallback"})") == 3);
  CHECK(at(e, R"(phlow_gateway_redis_fallback_transitions_total{to="redis"})") == 2);
  CHECK(at(e, R"(phlow_gateway_config_reloads_total{result="ok"})") == 4);
  CHECK(at(e, R"(phlow_gateway_config_reloads_total{result="failed"})") == 1);
  CHECK(at(e, "phlow_gateway_config_generation") == 5);
  CHECK(at(e, "phlow_gateway_uptime_seconds") == 12.5);
  CHECK(at(e, R"(phlow_gateway_build_info{version="0.1.0"})") == 1);
  CHECK(e.types.at("phlow_gateway_redis_fallback") == "gauge");
  CHECK(e.types.at("phlow_gateway_upstream_duration_seconds") == "histogram");
}

TEST_CASE("metrics top limited identifiers are ordered and bounded") {
  auto w = make_stats();
  for (int i = 0; i < 5; ++i) w->count_limited_identifier("auth:aaa");
  for (int i = 0; i < 3; ++i) w->count_limited_identifier("auth:bbb");
  w->count_limited_identifier("ip:ccc");
  const auto top = w->top_limited(2);
  REQUIRE(top.size() == 2);
  CHECK(top[0] == std::pair<std::string, std::uint64_t>{"auth:aaa", 5});
  CHECK(top[1] == std::pair<std::string, std::uint64_t>{"auth:bbb", 3});
  // Many one-off identifiers churn through the table; the heavy hitter stays first.
  for (int i = 0; i < 1000; ++i) w->count_limited_identifier("once:" + std::to_string(i));
  for (int i = 0; i < 100; ++i) w->count_limited_identifier("auth:aaa");
  const auto after = w->top_limited(100);
  CHECK(after.size() == WorkerStats::kTopK);
  CHECK(after.front().first == "auth:aaa");
}

TEST_CASE("metrics name table overflows to other and keeps ids") {
  NameTable t;
  for (std::size_t i = 0; i < kOtherId; ++i) CHECK(t.id("r" + std::to_string(i)) == i);
  CHECK(t.id("r7") == 7);
  CHECK(t.id("late") == kOtherId);
  CHECK(t.id("later") == kOtherId);
  const auto names = t.names();
  REQUIRE(names.size() == kMaxNames);
  CHECK(names[kOtherId] == "other");
  auto w = make_stats();
  w->count_request(t.id("late"), 200);
  w->count_request(100000, 200);  // an id past the table counts as other too
  NameTable limits;
  const Exposition e = scrape({w.get()}, t, limits);
  CHECK(at(e, R"(phlow_gateway_requests_total{route="other",code_class="2xx"})") == 2);
}

TEST_CASE("metrics merge a real route named other with the overflow") {
  NameTable t;
  const std::size_t real = t.id("other");
  for (std::size_t i = 1; i < kOtherId; ++i) t.id("r" + std::to_string(i));
  auto w = make_stats();
  w->count_request(real, 200);
  w->count_request(t.id("overflowed"), 200);
  NameTable limits;
  const Exposition e = scrape({w.get()}, t, limits);  // a duplicate sample would fail here
  CHECK(at(e, R"(phlow_gateway_requests_total{route="other",code_class="2xx"})") == 2);
}

TEST_CASE("metrics status json carries the same numbers") {
  NameTable routes, limits;
  const std::size_t api = routes.id("api");
  const std::size_t auth = limits.id("auth");
  auto a = make_stats();
  auto b = make_stats();
  a->count_request(api, 200);
  b->count_request(api, 429);
  b->count_request(api, 404);
  b->count_decision(auth, Outcome::limited);
  for (int i = 0; i < 3; ++i) a->count_limited_identifier("auth:x");
  for (int i = 0; i < 2; ++i) b->count_limited_identifier("auth:x");
  b->count_limited_identifier("auth:y");
  GlobalStats g;
  g.redis_configured = true;
  g.config_generation = 2;
  const auto j = status_json({a.get(), b.get()}, routes, limits, g);
  CHECK(j["routes"]["api"]["requests"] == 3);
  CHECK(j["routes"]["api"]["by_class"]["4xx"] == 2);
  CHECK(j["routes"]["api"]["rate_limited"] == 1);  // the 429, not the 404
  CHECK(j["limits"]["auth"]["limited"] == 1);
  CHECK(j["limits"]["auth"]["allowed"] == 0);
  CHECK(j["redis"]["state"] == "connected");
  CHECK(j["config_generation"] == 2);
  REQUIRE(j["top_limited"].size() == 2);
  CHECK(j["top_limited"][0]["identifier"] == "auth:x");
  CHECK(j["top_limited"][0]["count"] == 5);
}

TEST_CASE("metrics scrapes never tear while a worker counts") {
  NameTable routes, limits;
  const std::size_t api = routes.id("api");
  const std::size_t auth = limits.id("auth");
  auto w = make_stats();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (std::uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      w->count_request(api, i % 3 == 0 ? 429 : 200);
      w->count_decision(auth, i % 3 == 0 ? Outcome::limited : Outcome::allowed);
      w->upstream.observe(std::chrono::microseconds(i % 20000));
      if (i % 64 == 0) w->count_limited_identifier("auth:" + std::to_string(i % 50));
    }
  });
  std::map<std::string, double> last;
  for (int scrape_number = 0; scrape_number < 300; ++scrape_number) {
    const Exposition e = scrape({w.get()}, routes, limits);
    for (const auto& [key, value] : e.samples) {
      if (key.find("uptime") != std::string::npos) continue;
      INFO(key);
      CHECK(value >= last[key]);  // counts only grow
      last[key] = value;
    }
    CHECK(at(e, R"(phlow_gateway_upstream_duration_seconds_bucket{le="+Inf"})") ==
          at(e, "phlow_gateway_upstream_duration_seconds_count"));
    status_json({w.get()}, routes, limits, GlobalStats{});
  }
  stop = true;
  writer.join();
  CHECK(last[R"(phlow_gateway_requests_total{route="api",code_class="2xx"})"] > 0);
}

// Not asserted: prints what counting and scraping cost on this machine.
TEST_CASE("metrics cost of counting and scraping") {
  using Clock = std::chrono::steady_clock;
  NameTable routes, limits;
  for (int i = 0; i < 50; ++i) {
    routes.id("route" + std::to_string(i));
    limits.id("limit" + std::to_string(i));
  }
  auto a = make_stats();
  auto b = make_stats();
  constexpr int kRounds = 1'000'000;
  const auto start = Clock::now();
  for (int i = 0; i < kRounds; ++i) {
    a->count_request(static_cast<std::size_t>(i % 50), 200 + i % 300);
    a->count_decision(static_cast<std::size_t>(i % 50), Outcome::allowed);
    a->upstream.observe(std::chrono::microseconds(i % 30000));
  }
  const double per_request_ns =
      std::chrono::duration<double, std::nano>(Clock::now() - start).count() / kRounds;
  b->count_request(3, 200);
  constexpr int kScrapes = 200;
  std::size_t bytes = 0;
  const auto scrape_start = Clock::now();
  for (int i = 0; i < kScrapes; ++i)
    bytes += render_prometheus({a.get(), b.get()}, routes, limits, GlobalStats{}).size();
  const double per_scrape_us =
      std::chrono::duration<double, std::micro>(Clock::now() - scrape_start).count() / kScrapes;
  WARN("count_request + count_decision + observe: " << per_request_ns << " ns per request; "
       << "render_prometheus (2 workers, 50 routes x 5 classes, 50 limits): " << per_scrape_us
       << " us, " << bytes / kScrapes << " bytes");
  CHECK(a->upstream.snapshot().count == kRounds);
}
