// End-to-end operations: the admin listener of the real gateway binary (health, metrics
// by value after known traffic, admin API and its token, redaction), shadow mode, the
// access log file, and the status page rendered by a real headless Chromium.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "metrics_scrape.hpp"
#include "limiter/descriptor.hpp"
#include "support/demo_upstream.hpp"
#include "support/e2e.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"

using namespace phlow::test;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {


// One worker, so that per-connection and per-worker counts are exact. `access_log` is
// the YAML value of that key.
std::string gateway_yaml(const DemoUpstream& upstream, const std::string& rest,
                         const std::string& access_log = "\"off\"") {
  return "listen: \"127.0.0.1:0\"\nthreads: 1\naccess_log: " + access_log +
         "\nupstreams:\n  app: { url: \"" + upstream.url() + "\" }\n" +
         "  dead: { url: \"http://127.0.0.1:" + std::to_string(free_port()) +
         "\", connect_timeout: 2s }\n" + rest;
}

// Limit `auth`: 5 per minute by token hash, on every route but /dead.
const std::string kAuthRoutes =
    "limits:\n  auth: { requests: 5, window: 1m, key: token_hash }\n"
    "routes:\n"
    "  - match: { path_prefix: /dead }\n    upstream: dead\n    limits: []\n"
    "  - match: { path_prefix: / }\n    upstream: app\n    limits: [auth]\n";

HeaderList bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// Polls `done` every 50 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
}

std::string decisions(const std::string& limit, const std::string& outcome) {
  return "phlow_gateway_decisions_total{limit=\"" + limit + "\",outcome=\"" + outcome + "\"}";
}

std::string requests(const std::string& route, const std::string& code_class) {
  return "phlow_gateway_requests_total{route=\"" + route + "\",code_class=\"" + code_class + "\"}";
}

json get_json(std::uint16_t port, const std::string& target, const HeaderList& headers = {}) {
  const HttpResponse r = http_request(port, "GET", target, headers);
  INFO(target << " -> " << r.status << " " << r.body);
  REQUIRE(r.status == 200);
  return json::parse(r.body);
}

std::string read_file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

}  // namespace

TEST_CASE("e2e ops: healthz and readyz report redis state and config generation and uptime") {
  DemoUpstream upstream;
  SECTION("without Redis") {
    GatewayProcess gateway(gateway_yaml(upstream, kAuthRoutes), kNoRedis);
    INFO(gateway.process().output());
    REQUIRE(gateway.admin_port() != 0);
    const HttpResponse health = http_request(gateway.admin_port(), "GET", "/healthz");
    CHECK(health.status == 200);
    CHECK(json::parse(health.body).at("status") == "ok");
    const json ready = get_json(gateway.admin_port(), "/readyz");
    CHECK(ready.at("status") == "ready");
    CHECK(ready.at("redis") == "disabled");
    CHECK(ready.at("version") == PHLOW_EXPECTED_VERSION);
    REQUIRE(ready.at("uptime_seconds").is_number());
    CHECK(ready.at("uptime_seconds").get<double>() >= 0);
    CHECK(ready.at("uptime_seconds").get<double>() < 30);
    const auto generation = ready.at("config_generation").get<std::uint64_t>();
    CHECK(generation >= 1);

    gateway.rewrite_config(gateway_yaml(upstream, kAuthRoutes + "log_level: debug\n"));
    gateway.process().signal(SIGHUP);
    REQUIRE(gateway.process().wait_for_output("config reloaded from", 5s));
    const json after = get_json(gateway.admin_port(), "/readyz");
    CHECK(after.at("config_generation").get<std::uint64_t>() == generation + 1);
    std::this_thread::sleep_for(1100ms);
    CHECK(get_json(gateway.admin_port(), "/readyz").at("uptime_seconds").get<double>() >=
          ready.at("uptime_seconds").get<double>() + 1.0);
  }
  SECTION("with Redis connected then killed") {
    RedisServer redis;
    GatewayProcess gateway(gateway_yaml(upstream, kAuthRoutes + "redis: { url: \"" +
                                                      redis.url() + "\", timeout: 50ms }\n"),
                           kNoRedis);
    INFO(gateway.process().output());
    REQUIRE(gateway.process().wait_for_output("Connected to Redis", 5s));
    CHECK(get_json(gateway.admin_port(), "/readyz").at("redis") == "connected");
    CHECK(http_request(gateway.admin_port(), "GET", "/healthz").status == 200);
    redis.kill();
    std::string state;
    const bool fell_back = eventually([&] {
      http_request(gateway.port(), "GET", "/", bearer("poke"));  // lets the worker notice
      state = get_json(gateway.admin_port(), "/readyz").at("redis").get<std::string>();
      return state == "fallback";
    }, 5s);
    INFO("last redis state: " << state);
    CHECK(fell_back);
    CHECK(http_request(gateway.admin_port(), "GET", "/healthz").status == 200);
  }
}

TEST_CASE("e2e ops: metrics count requests and decisions and errors by value after known traffic") {
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream,
      "limits:\n"
      "  auth: { requests: 5, window: 1m, key: token_hash }\n"
      "  watch: { requests: 1, window: 1m, key: \"header:X-Watch\", shadow: true }\n"
      "routes:\n"
      "  - match: { path_prefix: /dead }\n    upstream: dead\n    limits: []\n"
      "  - match: { path_prefix: / }\n    upstream: app\n    limits: [auth, watch]\n"),
      kNoRedis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  const auto admin = gateway.admin_port();

  const HttpResponse m = http_request(admin, "GET", "/metrics");
  CHECK(m.header("Content-Type").starts_with("text/plain; version=0.0.4"));

  int allowed = 0;
  for (int i = 0; i < 7; ++i) allowed += http_request(port, "GET", "/", bearer("seven")).status == 200;
  CHECK(allowed == 5);
  // No bearer token: auth is skipped; the shadow limit allows one then shadow-limits one.
  CHECK(http_request(port, "GET", "/", {{"X-Watch", "w"}}).status == 200);
  CHECK(http_request(port, "GET", "/", {{"X-Watch", "w"}}).status == 200);
  CHECK(http_request(port, "GET", "/dead/x").status == 502);

  Exposition e = scrape(admin);
  CHECK(metric(e, decisions("auth", "allowed")) == 5);
  CHECK(metric(e, decisions("auth", "limited")) == 2);
  CHECK(metric(e, decisions("auth", "skipped")) == 2);
  CHECK_FALSE(e.samples.contains(decisions("auth", "shadow_limited")));
  CHECK(metric(e, decisions("watch", "allowed")) == 1);
  CHECK(metric(e, decisions("watch", "shadow_limited")) == 1);
  CHECK(metric(e, decisions("watch", "skipped")) == 7);
  CHECK_FALSE(e.samples.contains(decisions("watch", "limited")));
  CHECK(metric(e, requests("/", "2xx")) == 7);
  CHECK(metric(e, requests("/", "4xx")) == 2);
  CHECK(metric(e, requests("/dead", "5xx")) == 1);
  CHECK_FALSE(e.samples.contains(requests("/dead", "2xx")));
  CHECK(metric(e, "phlow_gateway_upstream_errors_total{kind=\"connect_refused\"}") == 1);
  CHECK(metric(e, "phlow_gateway_upstream_errors_total{kind=\"timeout\"}") == 0);
  // Every forwarded request (7 allowed, 1 refused) timed its upstream part; no Redis.
  CHECK(e.types.at("phlow_gateway_upstream_duration_seconds") == "histogram");
  CHECK(metric(e, "phlow_gateway_upstream_duration_seconds_count") == 8);
  CHECK(metric(e, "phlow_gateway_upstream_duration_seconds_bucket{le=\"+Inf\"}") == 8);
  CHECK(metric(e, "phlow_gateway_redis_check_duration_seconds_count") == 0);
  CHECK(metric(e, "phlow_gateway_redis_fallback") == 0);
  CHECK(metric(e, "phlow_gateway_config_reloads_total{result=\"ok\"}") == 0);
  CHECK(metric(e, "phlow_gateway_build_info{version=\"" PHLOW_EXPECTED_VERSION "\"}") == 1);

  SECTION("open_connections follows a kept-alive client connection") {
    auto client_connections = [&] {
      return metric(scrape(admin), "phlow_gateway_open_connections{side=\"client\"}");
    };
    CHECK(eventually([&] { return client_connections() == 0; }, 2s));
    {
      HttpConnection held(port);
      CHECK(held.request("GET", "/").status == 200);
      CHECK(eventually([&] { return client_connections() == 1; }, 2s));
    }
    CHECK(eventually([&] { return client_connections() == 0; }, 2s));
  }
  SECTION("config_reloads_total counts a valid and an invalid SIGHUP") {
    const auto generation = metric(e, "phlow_gateway_config_generation");
    gateway.rewrite_config(gateway_yaml(upstream, kAuthRoutes));
    gateway.process().signal(SIGHUP);
    REQUIRE(gateway.process().wait_for_output("config reloaded from", 5s));
    gateway.rewrite_config("listen: [this is not a config\n");
    gateway.process().signal(SIGHUP);
    REQUIRE(gateway.process().wait_for_output("failed; the running config stays in force", 5s));
    const Exposition after = scrape(admin);
    CHECK(metric(after, "phlow_gateway_config_reloads_total{result=\"ok\"}") == 1);
    CHECK(metric(after, "phlow_gateway_config_reloads_total{result=\"failed\"}") == 1);
    CHECK(metric(after, "phlow_gateway_config_generation") == generation + 1);
    // Counters survive the reload.
    CHECK(metric(after, decisions("auth", "limited")) == 2);
  }
}

TEST_CASE("e2e ops: Redis check histogram and fallback gauge and transitions by value") {
  RedisServer redis;
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, kAuthRoutes + "redis: { url: \"" + redis.url() +
                                                    "\", timeout: 50ms }\n"),
                         kNoRedis);
  INFO(gateway.process().output());
  REQUIRE(gateway.process().wait_for_output("Connected to Redis", 5s));
  for (int i = 0; i < 3; ++i) CHECK(http_request(gateway.port(), "GET", "/", bearer("r")).status == 200);
  CHECK(http_request(gateway.port(), "GET", "/").status == 200);  // skipped: no Redis call
  Exposition e = scrape(gateway.admin_port());
  CHECK(metric(e, "phlow_gateway_redis_check_duration_seconds_count") == 3);
  CHECK(metric(e, "phlow_gateway_redis_check_duration_seconds_bucket{le=\"+Inf\"}") == 3);
  CHECK(metric(e, "phlow_gateway_redis_fallback") == 0);
  CHECK(metric(e, "phlow_gateway_redis_fallback_transitions_total{to=\"fallback\"}") == 0);
  CHECK(metric(e, "phlow_gateway_redis_fallback_transitions_total{to=\"redis\"}") == 0);
  CHECK(metric(e, decisions("auth", "allowed")) == 3);

  redis.kill();
  const bool fell_back = eventually([&] {
    CHECK(http_request(gateway.port(), "GET", "/", bearer("during")).status == 200);
    return metric(scrape(gateway.admin_port()), "phlow_gateway_redis_fallback") == 1;
  }, 5s);
  REQUIRE(fell_back);
  e = scrape(gateway.admin_port());
  CHECK(metric(e, "phlow_gateway_redis_fallback_transitions_total{to=\"fallback\"}") == 1);
  CHECK(metric(e, "phlow_gateway_redis_fallback_transitions_total{to=\"redis\"}") == 0);
  CHECK(get_json(gateway.admin_port(), "/status.json").at("redis").at("state") == "fallback");
}

TEST_CASE("e2e ops: admin token guards admin endpoints only and the proxy port has no admin API") {
  DemoUpstream upstream;
  const std::string token = "admin-secret-token";
  GatewayProcess gateway(gateway_yaml(upstream, kAuthRoutes +
                             "admin: { listen: \"127.0.0.1:0\", token: \"" + token + "\" }\n"),
                         kNoRedis);
  INFO(gateway.process().output());
  const auto admin = gateway.admin_port();
  REQUIRE(admin != 0);
  CHECK(admin != gateway.port());
  for (const std::string target : {"/admin/config", "/admin/limits/auth/abc"}) {
    INFO(target);
    for (const HeaderList& headers :
         {HeaderList{}, bearer("wrong"), bearer(token + "x"), HeaderList{{"Authorization", token}},
          HeaderList{{"Authorization", "Basic " + token}}}) {
      const HttpResponse r = http_request(admin, "GET", target, headers);
      CHECK(r.status == 401);
      CHECK(r.header("Content-Type") == "application/json");
      CHECK(json::parse(r.body).at("code") == "UNAUTHORIZED");
      CHECK(r.body.find("upstreams") == std::string::npos);
    }
    CHECK(http_request(admin, "DELETE", target).status == 401);
    CHECK(http_request(admin, "GET", target, bearer(token)).status == 200);
  }
  for (const std::string open : {"/healthz", "/readyz", "/metrics", "/status.json", "/"}) {
    INFO(open);
    CHECK(http_request(admin, "GET", open).status == 200);
  }
  // The proxy port routes /admin/... upstream like any other path.
  const HttpResponse proxied = http_request(gateway.port(), "GET", "/admin/config", bearer(token));
  CHECK(proxied.status == 200);
  CHECK(json::parse(proxied.body).at("service") == "phlow-demo-upstream");
  CHECK(json::parse(proxied.body).at("path") == "/admin/config");
  CHECK(http_request(gateway.port(), "GET", "/metrics").body.find("phlow_gateway_") ==
        std::string::npos);
}

TEST_CASE("e2e ops: admin inspects and resets a limit in memory and in Redis") {
  const bool with_redis = GENERATE(false, true);
  INFO("with Redis: " << with_redis);
  std::optional<RedisServer> redis;
  if (with_redis) redis.emplace();
  DemoUpstream upstream;
  const std::string admin_token = "reset-admin-token";
  GatewayProcess gateway(
      gateway_yaml(upstream, kAuthRoutes +
                                 "admin: { listen: \"127.0.0.1:0\", token: \"" + admin_token +
                                 "\" }\n" +
                                 (redis ? exact_redis_yaml(redis->url()) : "")),
      kNoRedis);
  INFO(gateway.process().output());
  if (redis) REQUIRE(gateway.process().wait_for_output("Connected to Redis", 5s));
  const auto admin = gateway.admin_port();
  const HeaderList auth = bearer(admin_token);
  const std::string hash = phlow::limiter::sha256_hex("T-token");
  const std::string target = "/admin/limits/auth/" + hash;
  const std::string key = "phlow:ratelimit:auth:" + hash;

  for (int i = 0; i < 5; ++i) REQUIRE(http_request(gateway.port(), "GET", "/", bearer("T-token")).status == 200);
  const json usage = get_json(admin, target, auth);
  CHECK(usage.at("limit") == "auth");
  CHECK(usage.at("identifier") == hash);
  CHECK(usage.at("key") == key);
  CHECK(usage.at("store") == (with_redis ? "redis" : "memory"));
  CHECK(usage.at("quota") == 5);
  CHECK(usage.at("used") == 5);
  CHECK(usage.at("remaining") == 0);
  // Unix seconds when the usage is back to zero, as X-RateLimit-Reset.
  const std::int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(usage.at("reset").get<std::int64_t>() >= now_s);
  CHECK(usage.at("reset").get<std::int64_t>() <= now_s + 61);
  // Inspecting consumed nothing, and the budget is spent.
  CHECK(get_json(admin, target, auth).at("used") == 5);
  CHECK(http_request(gateway.port(), "GET", "/", bearer("T-token")).status == 429);
  if (redis) CHECK(redis->command({"EXISTS", key}) == "1");

  const HttpResponse reset = http_request(admin, "DELETE", target, auth);
  INFO(reset.body);
  REQUIRE(reset.status == 200);
  CHECK(json::parse(reset.body).at("reset") == true);
  if (redis) CHECK(redis->command({"EXISTS", key}) == "0");
  CHECK(get_json(admin, target, auth).at("used") == 0);
  CHECK(http_request(gateway.port(), "GET", "/", bearer("T-token")).status == 200);
  CHECK(get_json(admin, target, auth).at("used") == 1);

  CHECK(http_request(admin, "GET", "/admin/limits/nope/" + hash, auth).status == 404);
  CHECK(http_request(admin, "DELETE", "/admin/limits/nope/" + hash, auth).status == 404);
  for (const std::string bad : {"/admin/limits/auth/a%20b", "/admin/limits/auth/a%00b",
                                "/admin/limits/auth/", "/admin/limits/auth/%zz",
                                "/admin/limits/auth"}) {
    INFO(bad);
    CHECK(http_request(admin, "GET", bad, auth).status == 400);
  }
  for (const std::string sneaky :
       {"/admin/limits/../config", "/admin/limits/%2e%2e/config", "/admin/limits/%2E%2E/%2E%2E/admin/config",
        "/admin/limits/auth/../../config", "/admin/%2e%2e/admin/config", "/healthz/../admin/config",
        "/%2e%2e/admin/config", "//admin/config", "/metrics/../admin/config"}) {
    INFO(sneaky);
    const HttpResponse r = http_request(admin, "GET", sneaky);
    CHECK(r.status != 200);
    CHECK(r.body.find("upstreams") == std::string::npos);
    CHECK(r.body.find(upstream.url()) == std::string::npos);
  }
}

TEST_CASE("e2e ops: a reset during a Redis outage lifts the rejection the fallback kept") {
  RedisServer redis;
  DemoUpstream upstream;
  GatewayProcess gateway(
      gateway_yaml(upstream, kAuthRoutes + exact_redis_yaml(redis.url())), kNoRedis);
  INFO(gateway.process().output());
  REQUIRE(gateway.process().wait_for_output("Connected to Redis", 5s));
  const auto admin = gateway.admin_port();
  const std::string target = "/admin/limits/auth/" + phlow::limiter::sha256_hex("R-token");
  for (int i = 0; i < 5; ++i) REQUIRE(http_request(gateway.port(), "GET", "/", bearer("R-token")).status == 200);
  REQUIRE(http_request(gateway.port(), "GET", "/", bearer("R-token")).status == 429);  // by Redis

  redis.kill();
  REQUIRE(eventually([&] { return get_json(admin, "/readyz").at("redis") == "fallback"; }, 5s));
  // The fallback remembers that Redis rejected this client; a fresh one is counted anew.
  CHECK(http_request(gateway.port(), "GET", "/", bearer("R-token")).status == 429);
  CHECK(http_request(gateway.port(), "GET", "/", bearer("other-token")).status == 200);

  const HttpResponse reset = http_request(admin, "DELETE", target);
  INFO(reset.body);
  CHECK(reset.status == 503);  // Redis could not be reset
  CHECK(reset.body.find("Reset in memory only") != std::string::npos);
  // ... but in memory it is: the fallback no longer holds Redis' rejection.
  for (int i = 0; i < 5; ++i) CHECK(http_request(gateway.port(), "GET", "/", bearer("R-token")).status == 200);
  CHECK(http_request(gateway.port(), "GET", "/", bearer("R-token")).status == 429);
}

TEST_CASE("e2e ops: secrets are redacted from admin config and never logged or exported raw") {
  RedisServer redis({"--requirepass", "redis-pass-4711"});
  DemoUpstream upstream;
  const std::string dir = temp_dir();
  const std::string log_path = dir + "/access.log";
  const std::string admin_token = "admin-token-0815";
  GatewayProcess gateway(
      gateway_yaml(upstream,
                   "limits:\n"
                   "  auth: { requests: 2, window: 1m, key: token_hash }\n"
                   "  keyed: { requests: 3, window: 1m, key: api_key }\n"
                   "routes:\n  - match: { path_prefix: / }\n    upstream: app\n"
                   "    limits: [auth, keyed]\n"
                   "identifiers:\n  api_key: { header: X-API-Key, query: api_key }\n" +
                   exact_redis_yaml(redis.url(":redis-pass-4711")) +
                   "admin: { listen: \"127.0.0.1:0\", token: \"" + admin_token + "\" }\n",
                   "\"" + log_path + "\""),
      kNoRedis);
  INFO(gateway.process().output());
  REQUIRE(gateway.process().wait_for_output("Connected to Redis", 5s));
  const auto admin = gateway.admin_port();

  const HttpResponse config = http_request(admin, "GET", "/admin/config", bearer(admin_token));
  REQUIRE(config.status == 200);
  INFO(config.body);
  CHECK(config.body.find("redis-pass-4711") == std::string::npos);
  CHECK(config.body.find(admin_token) == std::string::npos);
  CHECK(config.body.find("***") != std::string::npos);
  const json cfg = json::parse(config.body);
  CHECK(cfg.at("admin").at("token") == "***");
  CHECK(cfg.at("redis").at("url").get<std::string>().find("***") != std::string::npos);

  const std::string raw_token = "raw-bearer-secret-1234";
  const std::string raw_key = "raw-api-key-secret-5678";
  const HeaderList secret = {{"Authorization", "Bearer " + raw_token}, {"X-API-Key", raw_key}};
  int limited = 0;
  for (int i = 0; i < 4; ++i) limited += http_request(gateway.port(), "GET", "/", secret).status == 429;
  CHECK(limited == 2);
  for (int i = 0; i < 4; ++i) {
    limited += http_request(gateway.port(), "GET", "/q?api_key=" + raw_key).status == 429;
  }
  CHECK(limited == 5);  // keyed: 2 + 1 allowed before, so 3 of these 4 are limited

  const std::string metrics = http_request(admin, "GET", "/metrics").body;
  const std::string status = http_request(admin, "GET", "/status.json").body;
  // The top limited identifiers are there, hashed.
  CHECK(status.find(phlow::limiter::sha256_hex(raw_token)) != std::string::npos);
  std::string access;
  CHECK(eventually([&] {
    access = read_file_text(log_path);
    return lines_of(access).size() == 8;
  }, 2s));
  CHECK(access.find(phlow::limiter::sha256_hex(raw_token)) != std::string::npos);
  const std::string output = gateway.process().output();
  for (const std::string& raw : {raw_token, raw_key, admin_token, std::string("redis-pass-4711")}) {
    INFO("secret " << raw);
    CHECK(metrics.find(raw) == std::string::npos);
    CHECK(status.find(raw) == std::string::npos);
    CHECK(access.find(raw) == std::string::npos);
    CHECK(output.find(raw) == std::string::npos);
  }
}

TEST_CASE("e2e ops: global shadow mode rejects nothing and counts shadow_limited") {
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream,
      "limits:\n  auth: { requests: 2, window: 1m, key: token_hash }\n"
      "routes:\n  - match: { path_prefix: / }\n    upstream: app\n    limits: [auth]\n"
      "response_headers: [x-ratelimit]\nshadow_mode: true\n"), kNoRedis);
  INFO(gateway.process().output());
  for (int i = 0; i < 5; ++i) {
    const HttpResponse r = http_request(gateway.port(), "GET", "/", bearer("shadowed"));
    INFO("request " << i);
    CHECK(r.status == 200);
    CHECK(r.header("X-RateLimit-Limit") == "2");
    CHECK(r.header("X-RateLimit-Remaining") == (i < 2 ? std::to_string(1 - i) : "0"));
  }
  const Exposition e = scrape(gateway.admin_port());
  CHECK(metric(e, decisions("auth", "allowed")) == 2);
  CHECK(metric(e, decisions("auth", "shadow_limited")) == 3);
  CHECK_FALSE(e.samples.contains(decisions("auth", "limited")));
  CHECK(metric(e, requests("/", "2xx")) == 5);
  CHECK_FALSE(e.samples.contains(requests("/", "4xx")));
}

TEST_CASE("e2e ops: a per-limit shadow limit beside an enforced one leaves the enforced one rejecting") {
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream,
      "limits:\n"
      "  watch: { requests: 1, window: 1m, key: token_hash, shadow: true }\n"
      "  enforced: { requests: 3, window: 1m, key: token_hash }\n"
      "routes:\n  - match: { path_prefix: / }\n    upstream: app\n    limits: [watch, enforced]\n"),
      kNoRedis);
  INFO(gateway.process().output());
  std::vector<int> statuses;
  for (int i = 0; i < 5; ++i) {
    const HttpResponse r = http_request(gateway.port(), "GET", "/", bearer("both"));
    statuses.push_back(r.status);
    if (r.status == 429) CHECK(json::parse(r.body).at("limit") == "enforced");
  }
  CHECK(statuses == std::vector<int>{200, 200, 200, 429, 429});
  const Exposition e = scrape(gateway.admin_port());
  CHECK(metric(e, decisions("enforced", "allowed")) == 3);
  CHECK(metric(e, decisions("enforced", "limited")) == 2);
  CHECK(metric(e, decisions("watch", "allowed")) == 1);
  CHECK(metric(e, decisions("watch", "shadow_limited")) == 4);
  CHECK_FALSE(e.samples.contains(decisions("watch", "limited")));
}

TEST_CASE("e2e ops: the access log file has one JSON line per request with every field by value") {
  DemoUpstream upstream;
  const std::string dir = temp_dir();
  const std::string log_path = dir + "/access.log";
  GatewayProcess gateway(gateway_yaml(upstream,
      "limits:\n  auth: { requests: 2, window: 1m, key: token_hash }\n"
      "routes:\n"
      "  - match: { path_prefix: /dead }\n    upstream: dead\n    limits: []\n"
      "  - match: { path_prefix: /, methods: [GET] }\n    upstream: app\n    limits: [auth]\n",
      "\"" + log_path + "\""), kNoRedis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  const std::string hash = phlow::limiter::sha256_hex("logged");

  const HttpResponse seen = http_request(port, "GET", "/headers", bearer("logged"));
  REQUIRE(seen.status == 200);
  const std::string request_id = json::parse(seen.body).at("x-request-id").get<std::string>();
  CHECK_FALSE(request_id.empty());
  CHECK(http_request(port, "GET", "/items?x=1", bearer("logged")).status == 200);
  const HttpResponse limited = http_request(port, "GET", "/items", bearer("logged"));
  CHECK(limited.status == 429);
  CHECK(http_request(port, "POST", "/nowhere", {}, "abc").status == 404);
  CHECK(http_request(port, "GET", "/dead/x").status == 502);

  std::vector<std::string> lines;
  CHECK(eventually([&] {
    lines = lines_of(read_file_text(log_path));
    return lines.size() >= 5;
  }, 1500ms));
  REQUIRE(lines.size() == 5);
  std::vector<json> records;
  for (const auto& line : lines) records.push_back(json::parse(line));
  const std::vector<std::string> fields = {
      "time", "request_id", "client_ip", "method", "path", "route", "upstream", "status",
      "bytes_in", "bytes_out", "duration_ms", "limiter_ms", "upstream_ms", "decision", "limit",
      "identifier"};
  for (const json& r : records) {
    INFO(r.dump());
    for (const auto& field : fields) CHECK(r.contains(field));
    CHECK(r.size() == fields.size());
    CHECK(r.at("client_ip") == "127.0.0.1");
    CHECK(r.at("time").get<std::string>().size() >= 19);
    CHECK(r.at("request_id").get<std::string>().size() >= 8);
    CHECK(r.at("duration_ms").get<double>() >= r.at("upstream_ms").get<double>());
    CHECK(r.at("bytes_out").get<std::uint64_t>() > 0);
  }
  const json& first = records[0];
  CHECK(first.at("request_id") == request_id);
  CHECK(first.at("method") == "GET");
  CHECK(first.at("path") == "/headers");
  CHECK(first.at("route") == "GET /");
  CHECK(first.at("upstream") == "app");
  CHECK(first.at("status") == 200);
  CHECK(first.at("bytes_in") == 0);
  CHECK(first.at("decision") == "allowed");
  CHECK(first.at("limit") == "");
  CHECK(first.at("identifier") == "");
  CHECK(first.at("upstream_ms").get<double>() > 0);
  CHECK(records[1].at("path") == "/items?x=1");
  CHECK(records[1].at("status") == 200);

  const json& rejected = records[2];
  CHECK(rejected.at("status") == 429);
  CHECK(rejected.at("decision") == "limited");
  CHECK(rejected.at("limit") == "auth");
  CHECK(rejected.at("identifier") == hash);
  CHECK(rejected.at("upstream_ms") == 0);
  CHECK(rejected.at("bytes_out") == limited.body.size());

  const json& unrouted = records[3];
  CHECK(unrouted.at("method") == "POST");
  CHECK(unrouted.at("status") == 404);
  CHECK(unrouted.at("route") == "");
  CHECK(unrouted.at("upstream") == "");
  CHECK(unrouted.at("decision") == "none");
  CHECK(unrouted.at("bytes_in") == 3);

  const json& dead = records[4];
  CHECK(dead.at("status") == 502);
  CHECK(dead.at("route") == "/dead");
  CHECK(dead.at("upstream") == "dead");
  CHECK(dead.at("decision") == "none");
  CHECK(dead.at("path") == "/dead/x");

  SECTION("access_log off writes no line") {
    GatewayProcess quiet(gateway_yaml(upstream, kAuthRoutes, "\"off\""), kNoRedis);
    for (int i = 0; i < 3; ++i) CHECK(http_request(quiet.port(), "GET", "/").status == 200);
    std::this_thread::sleep_for(400ms);  // two flush periods: nothing may appear
    const std::string out = quiet.process().output();
    CHECK(out.find("\"request_id\"") == std::string::npos);
    CHECK(out.find("\"bytes_out\"") == std::string::npos);
  }
}

namespace {

std::optional<std::string> find_chromium() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (::access(path, X_OK) == 0) return std::string(path);
  }
  if (const char* env_path = std::getenv("PATH")) {
    std::istringstream dirs(env_path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      const std::string candidate = dir + "/chromium";
      if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return std::nullopt;
}

// Runs headless Chromium with `args` (after the common flags), killed after 30 s, and
// returns its stdout.
std::string run_chromium(const std::string& chromium, const std::vector<std::string>& args) {
  const std::string profile = temp_dir();
  std::vector<std::string> all = {"--headless", "--no-sandbox", "--disable-gpu",
                                  "--disable-dev-shm-usage", "--no-first-run",
                                  "--disable-background-networking", "--disable-component-update",
                                  "--disable-sync", "--user-data-dir=" + profile};
  all.insert(all.end(), args.begin(), args.end());
  Process browser(chromium, all, {{"HOME", profile}});
  const auto code = browser.wait_exit(30s);
  if (!code) {
    browser.kill();
    FAIL("chromium did not finish within 30 s:\n" << browser.output());
  }
  INFO(browser.output());
  REQUIRE(*code == 0);
  return browser.read_stdout();
}

// The text of the cell data-field="<field>" in the row whose `row_attr` is `name`
// (e.g. data-limit="auth"); "<missing>" when the dump has no such row or cell.
std::string cell(const std::string& dom, const std::string& row_attr,
                                const std::string& name, const std::string& field) {
  const auto row = dom.find(row_attr + "=\"" + name + "\"");
  if (row == std::string::npos) return "<missing>";
  const auto end = dom.find("</tr>", row);
  const std::string marker = "data-field=\"" + field + "\">";
  const auto at = dom.find(marker, row);
  if (at == std::string::npos || at > end) return "<missing>";
  const auto start = at + marker.size();
  return dom.substr(start, dom.find('<', start) - start);
}

std::string element_text(const std::string& dom, const std::string& id) {
  const auto at = dom.find("id=\"" + id + "\"");
  if (at == std::string::npos) return "<missing>";
  const auto start = dom.find('>', at) + 1;
  return dom.substr(start, dom.find('<', start) - start);
}

std::string fmt(double v) { return std::to_string(static_cast<long long>(v)); }

// Dumps the page until its limit row for `auth` exists (the page's fetch completed);
// retries with a real delay when the virtual time budget did not let it finish.
std::string dump_status_page(const std::string& chromium, std::uint16_t admin) {
  const std::string url = "http://127.0.0.1:" + std::to_string(admin) + "/";
  std::string dom;
  for (int attempt = 0; attempt < 3; ++attempt) {
    dom = run_chromium(chromium, {"--virtual-time-budget=5000", "--dump-dom", url});
    if (cell(dom, "data-limit", "auth", "limited") != "<missing>") return dom;
    std::this_thread::sleep_for(1s);
  }
  return dom;
}

// Checks every number the page shows for route "/" and limit "auth" against /metrics.
void check_page_matches_metrics(const std::string& dom, const Exposition& e) {
  INFO(dom);
  CHECK(cell(dom, "data-limit", "auth", "limited") == fmt(metric(e, decisions("auth", "limited"))));
  CHECK(cell(dom, "data-limit", "auth", "allowed") == fmt(metric(e, decisions("auth", "allowed"))));
  CHECK(cell(dom, "data-route", "/", "requests") ==
        fmt(metric(e, requests("/", "2xx")) + metric(e, requests("/", "4xx"))));
  CHECK(cell(dom, "data-route", "/", "limited") == fmt(metric(e, requests("/", "4xx"))));
  CHECK(element_text(dom, "redis-state") == "disabled");
  CHECK(element_text(dom, "generation") == fmt(metric(e, "phlow_gateway_config_generation")));
}

}  // namespace

TEST_CASE("e2e ops: the status page in headless Chromium shows the numbers of metrics") {
  const auto chromium = find_chromium();
  if (!chromium) {
    FAIL("chromium not found (tried /usr/bin/chromium and PATH): install Debian's chromium "
         "package (scripts/install-deps.sh does)");
  }
  DemoUpstream upstream;
  GatewayProcess gateway(gateway_yaml(upstream, kAuthRoutes), kNoRedis);
  INFO(gateway.process().output());
  const auto admin = gateway.admin_port();
  for (int i = 0; i < 7; ++i) http_request(gateway.port(), "GET", "/", bearer("page"));

  Exposition e = scrape(admin);
  REQUIRE(metric(e, decisions("auth", "limited")) == 2);
  const std::string first = dump_status_page(*chromium, admin);
  check_page_matches_metrics(first, e);
  CHECK(cell(first, "data-limit", "auth", "limited") == "2");

  for (int i = 0; i < 4; ++i) http_request(gateway.port(), "GET", "/", bearer("page"));
  for (int i = 0; i < 3; ++i) http_request(gateway.port(), "GET", "/", bearer("page-2"));
  e = scrape(admin);
  REQUIRE(metric(e, decisions("auth", "limited")) == 6);
  const std::string second = dump_status_page(*chromium, admin);
  check_page_matches_metrics(second, e);
  CHECK(cell(second, "data-limit", "auth", "limited") == "6");
  CHECK(cell(second, "data-limit", "auth", "allowed") == "8");

  const std::filesystem::path out_dir = PHLOW_TEST_OUTPUT_DIR;
  std::filesystem::create_directories(out_dir);
  const std::filesystem::path png = out_dir / "status_page.png";
  std::filesystem::remove(png);
  run_chromium(*chromium, {"--virtual-time-budget=5000", "--screenshot=" + png.string(),
                           "--window-size=1200,800",
                           "http://127.0.0.1:" + std::to_string(admin) + "/"});
  REQUIRE(std::filesystem::exists(png));
  CHECK(std::filesystem::file_size(png) > 5 * 1024);
  std::cout << "status page screenshot: " << png.string() << "\n";
}
