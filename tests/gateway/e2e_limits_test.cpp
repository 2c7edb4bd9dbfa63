// End-to-end limits: the real gateway binary in front of the real demo upstream (and a
// real redis-server where Redis is the point), every identifier, the exact 429,
// composed and shadow limits, and a budget shared by two gateways through Redis.
#include <catch2/catch.hpp>

#include "support/base64url.hpp"
#include "support/e2e.hpp"

#include <chrono>
#include <csignal>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>
#include <atomic>

#include "limiter/descriptor.hpp"
#include "metrics_scrape.hpp"
#include "support/demo_upstream.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"

using namespace phlow::test;

namespace {


std::string gateway_yaml(const DemoUpstream& upstream, const std::string& rest) {
  return "listen: \"127.0.0.1:0\"\nthreads: 1\naccess_log: \"off\"\nupstreams:\n  app: { url: \"" +
         upstream.url() + "\" }\n" + rest;
}

// Waits (5 s at most) until the gateway's /metrics shows `value` for `sample`.
bool wait_for_metric(GatewayProcess& gateway, const std::string& sample, double value) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    if (metric(scrape(gateway.admin_port()), sample) == value) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// One route "/" with `route_limits` ("[a, b]") after the `limits:` section `limits`.
std::string one_route(const std::string& limits, const std::string& route_limits) {
  return "limits:\n" + limits + "routes:\n  - match: { path_prefix: / }\n    upstream: app\n" +
         "    limits: " + route_limits + "\n";
}

int get_status(std::uint16_t port, const HeaderList& headers, std::string_view target = "/") {
  return http_request(port, "GET", target, headers).status;
}

// Sends `n` requests and returns how many were allowed (200); every other answer must
// be a 429.
int count_allowed(std::uint16_t port, int n, const HeaderList& headers,
                  std::string_view target = "/") {
  int allowed = 0;
  for (int i = 0; i < n; ++i) {
    const int status = get_status(port, headers, target);
    INFO("request " << i << " status " << status);
    REQUIRE((status == 200 || status == 429));
    if (status == 200) ++allowed;
  }
  return allowed;
}

using phlow::test::base64url;

// An unsigned JWT ("alg":"none") whose payload holds {"agent_id": agent}.
std::string unsigned_jwt(const std::string& agent) {
  const nlohmann::json payload = {{"sub", "someone"}, {"agent_id", agent}};
  return base64url(R"({"alg":"none","typ":"JWT"})") + "." + base64url(payload.dump()) + ".";
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Runs a test case once in memory and once against a real redis-server: the Lua
// script and the in-memory algorithms must answer alike.
struct Backend {
  std::optional<RedisServer> redis;
  explicit Backend(bool with_redis) {
    if (with_redis) redis.emplace();
  }
  std::string yaml() const {
    return redis ? exact_redis_yaml(redis->url()) : "";
  }
  // Requires that a Redis-backed gateway really decides in Redis.
  void require_connected(GatewayProcess& gateway) const {
    if (redis) REQUIRE(gateway.process().wait_for_output("Connected to Redis", std::chrono::seconds(5)));
  }
};

std::size_t count_occurrences(const std::string& text, std::string_view what) {
  std::size_t count = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) {
    ++count;
  }
  return count;
}

}  // namespace

TEST_CASE("e2e limits: token_hash gives each token its own budget and skips requests without one") {
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  per_token: { requests: 2, window: 1m, key: token_hash }\n", "[per_token]")), kNoRedis);
  INFO(gateway.process().output());
  const HeaderList a = {{"Authorization", "Bearer token-a"}};
  const HeaderList b = {{"Authorization", "Bearer token-b"}};
  CHECK(count_allowed(gateway.port(), 3, a) == 2);
  CHECK(count_allowed(gateway.port(), 3, b) == 2);
  // No bearer token: the limit does not apply at all.
  for (int i = 0; i < 4; ++i) {
    const HttpResponse r = http_request(gateway.port(), "GET", "/", {});
    CHECK(r.status == 200);
    CHECK_FALSE(r.has_header("X-RateLimit-Limit"));
  }
  CHECK(get_status(gateway.port(), {{"Authorization", "Basic dXNlcjpwYXNz"}}) == 200);
}

TEST_CASE("e2e limits: agent_id comes from the header else from the claim of an unsigned JWT") {
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  per_agent: { requests: 2, window: 1m, key: agent_id }\n", "[per_agent]") +
      "identifiers:\n  agent_id: { header: X-Phlow-Agent-Id, jwt_claim: agent_id }\n"), kNoRedis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  CHECK(count_allowed(port, 3, {{"X-Phlow-Agent-Id", "agent-1"}}) == 2);
  // The JWT claim names the same agent: the same, spent budget.
  CHECK(get_status(port, {{"Authorization", "Bearer " + unsigned_jwt("agent-1")}}) == 429);
  // Another agent in a JWT: its own budget.
  CHECK(count_allowed(port, 3, {{"Authorization", "Bearer " + unsigned_jwt("agent-2")}}) == 2);
  // The header wins over the claim.
  CHECK(get_status(port, {{"X-Phlow-Agent-Id", "agent-3"},
                          {"Authorization", "Bearer " + unsigned_jwt("agent-2")}}) == 200);
  // Neither header nor claim (an opaque token): the limit is skipped.
  CHECK(count_allowed(port, 4, {{"Authorization", "Bearer not-a-jwt"}}) == 4);
  CHECK(count_allowed(port, 4, {}) == 4);
}

TEST_CASE("e2e limits: api_key from the header and from the query share one budget") {
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  per_key: { requests: 3, window: 1m, key: api_key }\n", "[per_key]") +
      "identifiers:\n  api_key: { header: X-API-Key, query: api_key }\n"), kNoRedis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  CHECK(get_status(port, {{"X-API-Key", "key-1"}}) == 200);
  CHECK(get_status(port, {}, "/items?api_key=key-1") == 200);
  CHECK(get_status(port, {{"X-API-Key", "key-1"}}) == 200);
  CHECK(get_status(port, {}, "/items?x=1&api_key=key-1") == 429);
  CHECK(get_status(port, {{"X-API-Key", "key-1"}}) == 429);
  CHECK(get_status(port, {{"X-API-Key", "key-2"}}) == 200);
  CHECK(count_allowed(port, 5, {}, "/items?other=key-1") == 5);
}

TEST_CASE("e2e limits: header:X-Tenant counts by that header's value") {
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  per_tenant: { requests: 2, window: 1m, key: \"header:X-Tenant\" }\n", "[per_tenant]")),
      kNoRedis);
  INFO(gateway.process().output());
  CHECK(count_allowed(gateway.port(), 3, {{"X-Tenant", "acme"}}) == 2);
  CHECK(count_allowed(gateway.port(), 3, {{"X-Tenant", "globex"}}) == 2);
  CHECK(count_allowed(gateway.port(), 4, {}) == 4);
}

TEST_CASE("e2e limits: ip counts by the peer address") {
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  per_ip: { requests: 3, window: 1m, key: ip }\n", "[per_ip]")), kNoRedis);
  INFO(gateway.process().output());
  CHECK(count_allowed(gateway.port(), 3, {}) == 3);
  const HttpResponse limited = http_request(gateway.port(), "GET", "/", {});
  CHECK(limited.status == 429);
  CHECK(nlohmann::json::parse(limited.body).at("limit") == "per_ip");
}

TEST_CASE("e2e limits: a random X-Forwarded-For from an untrusted peer does not escape the ip limit") {
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  per_ip: { requests: 3, window: 1m, key: ip }\n", "[per_ip]")), kNoRedis);
  INFO(gateway.process().output());
  std::mt19937 random(42);
  std::uniform_int_distribution<int> octet(1, 254);
  int allowed = 0;
  for (int i = 0; i < 8; ++i) {
    const std::string spoofed = std::to_string(octet(random)) + "." + std::to_string(octet(random)) +
                                "." + std::to_string(octet(random)) + "." + std::to_string(i + 1);
    const int status = get_status(gateway.port(), {{"X-Forwarded-For", spoofed}});
    REQUIRE((status == 200 || status == 429));
    if (status == 200) ++allowed;
  }
  CHECK(allowed == 3);
}

TEST_CASE("e2e limits: behind a trusted proxy the right-most untrusted X-Forwarded-For address is the client") {
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  per_ip: { requests: 3, window: 1m, key: ip }\n", "[per_ip]") +
      "identifiers:\n  ip: { trusted_proxies: [127.0.0.1/32] }\n"), kNoRedis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  CHECK(count_allowed(port, 4, {{"X-Forwarded-For", "203.0.113.7"}}) == 3);
  CHECK(count_allowed(port, 4, {{"X-Forwarded-For", "203.0.113.8"}}) == 3);
  // A client-supplied left part does not change the identity...
  CHECK(get_status(port, {{"X-Forwarded-For", "198.51.100.1, 203.0.113.7"}}) == 429);
  // ...and trusted hops to the right are walked past.
  CHECK(get_status(port, {{"X-Forwarded-For", "203.0.113.7, 127.0.0.1"}}) == 429);
  CHECK(get_status(port, {{"X-Forwarded-For", "203.0.113.8, 198.51.100.2"}}) == 200);
  // IPv6 clients are counted by their /64: rotating the interface ID does not help.
  CHECK(get_status(port, {{"X-Forwarded-For", "2001:db8:0:1::1"}}) == 200);
  CHECK(get_status(port, {{"X-Forwarded-For", "2001:db8:0:1::2"}}) == 200);
  CHECK(get_status(port, {{"X-Forwarded-For", "2001:db8:0:1:aaaa::3"}}) == 200);
  CHECK(get_status(port, {{"X-Forwarded-For", "2001:db8:0:1::4"}}) == 429);
  CHECK(get_status(port, {{"X-Forwarded-For", "2001:db8:0:2::1"}}) == 200);
}

TEST_CASE("e2e limits: the 429 carries the exact status body and headers") {
  const bool with_redis = GENERATE(false, true);
  INFO("with Redis: " << with_redis);
  Backend backend(with_redis);
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  strict: { requests: 2, window: 10s, key: token_hash }\n", "[strict]") +
      "response_headers: [x-ratelimit, ietf]\n" + backend.yaml()), kNoRedis);
  INFO(gateway.process().output());
  backend.require_connected(gateway);
  const HeaderList token = {{"Authorization", "Bearer exact"}};
  for (int i = 0; i < 2; ++i) {
    const HttpResponse ok = http_request(gateway.port(), "GET", "/", token);
    REQUIRE(ok.status == 200);
    CHECK(ok.header("X-RateLimit-Limit") == "2");
    CHECK(ok.header("X-RateLimit-Remaining") == std::to_string(1 - i));
    CHECK(ok.header("RateLimit-Policy") == R"("strict";q=2;w=10)");
    CHECK_FALSE(ok.has_header("Retry-After"));
  }
  const std::int64_t before = unix_now();
  const HttpResponse r = http_request(gateway.port(), "GET", "/", token);
  const std::int64_t after = unix_now();
  REQUIRE(r.status == 429);
  CHECK(r.header("Content-Type") == "application/json");
  const auto body = nlohmann::json::parse(r.body);
  CHECK(body.size() == 4);
  CHECK(body.at("error") == "Rate limit exceeded");
  CHECK(body.at("code") == "RATE_LIMIT");
  CHECK(body.at("limit") == "strict");
  REQUIRE(body.at("retry_after").is_number_integer());
  const auto retry_after = body.at("retry_after").get<std::int64_t>();
  CHECK(retry_after >= 1);
  CHECK(retry_after <= 10);

  CHECK(r.header("X-RateLimit-Limit") == "2");
  CHECK(r.header("X-RateLimit-Remaining") == "0");
  const std::int64_t reset = std::stoll(r.header("X-RateLimit-Reset"));
  CHECK(reset >= before);
  CHECK(reset <= after + 10 + 1);
  CHECK(r.header("Retry-After") == std::to_string(retry_after));
  CHECK(r.header("RateLimit-Policy") == R"("strict";q=2;w=10)");
  CHECK(r.header("RateLimit") == R"("strict";r=0;t=)" + std::to_string(retry_after));
}

TEST_CASE("e2e limits: a rejection by one limit of a route consumes nothing from the others") {
  const bool with_redis = GENERATE(false, true);
  INFO("with Redis: " << with_redis);
  Backend backend(with_redis);
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  auth: { requests: 5, window: 1m, key: token_hash }\n"
      "  role: { requests: 2, window: 1m, key: agent_id }\n", "[auth, role]") +
      "response_headers: [x-ratelimit, ietf]\n" + backend.yaml()), kNoRedis);
  INFO(gateway.process().output());
  backend.require_connected(gateway);
  const auto port = gateway.port();
  auto as_agent = [](const std::string& agent) {
    return HeaderList{{"Authorization", "Bearer shared-token"}, {"X-Phlow-Agent-Id", agent}};
  };
  CHECK(count_allowed(port, 2, as_agent("agent-a")) == 2);
  for (int i = 0; i < 4; ++i) {
    const HttpResponse r = http_request(port, "GET", "/", as_agent("agent-a"));
    REQUIRE(r.status == 429);
    CHECK(nlohmann::json::parse(r.body).at("limit") == "role");
    CHECK(r.header("RateLimit-Policy") == R"("role";q=2;w=60)");
  }
  // auth has seen 2 allowed requests, not 6: 3 remain for the same token.
  const HttpResponse b1 = http_request(port, "GET", "/", as_agent("agent-b"));
  REQUIRE(b1.status == 200);
  CHECK(b1.header("X-RateLimit-Remaining") == "1");  // role of agent-b: 1, auth: 2
  CHECK(get_status(port, as_agent("agent-b")) == 200);
  const HttpResponse c1 = http_request(port, "GET", "/", as_agent("agent-c"));
  REQUIRE(c1.status == 200);
  CHECK(c1.header("RateLimit").starts_with(R"("auth";r=0;)"));
  const HttpResponse c2 = http_request(port, "GET", "/", as_agent("agent-c"));
  REQUIRE(c2.status == 429);
  CHECK(nlohmann::json::parse(c2.body).at("limit") == "auth");
}

TEST_CASE("e2e limits: a shadow limit never rejects while the other limit of the route does") {
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  watch: { requests: 1, window: 1m, key: token_hash, shadow: true }\n"
      "  tenant: { requests: 3, window: 1m, key: \"header:X-Tenant\" }\n", "[watch, tenant]")),
      kNoRedis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  CHECK(count_allowed(port, 6, {{"Authorization", "Bearer watched"}}) == 6);
  const HeaderList both = {{"Authorization", "Bearer watched"}, {"X-Tenant", "acme"}};
  CHECK(count_allowed(port, 3, both) == 3);
  const HttpResponse r = http_request(port, "GET", "/", both);
  REQUIRE(r.status == 429);
  CHECK(nlohmann::json::parse(r.body).at("limit") == "tenant");
  CHECK(r.header("X-RateLimit-Limit") == "3");
}

TEST_CASE("e2e limits: two gateways share one Redis budget and fall back to memory when it dies") {
  RedisServer redis;
  DemoUpstream upstream;
  const std::string yaml = gateway_yaml(upstream, one_route(
      "  shared: { requests: 10, window: 1m, key: token_hash }\n", "[shared]") +
      exact_redis_yaml(redis.url()));
  GatewayProcess first(yaml, kNoRedis);
  GatewayProcess second(yaml, kNoRedis);
  REQUIRE(first.process().wait_for_output("Connected to Redis", std::chrono::seconds(5)));
  REQUIRE(second.process().wait_for_output("Connected to Redis", std::chrono::seconds(5)));
  INFO(first.process().output());
  INFO(second.process().output());
  const HeaderList token = {{"Authorization", "Bearer redis-token"}};
  int allowed = 0;
  for (int i = 0; i < 20; ++i) {
    const HttpResponse r =
        http_request(i % 2 == 0 ? first.port() : second.port(), "GET", "/", token);
    REQUIRE((r.status == 200 || r.status == 429));
    if (r.status == 200) {
      ++allowed;
      CHECK(r.header("X-RateLimit-Remaining") == std::to_string(10 - allowed));
    } else {
      CHECK(nlohmann::json::parse(r.body).at("limit") == "shared");
      CHECK(r.header("X-RateLimit-Remaining") == "0");
      const int retry_after = std::stoi(r.header("Retry-After"));
      CHECK(retry_after >= 1);
      CHECK(retry_after <= 60);
    }
  }
  CHECK(allowed == 10);

  // Concurrent requests through both gateways: still exactly the budget.
  const HeaderList racing = {{"Authorization", "Bearer racing"}};
  const RaceResult raced = race({first.port(), second.port()}, 4, 5, "/", racing);
  CHECK(raced.allowed == 10);
  CHECK(raced.other == 0);

  const std::string key = "phlow:ratelimit:shared:" + phlow::limiter::sha256_hex("redis-token");
  CHECK(redis.command({"TYPE", key}) == "zset");
  CHECK(log_units(redis, key) == "10");
  const std::int64_t now_ms = unix_now() * 1000;
  // The oldest entry (the member "#" holding the total is scored below every entry).
  const std::string oldest = redis.command({"ZRANGEBYSCORE", key, "(0", "+inf", "WITHSCORES", "LIMIT", "0", "1"});
  const std::int64_t score = std::stoll(oldest.substr(oldest.rfind(' ') + 1));
  CHECK(score > now_ms - 60'000);
  CHECK(score < now_ms + 2'000);
  CHECK(std::stoll(redis.command({"PTTL", key})) > 0);

  // Each gateway writes itself into the presence set; both see 2 live gateways, so
  // that during an outage each enforces half of every limit (fallback_share: auto).
  for (GatewayProcess* gateway : {&first, &second}) {
    CHECK(wait_for_metric(*gateway, "phlow_gateway_redis_live_gateways", 2));
    CHECK(metric(scrape(gateway->admin_port()), "phlow_gateway_redis_fallback_share") == 2);
  }
  CHECK(redis.command({"ZCARD", "phlow:ratelimit:gateways"}) == "2");
  CHECK(std::stoll(redis.command({"PTTL", "phlow:ratelimit:gateways"})) > 0);

  redis.kill();
  const HeaderList other = {{"Authorization", "Bearer after-redis"}};
  for (GatewayProcess* gateway : {&first, &second}) {
    const HttpResponse r = http_request(gateway->port(), "GET", "/", other);
    CHECK(r.status == 200);
    CHECK(r.header("X-RateLimit-Limit") == "5");  // the part this instance enforces
    CHECK(count_allowed(gateway->port(), 12, other) == 4);
    REQUIRE(gateway->process().wait_for_output(
        "Failed to connect to Redis, falling back to in-memory rate limiting",
        std::chrono::seconds(5)));
  }
  CHECK(count_allowed(first.port(), 6, {{"Authorization", "Bearer late"}}) == 5);
  for (GatewayProcess* gateway : {&first, &second}) {
    CHECK(count_occurrences(gateway->process().output(),
                            "Failed to connect to Redis, falling back to in-memory rate limiting") ==
          1);
  }
}

TEST_CASE("e2e limits: the gateway connects to Redis before it listens - the first request is decided there") {
  RedisServer redis;
  DemoUpstream upstream;
  const auto started = std::chrono::steady_clock::now();
  std::string yaml = gateway_yaml(upstream,
      "limits:\n"
      "  shared: { requests: 5, window: 1m, key: token_hash }\n"
      "  wide: { requests: 100, window: 1m, key: token_hash }\n"
      "routes:\n"
      "  - match: { path_prefix: /wide }\n    upstream: app\n    limits: [wide]\n"
      "  - match: { path_prefix: / }\n    upstream: app\n    limits: [shared]\n" +
      exact_redis_yaml(redis.url()));
  yaml.replace(yaml.find("threads: 1"), 10, "threads: 4");  // every worker's connection
  GatewayProcess gateway(yaml, kNoRedis);
  const auto listening_after = std::chrono::steady_clock::now() - started;
  const std::string log = gateway.process().output();
  INFO(log);
  // The log line of the connection comes before the one of the listener (the startup
  // waits for Redis, at most 1.1 s, with the workers already running).
  const auto connected = log.find("Connected to Redis");
  REQUIRE(connected != std::string::npos);
  CHECK(connected < log.find("phlow-gateway listening on"));
  WARN("FIGURE gateway with Redis listening after "
       << std::chrono::duration_cast<std::chrono::milliseconds>(listening_after).count() << " ms");
  const HttpResponse r = http_request(gateway.port(), "GET", "/", {{"Authorization", "Bearer first"}});
  CHECK(r.status == 200);
  CHECK(r.header("X-RateLimit-Remaining") == "4");
  CHECK(log_units(redis, "phlow:ratelimit:shared:" + phlow::limiter::sha256_hex("first")) == "1");
  // New connections spread over the 4 workers: each one's first check is in Redis too.
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 2; ++i) http_request(gateway.port(), "GET", "/wide", {{"Authorization", "Bearer spread"}});
    });
  }
  for (auto& client : clients) client.join();
  CHECK(log_units(redis, "phlow:ratelimit:wide:" + phlow::limiter::sha256_hex("spread")) == "16");
}

TEST_CASE("e2e limits: a fixed fallback_share divides every limit while Redis is down") {
  RedisServer redis;
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  shared: { requests: 8, window: 1m, key: token_hash }\n", "[shared]") +
      "redis: { url: \"" + redis.url() + "\", timeout: 1s, fallback_share: 4 }\n"), kNoRedis);
  INFO(gateway.process().output());
  REQUIRE(gateway.process().wait_for_output("Connected to Redis", std::chrono::seconds(5)));
  CHECK(metric(scrape(gateway.admin_port()), "phlow_gateway_redis_fallback_share") == 4);
  // Connected: the whole limit, in Redis.
  CHECK(count_allowed(gateway.port(), 10, {{"Authorization", "Bearer before"}}) == 8);
  redis.kill();
  const HeaderList during = {{"Authorization", "Bearer during"}};
  const HttpResponse first = http_request(gateway.port(), "GET", "/", during);
  CHECK(first.status == 200);
  CHECK(first.header("X-RateLimit-Limit") == "2");
  CHECK(first.header("X-RateLimit-Remaining") == "1");
  CHECK(count_allowed(gateway.port(), 5, during) == 1);
  const HttpResponse rejected = http_request(gateway.port(), "GET", "/", during);
  CHECK(rejected.status == 429);
  CHECK(nlohmann::json::parse(rejected.body).at("limit") == "shared");
}

TEST_CASE("e2e limits: when Redis comes back the gateway says so once and decides in Redis again") {
  RedisServer redis;
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, one_route(
      "  shared: { requests: 3, window: 1m, key: token_hash }\n", "[shared]") +
      exact_redis_yaml(redis.url())), kNoRedis);
  INFO(gateway.process().output());
  REQUIRE(gateway.process().wait_for_output("Connected to Redis", std::chrono::seconds(5)));
  redis.kill();
  CHECK(count_allowed(gateway.port(), 2, {{"Authorization", "Bearer during-outage"}}) == 2);
  REQUIRE(gateway.process().wait_for_output(
      "Failed to connect to Redis, falling back to in-memory rate limiting", std::chrono::seconds(5)));
  redis.start();
  REQUIRE(gateway.process().wait_for_output("Reconnected to Redis", std::chrono::seconds(5)));
  CHECK(count_allowed(gateway.port(), 4, {{"Authorization", "Bearer back"}}) == 3);
  const std::string key = "phlow:ratelimit:shared:" + phlow::limiter::sha256_hex("back");
  CHECK(log_units(redis, key) == "3");
  const std::string log = gateway.process().output();
  CHECK(count_occurrences(log, "Failed to connect to Redis, falling back to in-memory rate limiting") == 1);
  CHECK(count_occurrences(log, "Reconnected to Redis") == 1);
}

namespace {

// Calls of the check code Redis has run (FCALL on Redis 7; EVALSHA, plus EVAL after a
// NOSCRIPT, on older servers or after a FUNCTION FLUSH).
std::int64_t script_calls(const RedisServer& redis) {
  return command_calls(redis, "fcall") + command_calls(redis, "evalsha") + command_calls(redis, "eval");
}

}  // namespace

TEST_CASE("e2e limits: a key over its limit is rejected without Redis until its retry time - resets seen at once here and within 1 s on another gateway") {
  const std::string algorithm = GENERATE(std::string("sliding_log"), std::string("token_bucket"));
  INFO("algorithm " << algorithm);
  RedisServer redis;
  DemoUpstream upstream;
  const std::string admin_token = "cache-admin";
  const std::string yaml = gateway_yaml(upstream, one_route(
      "  hot: { requests: 3, window: 3s, algorithm: " + algorithm + ", key: token_hash }\n", "[hot]") +
      exact_redis_yaml(redis.url()) + "admin: { listen: \"127.0.0.1:0\", token: \"" + admin_token + "\" }\n");
  GatewayProcess first(yaml, kNoRedis);
  GatewayProcess second(yaml, kNoRedis);
  REQUIRE(first.process().wait_for_output("Connected to Redis", std::chrono::seconds(5)));
  REQUIRE(second.process().wait_for_output("Connected to Redis", std::chrono::seconds(5)));
  INFO(first.process().output());
  const HeaderList token = {{"Authorization", "Bearer hot-token"}};
  CHECK(count_allowed(first.port(), 3, token) == 3);

  // The flood: Redis answers the first rejection, the cache the others (for at most
  // kCacheMaxMs per Redis answer, and a token bucket refills after 1 s here: the flood
  // stops after 0.8 s, however few requests a slow, sanitized build got through).
  const std::int64_t before = script_calls(redis);
  const auto flood_start = std::chrono::steady_clock::now();
  int flood = 0;
  while (flood < 40 && std::chrono::steady_clock::now() - flood_start < std::chrono::milliseconds(800)) {
    const HttpResponse r = http_request(first.port(), "GET", "/", token);
    ++flood;
    REQUIRE(r.status == 429);
    CHECK(nlohmann::json::parse(r.body).at("limit") == "hot");
    CHECK(r.header("X-RateLimit-Remaining") == "0");
    const int retry_after = std::stoi(r.header("Retry-After"));
    CHECK(retry_after >= 1);
    CHECK(retry_after <= 3);
  }
  const std::int64_t calls = script_calls(redis) - before;
  INFO(flood << " rejections, " << calls << " script calls");
  CHECK(flood >= 10);
  CHECK(calls == 1);  // the first rejection; none for the others
  CHECK(metric(scrape(first.admin_port()), "phlow_gateway_over_limit_cache_hits_total") == flood - 1);
  CHECK(http_request(second.port(), "GET", "/", token).status == 429);  // Redis says so: cached

  // A reset through the first gateway: it allows at once; the second within 1 s.
  const std::string target = "/admin/limits/hot/" + phlow::limiter::sha256_hex("hot-token");
  REQUIRE(http_request(first.admin_port(), "DELETE", target, {{"Authorization", "Bearer " + admin_token}})
              .status == 200);
  CHECK(http_request(first.port(), "GET", "/", token).status == 200);
  const auto reset_at = std::chrono::steady_clock::now();
  int status = 0;
  while ((status = http_request(second.port(), "GET", "/", token).status) == 429 &&
         std::chrono::steady_clock::now() - reset_at < std::chrono::seconds(3)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(status == 200);
  CHECK(std::chrono::steady_clock::now() - reset_at < std::chrono::milliseconds(1500));

  // Spent again; once the retry time has passed the key is allowed again (the cache
  // never outlives what Redis said).
  HttpResponse rejected;
  for (int i = 0; i < 10 && rejected.status != 429; ++i) rejected = http_request(first.port(), "GET", "/", token);
  REQUIRE(rejected.status == 429);
  const auto wait = std::chrono::seconds(std::stoi(rejected.header("Retry-After")));
  std::this_thread::sleep_for(wait);
  CHECK(http_request(first.port(), "GET", "/", token).status == 200);

  // A reload with a larger limit: cached rejections are dropped, Redis decides anew.
  // (A token bucket keeps the debt of its old rate in its stored arrival time: a burst
  // far above it lets the next request through whatever that debt is.)
  CHECK(count_allowed(first.port(), 5, token) < 5);
  const std::string burst = algorithm == "token_bucket" ? ", burst: 1000" : "";
  first.rewrite_config(gateway_yaml(upstream, one_route(
      "  hot: { requests: 100, window: 3s" + burst + ", algorithm: " + algorithm +
          ", key: token_hash }\n", "[hot]") +
      exact_redis_yaml(redis.url()) + "admin: { listen: \"127.0.0.1:0\", token: \"" + admin_token + "\" }\n"));
  first.process().signal(SIGHUP);
  REQUIRE(first.process().wait_for_output("config reloaded", std::chrono::seconds(5)));
  CHECK(http_request(first.port(), "GET", "/", token).status == 200);
}
