// End-to-end Redis Sentinel: a master, a replica and three sentinels (real
// redis-server processes), two gateways that find the master through the sentinels,
// exact between them; then the master killed with SIGKILL under load: no request
// fails, and checks are decided in Redis on the promoted replica soon after the
// sentinels name it (the time is reported).
#include <catch2/catch.hpp>

#include <atomic>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "limiter/descriptor.hpp"
#include "metrics_scrape.hpp"
#include "support/demo_upstream.hpp"
#include "support/e2e.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/load_generator.hpp"
#include "support/redis_sentinel.hpp"

using namespace phlow::test;
using namespace std::chrono_literals;

namespace {

std::string sentinel_yaml(const DemoUpstream& upstream, const std::string& url) {
  return "listen: \"127.0.0.1:0\"\nthreads: 2\naccess_log: \"off\"\nupstreams:\n  app: { url: \"" +
         upstream.url() +
         "\" }\nlimits:\n"
         "  exact: { requests: 10, window: 1m, key: token_hash }\n"
         "  flow: { requests: 1000000, window: 1m, key: \"header:X-Phase\" }\n"
         "routes:\n"
         "  - match: { path_prefix: /exact }\n    upstream: app\n    limits: [exact]\n"
         "  - match: { path_prefix: / }\n    upstream: app\n    limits: [flow]\n"
         "redis: { url: \"" + url + "\", timeout: 1s }\n";
}

}  // namespace

TEST_CASE("e2e redis sentinel: exact across two gateways and a SIGKILLed master costs no request") {
  SentinelSet sentinels;
  DemoUpstream upstream;
  const std::string yaml = sentinel_yaml(upstream, sentinels.url());
  GatewayProcess first(yaml, kNoRedis);
  GatewayProcess second(yaml, kNoRedis);
  for (GatewayProcess* g : {&first, &second}) {
    INFO(g->process().output());
    REQUIRE(g->process().wait_for_output("Connected to Redis", 5s));
  }
  const auto ready = nlohmann::json::parse(http_request(first.admin_port(), "GET", "/readyz").body);
  CHECK(ready.at("redis_topology") == "sentinel");
  CHECK(ready.at("redis") == "connected");

  // Exact: concurrent clients through both gateways get the budget, no more.
  const HeaderList token = {{"Authorization", "Bearer sentinel-exact"}};
  const RaceResult raced = race({first.port(), second.port()}, 4, 6, "/exact", token);
  CHECK(raced.allowed == 10);
  CHECK(raced.other == 0);
  RedisServer& master = sentinels.current_master();
  const std::string exact_key = "phlow:ratelimit:exact:" + phlow::limiter::sha256_hex("sentinel-exact");
  CHECK(log_units(master, exact_key) == "10");

  // Load through both gateways; the phase header names a fresh key after the kill, so
  // that its appearance on the new master shows checks decided there again.
  std::atomic<int> phase{0};
  const auto plan = [&](std::uint64_t) {
    LoadRequest r;
    r.headers = {{"X-Phase", "phase" + std::to_string(phase.load())}};
    return r;
  };
  auto load = start_load({first.port(), second.port()}, plan, 4, 300, 30s);
  std::this_thread::sleep_for(500ms);
  const std::uint16_t old_port = master.port();
  const auto killed_at = std::chrono::steady_clock::now();
  master.kill();
  phase = 1;
  REQUIRE(sentinels.wait_for_new_master(old_port, 20s));
  const auto switched_at = std::chrono::steady_clock::now();
  RedisServer& promoted = sentinels.current_master();
  REQUIRE(promoted.port() != old_port);
  const bool back_in_redis = wait_until(
      [&] { return promoted.command({"KEYS", "phlow:ratelimit:flow:*phase1*"}) != ""; }, 10s);
  const auto back_at = std::chrono::steady_clock::now();
  const auto to_ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::cout << "FIGURE sentinel failover: sentinels named the new master " << to_ms(switched_at - killed_at)
            << " ms after SIGKILL; checks decided on it " << to_ms(back_at - switched_at)
            << " ms after that\n";
  CHECK(back_in_redis);
  CHECK(back_at - switched_at <= 3s);
  std::this_thread::sleep_for(500ms);
  const LoadSummary s = stop_load(load);
  INFO("sent " << s.sent << " dropped " << s.dropped << " 5xx " << s.server_errors);
  CHECK(s.sent > 200);
  CHECK(s.dropped == 0);
  CHECK(s.count(200) == s.sent);
  for (GatewayProcess* g : {&first, &second}) {
    CHECK(wait_until([&] {
      return metric(scrape(g->admin_port()), "phlow_gateway_redis_master_changes_total") >= 1;
    }, 5s));
    CHECK(g->process().output().find("Redis master changed: now 127.0.0.1:" +
                                     std::to_string(promoted.port())) != std::string::npos);
  }
}
