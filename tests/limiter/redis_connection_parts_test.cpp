// The parts of a Redis connection that need no socket: the handshake's steps and the
// pipeline of commands in flight (bytes out, replies in, deadlines), driven with bytes
// and clock values alone.
#include <catch2/catch.hpp>

#include <boost/asio/error.hpp>
#include <optional>
#include <string>
#include <vector>

#include "limiter/store_error.hpp"
#include "redis/cluster_map.hpp"
#include "redis/handshake.hpp"
#include "redis/pipeline.hpp"

using namespace phlow::limiter;
using boost::system::error_code;
using redis::Value;
using namespace std::chrono_literals;

namespace {

Value status(std::string text) { return Value{Value::Type::status, 0, std::move(text), {}}; }
Value error(std::string text) { return Value{Value::Type::error, 0, std::move(text), {}}; }
Value bulk(std::string text) { return Value{Value::Type::string, 0, std::move(text), {}}; }

std::string resp(std::initializer_list<std::string_view> args) {
  std::string out;
  redis::CommandWriter w(out, args.size());
  for (auto a : args) w.arg(a);
  return out;
}

RedisUrl url_of(std::string_view text) { return std::get<RedisUrl>(parse_redis_url(text)); }

const std::string kSha(40, 'a');
const Value kInfo = bulk("# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n");

}  // namespace

TEST_CASE("handshake: AUTH with user, SELECT, INFO, SCRIPT LOAD, in that order") {
  const RedisUrl url = url_of("redis://app:s3cret@h:1/2");
  redis::Handshake h(url, "return 1");
  REQUIRE_FALSE(h.done());
  CHECK(h.next() == resp({"AUTH", "app", "s3cret"}));
  CHECK(h.accept({}, status("OK")).empty());
  CHECK(h.next() == resp({"SELECT", "2"}));
  CHECK(h.accept({}, status("OK")).empty());
  CHECK(h.next() == resp({"INFO", "server"}));
  CHECK(h.accept({}, kInfo).empty());
  CHECK(h.next() == resp({"SCRIPT", "LOAD", "return 1"}));
  CHECK(h.accept({}, bulk(kSha)).empty());
  CHECK(h.done());
  CHECK(h.script_sha() == kSha);
}

TEST_CASE("handshake: on Redis 7 it loads the function library after the script") {
  const RedisUrl url = url_of("redis://h");
  const std::string library = "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)";
  auto through_script_load = [&](redis::Handshake& h, const Value& info) {
    CHECK(h.accept({}, info).empty());
    CHECK(h.next() == resp({"SCRIPT", "LOAD", "return 1"}));
    CHECK(h.accept({}, bulk(kSha)).empty());
  };
  {
    redis::Handshake h(url, "return 1", false, library, "lib1");
    through_script_load(h, kInfo);
    REQUIRE_FALSE(h.done());
    CHECK(h.next() == resp({"FUNCTION", "LOAD", library}));
    CHECK(h.accept({}, bulk("lib1")).empty());
    CHECK(h.done());
    CHECK(h.library_loaded());
    CHECK(h.script_sha() == kSha);
  }
  {  // another gateway loaded it first: the same content, the same name
    redis::Handshake h(url, "return 1", false, library, "lib1");
    through_script_load(h, kInfo);
    CHECK(h.accept({}, error("ERR Library 'lib1' already exists")).empty());
    CHECK(h.done());
    CHECK(h.library_loaded());
  }
  {  // refused (an ACL without FUNCTION): no failure, checks go by EVALSHA
    redis::Handshake h(url, "return 1", false, library, "lib1");
    through_script_load(h, kInfo);
    CHECK(h.accept({}, error("NOPERM this user has no permissions to run the 'function|load' command")).empty());
    CHECK(h.done());
    CHECK_FALSE(h.library_loaded());
  }
  {  // Redis 6 has no functions: done after SCRIPT LOAD
    redis::Handshake h(url, "return 1", false, library, "lib1");
    through_script_load(h, bulk("# Server\r\nredis_version:6.2.14\r\n"));
    CHECK(h.done());
    CHECK_FALSE(h.library_loaded());
  }
}

TEST_CASE("handshake: without a password or db it starts at INFO") {
  const RedisUrl url = url_of("redis://h");
  redis::Handshake h(url, "return 1");
  CHECK(h.next() == resp({"INFO", "server"}));
  const RedisUrl pass_only = url_of("redis://:pw@h");
  redis::Handshake p(pass_only, "");
  CHECK(p.next() == resp({"AUTH", "pw"}));
  CHECK(p.accept({}, status("OK")).empty());
  CHECK(p.accept({}, kInfo).empty());
  CHECK(p.done());  // no script: no SCRIPT LOAD
}

TEST_CASE("handshake failures name the step and the cause, never the password") {
  const RedisUrl url = url_of("redis://app:s3cret@h:1/2");
  {
    redis::Handshake h(url, "x");
    const std::string why = h.accept({}, error("WRONGPASS invalid username-password pair"));
    CHECK(why == "AUTH: WRONGPASS invalid username-password pair");
    CHECK(why.find("s3cret") == std::string::npos);
  }
  {
    redis::Handshake h(url, "x");
    CHECK(h.accept(StoreError::timeout, {}).starts_with("AUTH: Redis did not answer"));
  }
  {
    redis::Handshake h(url_of("redis://h"), "x");
    CHECK(h.accept({}, bulk("redis_version:4.0.9\r\n")).find("4.0.9 is too old") != std::string::npos);
  }
  {
    redis::Handshake h(url_of("redis://h"), "x");
    CHECK(h.accept({}, kInfo).empty());
    CHECK(h.accept({}, bulk("short")) == "SCRIPT LOAD: bad reply");
    CHECK_FALSE(h.done());
  }
}

namespace {

struct Completed {
  int id;
  error_code ec;
  Value value;
};

struct Harness {
  std::vector<Completed> done;
  redis::Pipeline pipeline{[this](redis::Pipeline::Handler h, error_code ec, Value v) {
    std::move(h)(ec, std::move(v));
  }};
  redis::Pipeline::Clock::time_point t0 = redis::Pipeline::Clock::now();

  void push(int id, std::string_view command, std::chrono::milliseconds deadline,
            std::chrono::milliseconds sent = 0ms) {
    pipeline.push(command, t0 + deadline, t0 + sent,
                  [this, id](error_code ec, Value v) { done.push_back({id, ec, std::move(v)}); });
  }
  bool feed(std::string_view bytes) { return pipeline.feed(bytes.data(), bytes.size()); }
};

}  // namespace

TEST_CASE("pipeline: commands go out in one write, replies come back in order across reads") {
  Harness t;
  t.push(1, resp({"GET", "a"}), 50ms);
  t.push(2, resp({"GET", "b"}), 50ms);
  t.push(3, resp({"PING"}), 50ms);
  std::string out;
  t.pipeline.take_output(out);
  CHECK(out == resp({"GET", "a"}) + resp({"GET", "b"}) + resp({"PING"}));
  CHECK_FALSE(t.pipeline.has_output());
  REQUIRE(t.feed("$1\r\nx\r\n:4"));  // one whole reply, one cut
  REQUIRE(t.done.size() == 1);
  CHECK(t.done[0].id == 1);
  CHECK(t.done[0].value.str == "x");
  REQUIRE(t.feed("2\r\n+PONG\r\n"));
  REQUIRE(t.done.size() == 3);
  CHECK(t.done[1].value.integer == 42);
  CHECK(t.done[2].value.str == "PONG");
  CHECK(t.pipeline.pending() == 0);
}

TEST_CASE("pipeline: a reply nobody asked for, or broken RESP, closes the connection") {
  Harness t;
  CHECK_FALSE(t.feed("+OK\r\n"));
  Harness u;
  u.push(1, resp({"PING"}), 50ms);
  CHECK_FALSE(u.feed("?garbage\r\n"));
  CHECK(u.done.empty());
}

TEST_CASE("pipeline: a late command fails alone and its late reply is dropped") {
  Harness t;
  t.push(1, resp({"GET", "a"}), 10ms);
  t.push(2, resp({"GET", "b"}), 30ms, 5ms);
  auto e = t.pipeline.expire(t.t0 + 5ms, true, 200ms);
  CHECK(e.expiry == redis::Pipeline::Expiry::none);
  CHECK(e.next == t.t0 + 10ms);
  e = t.pipeline.expire(t.t0 + 12ms, true, 200ms);
  CHECK(e.expiry == redis::Pipeline::Expiry::none);
  CHECK(e.next == t.t0 + 30ms);
  REQUIRE(t.done.size() == 1);
  CHECK(t.done[0].id == 1);
  CHECK(t.done[0].ec == StoreError::timeout);
  REQUIRE(t.feed("$1\r\nA\r\n$1\r\nB\r\n"));  // the late reply to 1 is read and dropped
  REQUIRE(t.done.size() == 2);
  CHECK(t.done[1].id == 2);
  CHECK(t.done[1].value.str == "B");
}

TEST_CASE("pipeline: the oldest reply overdue by the stall timeout closes the connection") {
  Harness t;
  t.push(1, resp({"PING"}), 1000ms);
  CHECK(t.pipeline.expire(t.t0 + 199ms, true, 200ms).next == t.t0 + 200ms);
  CHECK(t.pipeline.expire(t.t0 + 200ms, true, 200ms).expiry == redis::Pipeline::Expiry::stalled);
  t.pipeline.reset(StoreError::timeout);
  REQUIRE(t.done.size() == 1);
  CHECK(t.done[0].ec == StoreError::timeout);
  CHECK(t.pipeline.pending() == 0);
}

TEST_CASE("pipeline: a late handshake command closes, and reset fails what is pending") {
  Harness t;
  t.push(1, resp({"INFO", "server"}), 10ms);
  CHECK(t.pipeline.expire(t.t0 + 5ms, false, 200ms).expiry == redis::Pipeline::Expiry::none);
  CHECK(t.pipeline.expire(t.t0 + 10ms, false, 200ms).expiry == redis::Pipeline::Expiry::late);
  CHECK(t.done.empty());
  t.push(2, resp({"PING"}), 10ms);
  t.pipeline.reset(StoreError::connection);
  REQUIRE(t.done.size() == 2);
  CHECK(t.done[1].ec == StoreError::connection);
  CHECK_FALSE(t.pipeline.has_output());
  t.push(3, resp({"PING"}), 10ms);  // a fresh parser: a half reply from before is gone
  REQUIRE(t.feed("+PONG\r\n"));
  CHECK(t.done.back().id == 3);
}

TEST_CASE("store errors: one enum from the connection to the metrics") {
  CHECK(store_error_of({}) == StoreError::none);
  CHECK(store_error_of(StoreError::server_error) == StoreError::server_error);
  CHECK(store_error_of(boost::asio::error::operation_aborted) == StoreError::connection);
  CHECK(metric_label(StoreError::bad_reply) == "bad_reply");
  CHECK(error_code(StoreError::timeout).message() == "Redis did not answer before the deadline");
}

TEST_CASE("cluster: CLUSTER SLOTS ranges, redirections and a check's keys by slot") {
  using redis::Value;
  const auto integer = [](std::int64_t v) { return Value{Value::Type::integer, v, "", {}}; };
  const auto array = [](std::vector<Value> e) { return Value{Value::Type::array, 0, "", std::move(e)}; };
  const Value reply = array({array({integer(0), integer(5460), array({bulk("10.0.0.1"), integer(7000), bulk("id1")}),
                                    array({bulk("10.0.0.4"), integer(7003), bulk("id4")})}),
                             array({integer(5461), integer(16383), array({bulk(""), integer(7001), bulk("id2")})})});
  const RedisNode asked{"seed", 7001};
  auto parsed = redis::parse_cluster_slots(reply, asked);
  REQUIRE(std::holds_alternative<std::vector<redis::SlotRange>>(parsed));
  const auto& ranges = std::get<std::vector<redis::SlotRange>>(parsed);
  REQUIRE(ranges.size() == 2);
  CHECK(ranges[0].master.endpoint() == "10.0.0.1:7000");  // the master, not its replica
  CHECK(ranges[1].first == 5461);
  CHECK(ranges[1].master.endpoint() == "seed:7001");  // no address: the node asked
  CHECK(std::holds_alternative<std::string>(redis::parse_cluster_slots(error("ERR This instance has cluster support disabled"), asked)));
  CHECK(std::holds_alternative<std::string>(redis::parse_cluster_slots(array({array({integer(5), integer(2), array({bulk("h"), integer(1)})})}), asked)));

  const auto moved = redis::parse_redirect("MOVED 3999 127.0.0.1:6381");
  REQUIRE(moved);
  CHECK_FALSE(moved->ask);
  CHECK(moved->slot == 3999);
  CHECK(moved->node.endpoint() == "127.0.0.1:6381");
  CHECK(redis::parse_redirect("ASK 1 [::1]:7000")->node.host == "::1");
  CHECK_FALSE(redis::parse_redirect("MOVED 99999 h:1"));
  CHECK_FALSE(redis::parse_redirect("NOSCRIPT No matching script"));

  const Limit limit{.name = "l", .requests = 1, .window_ms = 1000};
  const std::vector<Descriptor> d{{&limit, "{a}1"}, {&limit, "b"}, {&limit, "{a}2"}};
  const redis::SlotGroups groups(d);
  REQUIRE(groups.count == 2);
  CHECK(groups.of(0).size() == 2);  // {a}1 and {a}2 share a slot
  CHECK(groups.of(0)[1] == 2);
  CHECK(groups.of(1)[0] == 1);
}
