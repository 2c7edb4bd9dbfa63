// End-to-end cost limits (SPEC.md "Limits for agent workloads"): `cost: header:NAME`
// (a request weighs that many units), BAD_COST, and `cost_from_response` (what the
// upstream reports it used is consumed after the response head). The real gateway in
// front of the real demo upstream (its /usage endpoint reports X-Usage-Tokens), in
// memory and against a real redis-server.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "metrics_scrape.hpp"
#include "support/demo_upstream.hpp"
#include "support/e2e.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"

using namespace phlow::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// A gateway config with one route "/" limited by `limits` (the YAML lines of the
// `limits:` section, all applied), with or without Redis.
std::string cost_yaml(const DemoUpstream& upstream, const std::string& limits, const std::string& route_limits,
                      const std::optional<RedisServer>& redis, const std::string& extra = "") {
  return "listen: \"127.0.0.1:0\"\nthreads: 1\naccess_log: \"off\"\nupstreams:\n  app: { url: \"" +
         upstream.url() + "\" }\nlimits:\n" + limits +
         "routes:\n  - match: { path_prefix: / }\n    upstream: app\n    limits: " + route_limits + "\n" +
         (redis ? exact_redis_yaml(redis->url()) : std::string()) + extra;
}

HeaderList tenant_cost(const std::string& tenant, std::optional<std::string> cost) {
  HeaderList h = {{"X-Tenant", tenant}};
  if (cost) h.emplace_back("X-Phlow-Cost", *cost);
  return h;
}

std::uint64_t upstream_requests(const DemoUpstream& upstream) {
  return json::parse(http_request(upstream.port(), "GET", "/count").body).at("requests");
}

void wait_connected(GatewayProcess& gateway, const std::optional<RedisServer>& redis) {
  if (redis) REQUIRE(gateway.process().wait_for_output("Connected to Redis", 5s));
}

}  // namespace

TEST_CASE("e2e cost: a request weighs its cost header's units and one that does not fit consumes nothing") {
  const bool with_redis = GENERATE(false, true);
  const std::string algorithm = GENERATE(std::string("sliding_log"), std::string("sliding_window"),
                                         std::string("token_bucket"));
  INFO((with_redis ? "redis " : "memory ") << algorithm);
  std::optional<RedisServer> redis;
  if (with_redis) redis.emplace();
  DemoUpstream upstream;
  GatewayProcess gateway(cost_yaml(upstream,
                                   "  units: { requests: 10, window: 1m, key: \"header:X-Tenant\", algorithm: " +
                                       algorithm + ", cost: \"header:X-Phlow-Cost\" }\n",
                                   "[units]", redis),
                         kNoRedis);
  wait_connected(gateway, redis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  HttpResponse r = http_request(port, "GET", "/", tenant_cost("a", "4"));
  CHECK(r.status == 200);
  CHECK(r.header("X-RateLimit-Limit") == "10");
  CHECK(r.header("X-RateLimit-Remaining") == "6");
  r = http_request(port, "GET", "/", tenant_cost("a", "4"));
  CHECK(r.status == 200);
  CHECK(r.header("X-RateLimit-Remaining") == "2");
  // 3 units do not fit in the 2 left: rejected, and nothing consumed...
  r = http_request(port, "GET", "/", tenant_cost("a", "3"));
  CHECK(r.status == 429);
  CHECK(json::parse(r.body).at("limit") == "units");
  // ...so 2 still fit, and then a request without the header weighs 1 and does not.
  CHECK(http_request(port, "GET", "/", tenant_cost("a", "2")).status == 200);
  CHECK(http_request(port, "GET", "/", tenant_cost("a", std::nullopt)).status == 429);
  // Another tenant has its own 10: a full-budget request fits at once.
  r = http_request(port, "GET", "/", tenant_cost("b", "10"));
  CHECK(r.status == 200);
  CHECK(r.header("X-RateLimit-Remaining") == "0");
  CHECK(http_request(port, "GET", "/", tenant_cost("c", std::nullopt)).status == 200);
  CHECK(http_request(port, "GET", "/", tenant_cost("c", std::nullopt)).header("X-RateLimit-Remaining") == "8");
  const Exposition e = scrape(gateway.admin_port());
  CHECK(metric(e, R"(phlow_gateway_limit_units_total{limit="units",source="request"})") == 4 + 4 + 2 + 10 + 1 + 1);
  CHECK(metric(e, R"(phlow_gateway_decisions_total{limit="units",outcome="limited"})") == 2);
}

TEST_CASE("e2e cost: a bad cost header gets 400 BAD_COST, is never forwarded and consumes nothing") {
  const bool with_redis = GENERATE(false, true);
  INFO((with_redis ? "redis" : "memory"));
  std::optional<RedisServer> redis;
  if (with_redis) redis.emplace();
  DemoUpstream upstream;
  GatewayProcess gateway(
      cost_yaml(upstream,
                "  units: { requests: 10, window: 1m, key: \"header:X-Tenant\", cost: \"header:X-Phlow-Cost\" }\n"
                "  bucket: { requests: 100, window: 1m, key: \"header:X-Tenant\", algorithm: token_bucket, burst: 5,"
                " cost: \"header:X-Bucket-Cost\" }\n"
                "  watch: { requests: 3, window: 1m, key: \"header:X-Tenant\", shadow: true,"
                " cost: \"header:X-Watch-Cost\" }\n",
                "[units, bucket, watch]", redis),
      kNoRedis);
  wait_connected(gateway, redis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  const std::uint64_t before = upstream_requests(upstream);
  const std::vector<std::pair<std::string, HeaderList>> bad = {
      {"letters", tenant_cost("a", "abc")},
      {"negative", tenant_cost("a", "-1")},
      {"zero", tenant_cost("a", "0")},
      {"over requests", tenant_cost("a", "11")},
      {"fraction", tenant_cost("a", "1.5")},
      {"plus sign", tenant_cost("a", "+3")},
      {"inner space", tenant_cost("a", "1 2")},
      {"huge", tenant_cost("a", "99999999999999999999999")},
      {"repeated", {{"X-Tenant", "a"}, {"X-Phlow-Cost", "2"}, {"X-Phlow-Cost", "3"}}},
      {"over the bucket's burst", {{"X-Tenant", "a"}, {"X-Bucket-Cost", "6"}}},
  };
  HttpConnection connection(port);
  for (const auto& [name, headers] : bad) {
    INFO("cost: " << name);
    const HttpResponse r = connection.request("POST", "/", headers, "payload");
    CHECK(r.status == 400);
    CHECK(json::parse(r.body) == json{{"error", "Invalid request cost"}, {"code", "BAD_COST"}});
    CHECK_FALSE(r.has_header("X-RateLimit-Limit"));
    CHECK(r.keep_alive);
  }
  CHECK(upstream_requests(upstream) == before + 1);  // only this call's own request
  // A shadow limit never refuses: its bad cost counts one unit.
  CHECK(http_request(port, "GET", "/", {{"X-Tenant", "a"}, {"X-Watch-Cost", "nonsense"}}).status == 200);
  // Nothing was consumed by the refused requests: 9 of 10 units are left.
  const HttpResponse r = http_request(port, "GET", "/", tenant_cost("a", "9"));
  CHECK(r.status == 200);
  CHECK(r.header("X-RateLimit-Remaining") == "0");
  const Exposition e = scrape(gateway.admin_port());
  CHECK(metric(e, R"(phlow_gateway_cost_errors_total{side="request"})") == static_cast<double>(bad.size()));
  CHECK(metric(e, R"(phlow_gateway_requests_total{route="/",code_class="4xx"})") == static_cast<double>(bad.size()));
}

TEST_CASE("e2e cost: concurrent requests never admit more units than the limit - two workers in memory, two gateways in Redis") {
  const bool with_redis = GENERATE(false, true);
  INFO((with_redis ? "two gateways, redis" : "one gateway, two workers, memory"));
  std::optional<RedisServer> redis;
  if (with_redis) redis.emplace();
  DemoUpstream upstream;
  std::string yaml = cost_yaml(
      upstream, "  units: { requests: 200, window: 1m, key: \"header:X-Tenant\", cost: \"header:X-Phlow-Cost\" }\n",
      "[units]", redis);
  yaml.replace(yaml.find("threads: 1"), 10, "threads: 2");
  GatewayProcess first(yaml, kNoRedis);
  std::optional<GatewayProcess> second_gateway;
  if (with_redis) second_gateway.emplace(yaml, kNoRedis);
  GatewayProcess& second = with_redis ? *second_gateway : first;
  wait_connected(first, redis);
  wait_connected(second, redis);
  INFO(first.process().output());
  INFO(second.process().output());
  constexpr int kThreads = 6;
  constexpr int kEach = kSanitized ? 8 : 25;
  std::atomic<std::int64_t> allowed_units{0};
  std::atomic<int> other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kThreads; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t) + 7);
      HttpConnection connection(t % 2 == 0 ? first.port() : second.port());
      for (int i = 0; i < kEach; ++i) {
        const std::int64_t cost = 1 + static_cast<std::int64_t>(random() % 9);
        const HttpResponse r = connection.request("GET", "/", tenant_cost("shared", std::to_string(cost)));
        if (r.status == 200) {
          allowed_units += cost;
        } else if (r.status != 429) {
          ++other;
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  CHECK(other == 0);
  CHECK(allowed_units <= 200);
  // One-unit requests fill what is left, exactly.
  std::int64_t filled = 0;
  while (http_request(first.port(), "GET", "/", tenant_cost("shared", "1")).status == 200) {
    ++filled;
    REQUIRE(filled <= 200);
  }
  CHECK(allowed_units + filled == 200);
  CHECK(http_request(second.port(), "GET", "/", tenant_cost("shared", "1")).status == 429);
  if (redis) {
    // Redis holds the units, not one entry per unit: the total member says 200.
    CHECK(redis->command({"ZSCORE", "phlow:ratelimit:units:shared", "#"}) == "-200");
  }
}

TEST_CASE("e2e cost: cost_from_response overdraws the budget until the window frees it") {
  const bool with_redis = GENERATE(false, true);
  INFO((with_redis ? "redis" : "memory"));
  std::optional<RedisServer> redis;
  if (with_redis) redis.emplace();
  DemoUpstream upstream;
  GatewayProcess gateway(
      cost_yaml(upstream,
                "  tokens: { requests: 100, window: 2s, key: \"header:X-Tenant\","
                " cost_from_response: \"header:X-Usage-Tokens\" }\n",
                "[tokens]", redis),
      kNoRedis);
  wait_connected(gateway, redis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  const HeaderList tenant = {{"X-Tenant", "agent"}};
  // Admitted for one unit each; the responses then report 60 tokens each.
  HttpResponse r = http_request(port, "GET", "/usage?tokens=60", tenant);
  CHECK(r.status == 200);
  CHECK(r.header("X-Usage-Tokens") == "60");  // relayed as is
  CHECK(r.header("X-RateLimit-Remaining") == "99");
  r = http_request(port, "GET", "/usage?tokens=60", tenant);
  CHECK(r.status == 200);
  CHECK(r.header("X-RateLimit-Remaining") == "38");  // 100 - 1 - 60 - 1
  // 122 units used of 100: rejected, and the admin API shows the budget spent.
  r = http_request(port, "GET", "/usage?tokens=1", tenant);
  CHECK(r.status == 429);
  const json state = json::parse(http_request(gateway.admin_port(), "GET", "/admin/limits/tokens/agent").body);
  CHECK(state.at("remaining") == 0);
  CHECK(state.at("used") == 100);
  CHECK(state.at("store") == (with_redis ? "redis" : "memory"));
  // A response value that is not a number is counted and ignored; so is a missing one.
  CHECK(http_request(port, "GET", "/usage?bad=1", {{"X-Tenant", "other"}}).status == 200);
  CHECK(http_request(port, "GET", "/", {{"X-Tenant", "other"}}).status == 200);
  CHECK(http_request(port, "GET", "/", {{"X-Tenant", "other"}}).header("X-RateLimit-Remaining") == "97");
  Exposition e = scrape(gateway.admin_port());
  CHECK(metric(e, R"(phlow_gateway_limit_units_total{limit="tokens",source="response"})") == 120);
  CHECK(metric(e, R"(phlow_gateway_limit_units_total{limit="tokens",source="request"})") == 5);
  CHECK(metric(e, R"(phlow_gateway_cost_errors_total{side="response"})") == 1);
  // The window frees the units: 2 s after they were used, the agent is allowed again.
  std::this_thread::sleep_for(2100ms);
  CHECK(http_request(port, "GET", "/", tenant).status == 200);
  // A streamed answer that reports its usage in a trailer field, after its body: read
  // once the whole response is in. 150 units are cut to one window's budget (100).
  r = http_request(port, "GET", "/usage?tokens=150&trailer=1", tenant);
  CHECK(r.status == 200);
  CHECK(r.body == "streamed answer\n");
  CHECK(http_request(port, "GET", "/", tenant).status == 429);
  e = scrape(gateway.admin_port());
  CHECK(metric(e, R"(phlow_gateway_limit_units_total{limit="tokens",source="response"})") == 120 + 100);
}

TEST_CASE("e2e cost: the access log records the request's cost and the response's") {
  DemoUpstream upstream;
  std::string yaml = cost_yaml(upstream,
                               "  tokens: { requests: 1000, window: 1h, key: \"header:X-Tenant\","
                               " cost: \"header:X-Phlow-Cost\", cost_from_response: \"header:X-Usage-Tokens\" }\n",
                               "[tokens]", std::nullopt);
  const std::string off = "access_log: \"off\"";
  yaml.replace(yaml.find(off), off.size(), "access_log: stdout");
  GatewayProcess gateway(yaml, kNoRedis);
  INFO(gateway.process().output());
  CHECK(http_request(gateway.port(), "GET", "/usage?tokens=250", tenant_cost("a", "7")).status == 200);
  CHECK(gateway.process().wait_for_output(R"("decision":"allowed","limit":"","identifier":"","cost":7,"response_cost":250})", 5s));
  CHECK(http_request(gateway.port(), "GET", "/", tenant_cost("a", "x")).status == 400);
  CHECK(gateway.process().wait_for_output(R"("status":400)", 5s));
  CHECK(gateway.process().output().find(R"("decision":"bad_cost")") != std::string::npos);
}
