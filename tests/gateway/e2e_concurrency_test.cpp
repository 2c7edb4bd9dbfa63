// End-to-end concurrency limits (algorithm: concurrency, SPEC.md "Limits for agent
// workloads"): at most N requests of one identifier in flight, in memory and across
// gateways sharing a real redis-server. The demo upstream's /hold holds each request
// for a chosen time and reports how many it held at once (/held).
#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "metrics_scrape.hpp"
#include "support/demo_upstream.hpp"
#include "support/e2e.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"
#include "support/ws_client.hpp"

using namespace phlow::test;
using json = nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A gateway whose route "/" allows `slots` requests per X-Agent in flight (lease
// `window`), upstream timeout `timeout`, with or without Redis.
std::string slots_yaml(const DemoUpstream& upstream, int slots, const std::string& window,
                       const std::optional<RedisServer>& redis, const std::string& timeout = "30s") {
  return "listen: \"127.0.0.1:0\"\nthreads: 2\naccess_log: \"off\"\nupstreams:\n  app: { url: \"" +
         upstream.url() + "\", timeout: " + timeout + " }\nlimits:\n"
         "  inflight: { requests: " + std::to_string(slots) + ", window: " + window +
         ", key: \"header:X-Agent\", algorithm: concurrency }\n"
         "routes:\n  - match: { path_prefix: / }\n    upstream: app\n    limits: [inflight]\n" +
         (redis ? exact_redis_yaml(redis->url()) : std::string());
}

const HeaderList kAgent = {{"X-Agent", "agent-a"}};

json held(const DemoUpstream& upstream, bool reset = false) {
  return json::parse(http_request(upstream.port(), "GET", reset ? "/held?reset=1" : "/held").body);
}

// `n` requests of `target` at once (each on its own connection); their statuses.
std::vector<int> at_once(std::uint16_t port, int n, const std::string& target, const HeaderList& headers = kAgent) {
  std::vector<int> statuses(static_cast<std::size_t>(n));
  std::vector<std::thread> clients;
  for (int i = 0; i < n; ++i) {
    clients.emplace_back([&, i] { statuses[static_cast<std::size_t>(i)] = http_request(port, "GET", target, headers).status; });
  }
  for (auto& c : clients) c.join();
  return statuses;
}

int count(const std::vector<int>& statuses, int status) {
  return static_cast<int>(std::count(statuses.begin(), statuses.end(), status));
}

void wait_connected(GatewayProcess& gateway, const std::optional<RedisServer>& redis) {
  if (redis) REQUIRE(gateway.process().wait_for_output("Connected to Redis", 5s));
}

}  // namespace

TEST_CASE("e2e concurrency: 7 at once with 4 slots - exactly 4 reach the upstream, the slots come back") {
  const bool with_redis = GENERATE(false, true);
  INFO((with_redis ? "redis" : "memory"));
  std::optional<RedisServer> redis;
  if (with_redis) redis.emplace();
  DemoUpstream upstream(2);
  GatewayProcess gateway(slots_yaml(upstream, 4, "1m", redis), kNoRedis);
  wait_connected(gateway, redis);
  INFO(gateway.process().output());
  const auto port = gateway.port();

  std::vector<int> statuses;
  std::thread burst([&] { statuses = at_once(port, 7, "/hold?ms=1000"); });
  // While they are held: 4 slots taken, seen by the metrics and the admin API.
  REQUIRE(wait_until([&] { return held(upstream).at("now") == 4; }, 5s));
  const HttpResponse rejected = http_request(port, "GET", "/", kAgent);
  CHECK(rejected.status == 429);
  CHECK(rejected.header("Retry-After") == "1");
  CHECK(rejected.header("X-RateLimit-Limit") == "4");
  CHECK(rejected.header("X-RateLimit-Remaining") == "0");
  CHECK(json::parse(rejected.body).at("limit") == "inflight");
  CHECK(metric(scrape(gateway.admin_port()), R"(phlow_gateway_concurrency_slots_held{limit="inflight"})") == 4);
  const json state = json::parse(http_request(gateway.admin_port(), "GET", "/admin/limits/inflight/agent-a").body);
  CHECK(state.at("used") == 4);
  CHECK(state.at("remaining") == 0);
  CHECK(state.at("store") == (with_redis ? "redis" : "memory"));
  // Another agent has its own slots.
  CHECK(http_request(port, "GET", "/", {{"X-Agent", "agent-b"}}).status == 200);
  burst.join();
  CHECK(count(statuses, 200) == 4);
  CHECK(count(statuses, 429) == 3);
  CHECK(held(upstream).at("max") == 4);

  // Given back on completion: 4 fit again, the gauge is back to 0.
  REQUIRE(wait_until([&] {
    return metric(scrape(gateway.admin_port()), R"(phlow_gateway_concurrency_slots_held{limit="inflight"})") == 0;
  }, 5s));
  held(upstream, true);
  statuses = at_once(port, 4, "/hold?ms=300");
  CHECK(count(statuses, 200) == 4);
  CHECK(held(upstream).at("max") == 4);
  const HttpResponse allowed = http_request(port, "GET", "/", kAgent);
  CHECK(allowed.status == 200);
  CHECK(allowed.header("X-RateLimit-Remaining") == "3");  // free slots after this one
  if (redis) {
    // Every slot given back in Redis too: the set holds no live member.
    CHECK(wait_until([&] { return redis->command({"ZCARD", "phlow:ratelimit:inflight:agent-a"}) == "0"; }, 5s));
  }
}

TEST_CASE("e2e concurrency: a slot comes back when the upstream fails or times out") {
  const bool with_redis = GENERATE(false, true);
  INFO((with_redis ? "redis" : "memory"));
  std::optional<RedisServer> redis;
  if (with_redis) redis.emplace();
  DemoUpstream upstream(2);
  GatewayProcess gateway(slots_yaml(upstream, 1, "1m", redis, "1500ms"), kNoRedis);
  wait_connected(gateway, redis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  // The upstream resets the connection: 502, and the slot is free again.
  CHECK(http_request(port, "GET", "/reset", kAgent).status == 502);
  CHECK(http_request(port, "GET", "/", kAgent).status == 200);
  // The upstream takes longer than its timeout: 504, the slot is free at once (the
  // upstream may still be working; the gateway no longer waits for it).
  CHECK(http_request(port, "GET", "/hold?ms=3000", kAgent).status == 504);
  CHECK(http_request(port, "GET", "/", kAgent).status == 200);
  CHECK(metric(scrape(gateway.admin_port()), R"(phlow_gateway_concurrency_slots_held{limit="inflight"})") == 0);
}

// The upstream holds each call 20 s (its timeout is 30 s): a slot that comes back
// within 5 s of the client leaving came back because the gateway noticed.
TEST_CASE("e2e concurrency: a client that leaves while the upstream works gets its slot back at once") {
  const bool with_redis = GENERATE(false, true);
  // A request read whole before it goes upstream, and one whose body still streams
  // then (the gateway relays both directions at once).
  const bool streamed_body = GENERATE(false, true);
  INFO((with_redis ? "redis" : "memory") << (streamed_body ? ", streamed body" : ", no body"));
  std::optional<RedisServer> redis;
  if (with_redis) redis.emplace();
  DemoUpstream upstream(2);
  GatewayProcess gateway(slots_yaml(upstream, 1, "1m", redis, "30s"), kNoRedis);
  wait_connected(gateway, redis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  const auto admin = gateway.admin_port();
  const auto slots_held = [&] {
    return metric(scrape(admin), R"(phlow_gateway_concurrency_slots_held{limit="inflight"})");
  };
  const auto clients_gone = [&] {
    return metric(scrape(admin), R"(phlow_gateway_requests_total{route="/",code_class="4xx"})");
  };
  int refused = 0;  // 429s this test received
  for (int round = 0; round < 2; ++round) {  // twice: the first leaver's watch must not linger
    INFO("round " << round);
    HttpConnection leaving(port);
    if (streamed_body) {
      leaving.send_raw("POST /hold?ms=20000 HTTP/1.1\r\nHost: x\r\nX-Agent: agent-a\r\n"
                       "Content-Length: 10\r\n\r\n12345");
    } else {
      leaving.send_raw("GET /hold?ms=20000 HTTP/1.1\r\nHost: x\r\nX-Agent: agent-a\r\n\r\n");
    }
    REQUIRE(wait_until([&] { return slots_held() == 1; }, 5s));
    if (streamed_body) {
      // The body's first half has gone upstream with the head (the upstream waits for
      // the rest before it holds): the rest, then the client goes.
      std::this_thread::sleep_for(100ms);
      leaving.send_raw("67890");
      std::this_thread::sleep_for(100ms);
    }
    // Held while the client is there: another call of the agent is refused.
    CHECK(http_request(port, "GET", "/", kAgent).status == 429);
    ++refused;
    const auto left_at = Clock::now();
    leaving.close();
    CHECK(wait_until([&] { return slots_held() == 0; }, 5s));
    // (With Redis the slot may go back over another worker's connection than the one
    // that checks the next call: a 429 then is possible, and counted.)
    CHECK(wait_until([&] {
      const int status = http_request(port, "GET", "/", kAgent).status;
      refused += status == 429;
      return status == 200;
    }, 5s));
    CHECK(Clock::now() - left_at < 10s);
    // Counted as 499 (client closed request): one 4xx more per leaver than the 429s.
    CHECK(clients_gone() == refused + round + 1);
  }
}

TEST_CASE("e2e concurrency: a WebSocket tunnel holds its slot until it closes") {
  DemoUpstream upstream;
  GatewayProcess gateway(slots_yaml(upstream, 1, "1m", std::nullopt), kNoRedis);
  INFO(gateway.process().output());
  std::optional<WsClient> first;
  first.emplace(gateway.port(), "/ws", kAgent);
  REQUIRE(first->open());
  first->send("hello");
  CHECK(first->receive() == "hello");
  WsClient second(gateway.port(), "/ws", kAgent);
  CHECK(second.status() == 429);
  first->close();
  first.reset();
  CHECK(wait_until([&] { return WsClient(gateway.port(), "/ws", kAgent).status() == 101; }, 5s));
}

TEST_CASE("e2e concurrency: two gateways sharing Redis never hold more slots together") {
  std::optional<RedisServer> redis;
  redis.emplace();
  DemoUpstream upstream(2);
  const std::string yaml = slots_yaml(upstream, 3, "1m", redis);
  GatewayProcess first(yaml, kNoRedis);
  GatewayProcess second(yaml, kNoRedis);
  wait_connected(first, redis);
  wait_connected(second, redis);
  INFO(first.process().output());
  INFO(second.process().output());
  held(upstream, true);
  constexpr int kClients = 10;
  constexpr int kEach = kSanitized ? 3 : 8;
  std::atomic<int> allowed{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kEach; ++i) {
        const int status = http_request(c % 2 == 0 ? first.port() : second.port(), "GET", "/hold?ms=60", kAgent).status;
        if (status == 200) ++allowed;
        else if (status != 429) ++other;
      }
    });
  }
  for (auto& c : clients) c.join();
  CHECK(other == 0);
  CHECK(allowed >= 3);
  const json h = held(upstream);
  CHECK(h.at("max") <= 3);  // never more in flight, whichever gateway let them in
  CHECK(h.at("max") >= 2);
  CHECK(wait_until([&] { return redis->command({"ZCARD", "phlow:ratelimit:inflight:agent-a"}) == "0"; }, 5s));
}

TEST_CASE("e2e concurrency: slots of a gateway killed with SIGKILL free themselves after the window, not before") {
  std::optional<RedisServer> redis;
  redis.emplace();
  DemoUpstream upstream(2);
  const std::string yaml = slots_yaml(upstream, 2, "2s", redis);
  std::optional<GatewayProcess> doomed;
  doomed.emplace(yaml, kNoRedis);
  GatewayProcess survivor(yaml, kNoRedis);
  wait_connected(*doomed, redis);
  wait_connected(survivor, redis);
  INFO(survivor.process().output());
  std::vector<std::thread> held_calls;
  for (int i = 0; i < 2; ++i) {
    held_calls.emplace_back([port = doomed->port()] {
      try {
        (void)http_request(port, "GET", "/hold?ms=8000", kAgent, {}, 10s);
      } catch (const std::exception&) {
        // the gateway is killed under it: no answer
      }
    });
  }
  REQUIRE(wait_until([&] { return held(upstream).at("now") == 2; }, 5s));
  const auto taken = Clock::now();
  ::kill(doomed->process().pid(), SIGKILL);
  CHECK(http_request(survivor.port(), "GET", "/", kAgent).status == 429);
  // Polled until a slot frees itself: its lease (2 s from when it was taken) ran out.
  bool freed = false;
  while (!freed && Clock::now() - taken < 6s) {
    freed = http_request(survivor.port(), "GET", "/", kAgent).status == 200;
    if (!freed) std::this_thread::sleep_for(50ms);
  }
  const auto after = Clock::now() - taken;
  CHECK(freed);
  CHECK(after >= 1800ms);  // not before the lease (taken a little before `taken`)
  CHECK(after < 3500ms);
  for (auto& t : held_calls) t.join();
  doomed.reset();
}

TEST_CASE("e2e concurrency: a call longer than the window keeps its slot (heartbeat)") {
  std::optional<RedisServer> redis;
  redis.emplace();
  DemoUpstream upstream(2);
  GatewayProcess gateway(slots_yaml(upstream, 1, "1s", redis), kNoRedis);
  wait_connected(gateway, redis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  // Catch's assertions are for the test's own thread: the call's status is checked there.
  std::atomic<int> long_status{0};
  std::thread long_call([&] { long_status = http_request(port, "GET", "/hold?ms=3000", kAgent).status; });
  REQUIRE(wait_until([&] { return held(upstream).at("now") == 1; }, 5s));
  const auto start = Clock::now();
  // Past the 1 s lease, twice: the slot is still held (renewed every 0.5 s).
  for (const auto at : {1500ms, 2500ms}) {
    std::this_thread::sleep_until(start + at);
    CHECK(http_request(port, "GET", "/", kAgent).status == 429);
  }
  long_call.join();
  CHECK(long_status == 200);
  CHECK(http_request(port, "GET", "/", kAgent).status == 200);
  CHECK(metric(scrape(gateway.admin_port()), R"(phlow_gateway_concurrency_renewals_total{result="ok"})") >= 4);
}

// README.md's worked example ("Limits for agent workloads"), read from the README
// itself: 4 calls per agent in flight, 100,000 tokens an hour per API key.
TEST_CASE("e2e concurrency: the README's worked example - slots and a token budget on one route") {
  std::ifstream readme(std::string(PHLOW_SOURCE_DIR) + "/README.md");
  REQUIRE(readme);
  const std::string text((std::istreambuf_iterator<char>(readme)), std::istreambuf_iterator<char>());
  const auto start = text.find("limits:\n  # at most 4 calls");
  REQUIRE(start != std::string::npos);
  const auto end = text.find("```", start);
  REQUIRE(end != std::string::npos);
  std::string example = text.substr(start, end - start);
  // The demo upstream answers /hold and /usage at the root: the route matches all.
  const std::string prefix = "path_prefix: /v1/agents";
  REQUIRE(example.find(prefix) != std::string::npos);
  example.replace(example.find(prefix), prefix.size(), "path_prefix: /");
  DemoUpstream upstream(2);
  GatewayProcess gateway("listen: \"127.0.0.1:0\"\nthreads: 2\naccess_log: \"off\"\nupstreams:\n  agents: { url: \"" +
                             upstream.url() + "\" }\n" + example,
                         kNoRedis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  const HeaderList caller = {{"X-Phlow-Agent-Id", "planner"}, {"X-API-Key", "key-1"}};
  // 5 calls of one agent at once: 4 in flight, the fifth 429 by `inflight`.
  std::vector<int> statuses = at_once(port, 5, "/hold?ms=800", caller);
  CHECK(count(statuses, 200) == 4);
  CHECK(count(statuses, 429) == 1);
  CHECK(held(upstream).at("max") == 4);
  // A call announcing more tokens than the hour's budget: 400 BAD_COST.
  HeaderList too_big = caller;
  too_big.emplace_back("X-Phlow-Cost", "100001");
  CHECK(http_request(port, "GET", "/x", too_big).status == 400);
  // The service reports 99,990 tokens used: the key's budget is (nearly) spent...
  CHECK(http_request(port, "GET", "/usage?tokens=99990", caller).status == 200);
  HeaderList ten = caller;
  ten.emplace_back("X-Phlow-Cost", "10");
  const HttpResponse r = http_request(port, "GET", "/x", ten);
  CHECK(r.status == 429);
  CHECK(json::parse(r.body).at("limit") == "tokens");
  // ...and a call the token budget rejects takes no slot: 4 still fit at once.
  statuses = at_once(port, 4, "/hold?ms=300", {{"X-Phlow-Agent-Id", "planner"}, {"X-API-Key", "key-2"}});
  CHECK(count(statuses, 200) == 4);
}
