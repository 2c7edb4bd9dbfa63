// End-to-end Redis Cluster: 3 masters + 3 replicas (real redis-server processes),
// two gateways; a route whose three limits live on three masters stays exact under
// concurrent clients and a rejected request consumes nothing on the other masters;
// the admin API inspects and resets on the key's master; a master killed with
// SIGKILL under load costs no request, and checks return to Redis on the promoted
// replica soon after the promotion (the time is reported).
#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "limiter/descriptor.hpp"
#include "limiter/key_layout.hpp"
#include "metrics_scrape.hpp"
#include "support/demo_upstream.hpp"
#include "support/e2e.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/load_generator.hpp"
#include "support/redis_cluster.hpp"

using namespace phlow::test;
using namespace std::chrono_literals;
using phlow::limiter::KeyLayout;

TEST_CASE("e2e redis cluster: three limits on three masters exact - admin reset - a SIGKILLed master costs no request") {
  ClusterSet cluster;
  DemoUpstream upstream;
  const std::string token = "cluster-token";
  const std::string id = phlow::limiter::sha256_hex(token);
  // Limit names whose keys for this token live on three different masters.
  std::vector<std::string> names;
  std::set<std::uint16_t> ports;
  for (int i = 0; names.size() < 3 && i < 1000; ++i) {
    const std::string name = "l" + std::to_string(i);
    if (ports.insert(cluster.master_of(KeyLayout().key(name, id)).port()).second) names.push_back(name);
  }
  REQUIRE(names.size() == 3);
  const std::string yaml =
      "listen: \"127.0.0.1:0\"\nthreads: 2\naccess_log: \"off\"\nupstreams:\n  app: { url: \"" +
      upstream.url() + "\" }\nlimits:\n  " + names[0] + ": { requests: 10, window: 1h, key: token_hash }\n  " +
      names[1] + ": { requests: 1000, window: 1h, key: token_hash }\n  " + names[2] +
      ": { requests: 1000, window: 1h, key: token_hash }\n"
      "  flow: { requests: 1000000, window: 1m, key: \"header:X-Phase\" }\n"
      "routes:\n  - match: { path_prefix: /flow }\n    upstream: app\n    limits: [flow]\n"
      "  - match: { path_prefix: / }\n    upstream: app\n    limits: [" + names[0] + ", " + names[1] + ", " +
      names[2] + "]\nredis: { url: \"" + cluster.url() + "\", timeout: 1s }\n";
  GatewayProcess first(yaml, kNoRedis);
  GatewayProcess second(yaml, kNoRedis);
  for (GatewayProcess* g : {&first, &second}) {
    INFO(g->process().output());
    REQUIRE(g->process().wait_for_output("Connected to Redis", 5s));
  }
  const auto ready = nlohmann::json::parse(http_request(first.admin_port(), "GET", "/readyz").body);
  CHECK(ready.at("redis_topology") == "cluster");
  CHECK(ready.at("redis") == "connected");

  const RaceResult raced = race({first.port(), second.port()}, 4, 6, "/", {{"Authorization", "Bearer " + token}});
  // What the gateways said while racing (a check Redis did not decide says why).
  INFO("first gateway:\n" << first.process().output());
  INFO("second gateway:\n" << second.process().output());
  CHECK(raced.allowed == 10);
  CHECK(raced.other == 0);
  // The 14 rejected requests consumed nothing on the other masters, once refunds settle.
  for (const std::string& name : names) {
    const std::string key = KeyLayout().key(name, id);
    CHECK(wait_until([&] { return log_units(cluster, key) == "10"; }, 2s));
  }
  // Each rejection Redis decided refunds the two other masters' calls; a rejection the
  // over-limit cache decided made no call.
  double refunds = 0, cached = 0;
  for (GatewayProcess* g : {&first, &second}) {
    const auto text = scrape(g->admin_port());
    refunds += metric(text, "phlow_gateway_redis_refunds_total");
    cached += metric(text, "phlow_gateway_over_limit_cache_hits_total");
  }
  CHECK(refunds == 2 * (14 - cached));
  CHECK(refunds >= 2);

  // Inspect and reset through the admin API, on the key's own master.
  const std::string target = "/admin/limits/" + names[0] + "/" + id;
  CHECK(nlohmann::json::parse(http_request(first.admin_port(), "GET", target).body).at("used") == 10);
  REQUIRE(http_request(first.admin_port(), "DELETE", target).status == 200);
  CHECK(cluster.command({"EXISTS", KeyLayout().key(names[0], id)}) == "0");
  // (the gateway whose admin API reset it: the other may answer from its over-limit
  // cache for up to a second)
  CHECK(http_request(first.port(), "GET", "/", {{"Authorization", "Bearer " + token}}).status == 200);

  // Load on /flow; after the kill the phase names a fresh key on the killed master's
  // slots, so that its appearance on the promoted replica shows checks back in Redis.
  RedisServer& doomed = cluster.master_of(KeyLayout().key("flow", "phase0"));
  std::string after;
  for (int i = 0; after.empty() && i < 1000; ++i) {
    const std::string label = "phase1-" + std::to_string(i);
    if (&cluster.master_of(KeyLayout().key("flow", label)) == &doomed) after = label;
  }
  REQUIRE(!after.empty());
  std::atomic<bool> killed{false};
  const auto plan = [&](std::uint64_t) {
    LoadRequest r;
    r.target = "/flow";
    r.headers = {{"X-Phase", killed ? after : std::string("phase0")}};
    return r;
  };
  auto load = start_load({first.port(), second.port()}, plan, 4, 300, 40s);
  std::this_thread::sleep_for(500ms);
  const std::uint16_t doomed_port = doomed.port();
  const auto killed_at = std::chrono::steady_clock::now();
  doomed.kill();
  killed = true;
  const std::string after_key = KeyLayout().key("flow", after);
  // Promoted: a live node serves the slot again.
  const bool promoted = wait_until([&] {
    try {
      return cluster.master_of(after_key).port() != doomed_port;
    } catch (const std::exception&) {
      return false;
    }
  }, 20s);
  const auto promoted_at = std::chrono::steady_clock::now();
  if (!promoted) {
    for (auto& node : cluster.nodes()) {
      if (node->running()) UNSCOPED_INFO(node->port() << ": " << node->command({"CLUSTER", "NODES"}));
    }
  }
  REQUIRE(promoted);
  const bool back = wait_until([&] { return cluster.command({"EXISTS", after_key}) == "1"; }, 10s);
  const auto back_at = std::chrono::steady_clock::now();
  const auto to_ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::cout << "FIGURE cluster failover: replica promoted " << to_ms(promoted_at - killed_at)
            << " ms after SIGKILL; checks decided on it " << to_ms(back_at - promoted_at) << " ms after that\n";
  CHECK(back);
  CHECK(back_at - promoted_at <= 3s);
  std::this_thread::sleep_for(500ms);
  const LoadSummary s = stop_load(load);
  INFO("sent " << s.sent << " dropped " << s.dropped << " 5xx " << s.server_errors);
  CHECK(s.sent > 200);
  CHECK(s.dropped == 0);
  CHECK(s.count(200) == s.sent);
  CHECK(wait_until([&] {
    return metric(scrape(first.admin_port()), "phlow_gateway_redis_master_changes_total") >= 1;
  }, 5s));
}
