// The Redis path end to end: a real redis-server, the real async client.
#include <hiredis/hiredis.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "limiter/distributed_rate_limiter.hpp"
#include "limiter/rejected_keys.hpp"
#include "support/redis_server.hpp"

using namespace phlow::limiter;
using phlow::test::RedisServer;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Slack for a deadline on a shared, sanitized, 2-core machine.
constexpr auto kSlack = 250ms;

LimiterOptions named(std::string name, Algorithm a = Algorithm::sliding_log) {
  LimiterOptions o;
  o.name = std::move(name);
  o.algorithm = a;
  return o;
}

// Polls `condition` every 10 ms for at most `limit`.
template <class F>
bool eventually(F condition, std::chrono::milliseconds limit = 5000ms) {
  const auto end = SteadyClock::now() + limit;
  while (SteadyClock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return condition();
}

int allowed_by_threads(DistributedRateLimiter& limiter, int threads, int calls_each,
                       std::atomic<int>* non_redis = nullptr) {
  std::atomic<int> allowed{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < calls_each; ++i) {
        const Decision d = limiter.check("shared-id");
        if (d.allowed) ++allowed;
        // Redis' answer, or a rejection Redis gave, remembered (the over-limit cache).
        const bool from_redis = d.source == DecisionSource::redis || d.source == DecisionSource::cache;
        if (non_redis && !from_redis) ++*non_redis;
      }
    });
  }
  for (auto& th : pool) th.join();
  return allowed.load();
}

// Redis' total_connections_received (counting the connection that asks).
long connections_received(const RedisServer& server) {
  const std::string info = server.command({"INFO", "stats"});
  const std::string field = "total_connections_received:";
  const auto at = info.find(field);
  REQUIRE(at != std::string::npos);
  return std::stol(info.substr(at + field.size()));
}

}  // namespace

TEST_CASE("redis: 2 processes x 8 threads on one identifier get exactly 100") {
  RedisServer server;
  int pipes[2][2];
  pid_t children[2];
  for (int p = 0; p < 2; ++p) {
    REQUIRE(::pipe(pipes[p]) == 0);
    children[p] = ::fork();
    REQUIRE(children[p] >= 0);
    if (children[p] == 0) {
      int result[2] = {-1, -1};
      {
        DistributedRateLimiter limiter(100, 3'600'000, server.url(), named("exact"));
        std::atomic<int> non_redis{0};
        result[0] = allowed_by_threads(limiter, 8, 40, &non_redis);
        result[1] = non_redis.load();
      }
      (void)!::write(pipes[p][1], result, sizeof result);
      ::_exit(0);
    }
  }
  int total = 0;
  for (int p = 0; p < 2; ++p) {
    int result[2] = {0, 0};
    REQUIRE(::read(pipes[p][0], result, sizeof result) == sizeof result);
    ::waitpid(children[p], nullptr, 0);
    CHECK(result[1] == 0);  // every decision came from Redis (or its remembered rejections)
    total += result[0];
  }
  CHECK(total == 100);
  CHECK(log_units(server, "phlow:ratelimit:exact:shared-id") == "100");
}

TEST_CASE("redis: each algorithm honours its window in real time") {
  RedisServer server;
  SECTION("sliding_log") {
    DistributedRateLimiter limiter(3, 300, server.url(), named("rt_log"));
    for (int i = 0; i < 3; ++i) CHECK(limiter.is_allowed("a"));
    const Decision d = limiter.check("a");
    CHECK_FALSE(d.allowed);
    CHECK(d.source == DecisionSource::redis);
    CHECK(d.results[0].retry_after_ms > 0);
    CHECK(d.results[0].retry_after_ms <= 300);
    std::this_thread::sleep_for(std::chrono::milliseconds(d.results[0].retry_after_ms + 20));
    CHECK(limiter.is_allowed("a"));
    // The sorted set holds millisecond scores, as SPEC.md's Redis layout says.
    const std::string scores = server.command(
        {"ZRANGE", "phlow:ratelimit:rt_log:a", "0", "-1", "WITHSCORES"});
    CHECK(scores.size() > 13);
    const std::string ttl = server.command({"PTTL", "phlow:ratelimit:rt_log:a"});
    CHECK(std::stoll(ttl) > 0);
    CHECK(std::stoll(ttl) <= 300);
  }
  SECTION("token_bucket") {
    LimiterOptions o = named("rt_tb", Algorithm::token_bucket);
    o.burst = 2;
    DistributedRateLimiter limiter(10, 1000, server.url(), o);
    CHECK(limiter.is_allowed("a"));
    CHECK(limiter.is_allowed("a"));
    const Decision d = limiter.check("a");
    CHECK_FALSE(d.allowed);
    CHECK(d.results[0].retry_after_ms <= 100);
    std::this_thread::sleep_for(std::chrono::milliseconds(d.results[0].retry_after_ms + 20));
    CHECK(limiter.is_allowed("a"));
  }
  SECTION("sliding_window") {
    DistributedRateLimiter limiter(2, 200, server.url(), named("rt_sw", Algorithm::sliding_window));
    CHECK(limiter.is_allowed("a"));
    CHECK(limiter.is_allowed("a"));
    const Decision d = limiter.check("a");
    CHECK_FALSE(d.allowed);
    std::this_thread::sleep_for(std::chrono::milliseconds(d.results[0].retry_after_ms + 20));
    CHECK(limiter.is_allowed("a"));
  }
}

TEST_CASE("redis: killed mid-run - checks fall back within the deadline then return") {
  RedisServer server;
  DistributedRateLimiter limiter(1000, 60'000, server.url(), named("fb"));
  REQUIRE(limiter.check("x").source == DecisionSource::redis);
  REQUIRE(limiter.redis_state() == RedisState::connected);

  server.kill();
  std::chrono::nanoseconds worst{0};
  int memory_decisions = 0;
  for (int i = 0; i < 200; ++i) {
    const auto start = SteadyClock::now();
    const Decision d = limiter.check("x");  // must not throw
    worst = std::max(worst, SteadyClock::now() - start);
    if (d.source == DecisionSource::memory) ++memory_decisions;
  }
  CHECK(worst < 50ms + kSlack);
  CHECK(memory_decisions >= 199);  // at most the one in flight when it died
  CHECK(limiter.redis_state() == RedisState::fallback);

  server.start();
  CHECK(eventually([&] { return limiter.check("y").source == DecisionSource::redis; }));
  CHECK(limiter.redis_state() == RedisState::connected);
  CHECK(server.command({"EXISTS", "phlow:ratelimit:fb:y"}) == "1");
}

TEST_CASE("redis: a paused server (SIGSTOP) never stalls a check past the deadline") {
  RedisServer server;
  DistributedRateLimiter limiter(1000, 60'000, server.url(), named("paused"));
  REQUIRE(limiter.check("x").source == DecisionSource::redis);
  server.pause();
  std::chrono::nanoseconds worst{0};
  for (int i = 0; i < 20; ++i) {
    const auto start = SteadyClock::now();
    const Decision d = limiter.check("x");
    worst = std::max(worst, SteadyClock::now() - start);
    CHECK(d.source == DecisionSource::memory);
  }
  CHECK(worst < 50ms + kSlack);
  // 20 late checks are far past the stall timeout (4 deadlines): Redis counts as down
  // and checks no longer wait for it.
  CHECK(limiter.redis_state() == RedisState::fallback);
  const auto start = SteadyClock::now();
  CHECK(limiter.check("x").store_failure == StoreError::not_connected);
  CHECK(SteadyClock::now() - start < 40ms);
  server.resume();
  CHECK(eventually([&] { return limiter.check("x").source == DecisionSource::redis; }));
}

TEST_CASE("redis: one late check fails alone - the connection and its replies stay in step") {
  RedisServer server;
  DistributedRateLimiter limiter(1000, 60'000, server.url(), named("late1"));
  REQUIRE(limiter.check("x").source == DecisionSource::redis);
  const long connections_before = connections_received(server);

  server.pause();
  const Decision late = limiter.check("x");  // misses its 50 ms deadline
  server.resume();  // well within the 200 ms stall timeout
  CHECK(late.source == DecisionSource::memory);
  CHECK(late.store_failure == StoreError::timeout);
  CHECK(limiter.redis_state() == RedisState::connected);

  // Redis ran the late check too (3 entries now); its reply was read and dropped, so
  // this check gets its own reply, not the late one's.
  const Decision next = limiter.check("x");
  CHECK(next.source == DecisionSource::redis);
  CHECK(next.results[0].remaining == 1000 - 3);
  CHECK(log_units(server, "phlow:ratelimit:late1:x") == "3");
  // No reconnect: the only connections Redis accepted since are the test's own
  // (one per command: the ZSCORE above and this INFO).
  CHECK(connections_received(server) == connections_before + 2);
}

TEST_CASE("redis: a client Redis rejected stays rejected in the fallback until its retry time") {
  RedisServer server;
  DistributedRateLimiter limiter(3, 60'000, server.url(), named("seed"));
  for (int i = 0; i < 3; ++i) REQUIRE(limiter.check("spent").allowed);
  const Decision in_redis = limiter.check("spent");
  REQUIRE(in_redis.source == DecisionSource::redis);
  REQUIRE_FALSE(in_redis.allowed);
  REQUIRE(limiter.check("half").allowed);

  server.kill();
  // Past the over-limit cache's bound, so that the fallback (not the cache, which may
  // answer while the connection has not seen the kill yet) decides.
  std::this_thread::sleep_for(std::chrono::milliseconds(RejectedKeys::kCacheMaxMs + 100));
  const Decision spent = limiter.check("spent");
  CHECK(spent.source == DecisionSource::memory);
  CHECK_FALSE(spent.allowed);
  CHECK(spent.results[0].remaining == 0);
  CHECK(spent.results[0].retry_after_ms > 50'000);
  CHECK(spent.results[0].retry_after_ms <= in_redis.results[0].retry_after_ms);
  // A client below its limit in Redis is counted in memory from zero (this instance
  // cannot know its Redis count), and is still held to the limit there.
  for (int i = 0; i < 3; ++i) CHECK(limiter.check("half").allowed);
  CHECK_FALSE(limiter.check("half").allowed);
  // reset() forgets the rejection too.
  limiter.reset("spent");
  CHECK(limiter.check("spent").allowed);
}

TEST_CASE("redis: failure modes allow and deny") {
  RedisServer server;
  LimiterOptions allow = named("fm");
  allow.on_failure = FailureMode::allow;
  LimiterOptions deny = named("fm");
  deny.on_failure = FailureMode::deny;
  DistributedRateLimiter allowing(1, 60'000, server.url(), allow);
  DistributedRateLimiter denying(1, 60'000, server.url(), deny);
  server.kill();
  for (int i = 0; i < 3; ++i) {
    const Decision a = allowing.check("x");
    CHECK(a.allowed);
    CHECK(a.source == DecisionSource::failure_allow);
    const Decision d = denying.check("x");
    CHECK_FALSE(d.allowed);
    CHECK(d.source == DecisionSource::failure_deny);
    CHECK(d.results[0].retry_after_ms > 0);
  }
}

// Calls of the check code by command, from INFO commandstats: "fcall 3 evalsha 1 eval 1".
std::string code_calls(const RedisServer& server) {
  std::string out;
  for (const std::string name : {"fcall", "evalsha", "eval"}) {
    out += (out.empty() ? "" : " ") + name + " " + std::to_string(command_calls(server, name));
  }
  return out;
}

TEST_CASE("redis: error replies (-READONLY) fall back per check - FUNCTION and SCRIPT FLUSH are survived") {
  RedisServer server;
  DistributedRateLimiter limiter(1000, 60'000, server.url(), named("err"));
  REQUIRE(limiter.check("x").source == DecisionSource::redis);
  CHECK(code_calls(server) == "fcall 1 evalsha 0 eval 0");  // Redis 7: the function

  server.command({"FUNCTION", "FLUSH"});
  server.command({"SCRIPT", "FLUSH"});
  CHECK(limiter.check("x").source == DecisionSource::redis);  // FCALL -> EVALSHA -> NOSCRIPT -> EVAL
  CHECK(code_calls(server) == "fcall 2 evalsha 1 eval 1");
  CHECK(limiter.check("x").source == DecisionSource::redis);  // EVALSHA until it reconnects
  CHECK(code_calls(server) == "fcall 2 evalsha 2 eval 1");

  // A replica refuses the script's writes with -READONLY.
  server.command({"REPLICAOF", "127.0.0.1", std::to_string(phlow::test::free_port())});
  const Decision d = limiter.check("x");
  CHECK(d.source == DecisionSource::memory);
  CHECK(d.allowed);
  CHECK(limiter.redis_state() == RedisState::connected);  // the connection is fine
  server.command({"REPLICAOF", "NO", "ONE"});
  CHECK(limiter.check("x").source == DecisionSource::redis);
}

TEST_CASE("redis: a user whose ACL refuses FUNCTION LOAD or FCALL is served by EVALSHA") {
  RedisServer server;
  REQUIRE(server.command({"ACL", "SETUSER", "noload", "on", ">pw", "~*", "&*", "+@all", "-function"}) == "OK");
  REQUIRE(server.command({"ACL", "SETUSER", "nocall", "on", ">pw", "~*", "&*", "+@all", "-fcall"}) == "OK");
  {
    DistributedRateLimiter limiter(5, 60'000, server.url("noload:pw"), named("acl1"));
    CHECK(limiter.check("x").source == DecisionSource::redis);
    CHECK(limiter.check("x").source == DecisionSource::redis);
    CHECK(code_calls(server) == "fcall 0 evalsha 2 eval 0");
  }
  {
    // Loaded, but FCALL refused (NOPERM): the call goes again as EVALSHA, and so
    // do the next ones.
    DistributedRateLimiter limiter(5, 60'000, server.url("nocall:pw"), named("acl2"));
    CHECK(limiter.check("x").source == DecisionSource::redis);
    const Decision second = limiter.check("x");
    CHECK(second.source == DecisionSource::redis);
    CHECK(second.results[0].remaining == 3);
    CHECK(code_calls(server) == "fcall 0 evalsha 4 eval 0");  // a refused call counts as none
  }
}

TEST_CASE("redis: AUTH and SELECT from the URL - a wrong password falls back") {
  RedisServer server({"--requirepass", "s3cret"});
  {
    DistributedRateLimiter wrong(5, 60'000, server.url(":nope"), named("auth"));
    CHECK(wrong.redis_state() == RedisState::fallback);
    CHECK(wrong.check("x").source == DecisionSource::memory);
  }
  DistributedRateLimiter right(5, 60'000, server.url(":s3cret", "/3"), named("auth"));
  CHECK(right.redis_state() == RedisState::connected);
  CHECK(right.check("x").source == DecisionSource::redis);
  CHECK(server.command({"EXISTS", "phlow:ratelimit:auth:x"}) == "0");  // not in db 0
  redisContext* c = redisConnect("127.0.0.1", server.port());
  REQUIRE(c != nullptr);
  freeReplyObject(redisCommand(c, "AUTH s3cret"));
  freeReplyObject(redisCommand(c, "SELECT 3"));
  auto* r = static_cast<redisReply*>(redisCommand(c, "EXISTS phlow:ratelimit:auth:x"));
  REQUIRE(r != nullptr);
  CHECK(r->integer == 1);
  freeReplyObject(r);
  redisFree(c);
}

TEST_CASE("redis: nothing listening at start means fallback then Redis once it is up") {
  const auto port = phlow::test::free_port();
  DistributedRateLimiter limiter(5, 60'000, "redis://127.0.0.1:" + std::to_string(port),
                                 named("late"));
  CHECK(limiter.redis_state() == RedisState::fallback);
  CHECK(limiter.check("x").source == DecisionSource::memory);
}

TEST_CASE("redis: reset deletes the key - huge identifiers stay bounded") {
  RedisServer server;
  DistributedRateLimiter limiter(1, 60'000, server.url(), named("rs"));
  CHECK(limiter.is_allowed("bob"));
  CHECK_FALSE(limiter.is_allowed("bob"));
  limiter.reset("bob");
  CHECK(limiter.is_allowed("bob"));

  const std::string huge(100'000, 'z');
  CHECK(limiter.is_allowed(huge));
  CHECK_FALSE(limiter.is_allowed(huge));
  const std::string keys = server.command({"KEYS", "phlow:ratelimit:rs:sha256:*"});
  CHECK(keys.size() == std::string("phlow:ratelimit:rs:sha256:").size() + 64);
}
