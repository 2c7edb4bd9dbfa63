// The client against replies a real Redis would not send: each check must fall back
// (never crash, never hang), and the connection must recover.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "limiter/distributed_rate_limiter.hpp"
#include "redis/resp.hpp"
#include "support/fake_redis.hpp"

using namespace phlow::limiter;
using phlow::test::FakeRedis;

namespace {
LimiterOptions named(const char* name) {
  LimiterOptions o;
  o.name = name;
  return o;
}
}  // namespace

TEST_CASE("replies: a well-formed script reply is used, by FCALL from Redis 7 and by EVALSHA before") {
  for (const std::string version : {"7.0.0", "6.2.14"}) {
    INFO("Redis " << version);
    FakeRedis fake(version, "*5\r\n:1700000000000\r\n:1\r\n:4\r\n:1700000060000\r\n:0\r\n");
    DistributedRateLimiter limiter(5, 60'000, fake.url(), named("ok"));
    const Decision d = limiter.check("x");
    CHECK(d.source == DecisionSource::redis);
    CHECK(d.results[0].remaining == 4);
    CHECK(d.results[0].reset_ms == 1'700'000'060'000);
    CHECK(fake.evals_seen() == 1);
    CHECK(fake.fcalls_seen() == (version == "7.0.0" ? 1 : 0));
  }
}

TEST_CASE("replies: wrong shapes and types fall back to memory") {
  const char* bad_replies[] = {
      ":1\r\n",                                  // integer, not an array
      "*3\r\n:1\r\n:2\r\n:3\r\n",                // wrong length
      "*5\r\n:1\r\n$1\r\nx\r\n:4\r\n:5\r\n:0\r\n",  // a string among the integers
      "$-1\r\n",                                 // nil
      "-ERR something odd\r\n",                  // an error reply
      "*-1\r\n",                                 // nil array
  };
  for (const char* reply : bad_replies) {
    INFO(reply);
    FakeRedis fake("7.0.0", reply);
    DistributedRateLimiter limiter(5, 60'000, fake.url(), named("bad"));
    REQUIRE(limiter.redis_state() == RedisState::connected);
    const Decision d = limiter.check("x");
    CHECK(fake.evals_seen() >= 1);
    CHECK(d.source == DecisionSource::memory);
    CHECK(d.allowed);
  }
}

TEST_CASE("replies: protocol garbage closes the connection and falls back") {
  FakeRedis fake("7.0.0", "?garbage that is not RESP\r\n");
  DistributedRateLimiter limiter(5, 60'000, fake.url(), named("garbage"));
  for (int i = 0; i < 3; ++i) CHECK(limiter.check("x").source == DecisionSource::memory);
}

TEST_CASE("replies: Redis older than 5.0 is refused") {
  FakeRedis fake("4.0.14", ":1\r\n");
  DistributedRateLimiter limiter(5, 60'000, fake.url(), named("old"));
  CHECK(limiter.redis_state() == RedisState::fallback);
  CHECK(limiter.check("x").source == DecisionSource::memory);
  CHECK(fake.evals_seen() == 0);
}

TEST_CASE("replies: a server that never answers the script costs one deadline") {
  FakeRedis fake("7.0.0", "");  // swallows every call of the check code
  DistributedRateLimiter limiter(5, 60'000, fake.url(), named("silent"));
  const auto start = std::chrono::steady_clock::now();
  const Decision d = limiter.check("x");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(300));
  CHECK(d.source == DecisionSource::memory);
}

TEST_CASE("replies: a bulk string past kMaxReplyBytes closes the connection at once") {
  // Announces 100 MB and sends 2 MiB of it: without the cap the reader buffers it and
  // the check waits for its deadline (a timeout); with it, a protocol error.
  FakeRedis fake("7.0.0", "$100000000\r\n" + std::string(2 << 20, 'a'));
  DistributedRateLimiter limiter(5, 60'000, fake.url(), named("huge"));
  const Decision d = limiter.check("x");
  CHECK(d.source == DecisionSource::memory);
  CHECK(d.store_failure == StoreError::bad_reply);
  CHECK(fake.evals_seen() == 1);
}

// Found by fuzz/resp_fuzzer: "*500000000\r\n" made hiredis 0.14 allocate a 4 GB
// element table before a single element had arrived.
TEST_CASE("replies: arrays past kMaxReplyElements and replies past kMaxReplyValues or kMaxReplyBytes are protocol errors") {
  using namespace phlow::limiter::redis;
  const auto read = [](const std::string& bytes) {
    ValueReader reader;
    REQUIRE(reader.feed(bytes.data(), bytes.size()));
    Value value;
    return reader.next(value);
  };
  using Next = ValueReader::Next;
  CHECK(read("*500000000\r\n:0\r\n") == Next::error);
  CHECK(read("*" + std::to_string(kMaxReplyElements + 1) + "\r\n") == Next::error);
  CHECK(read("*" + std::to_string(kMaxReplyElements) + "\r\n:1\r\n") == Next::none);  // 1 of 1024
  CHECK(read("*2\r\n*65\r\n:1\r\n") == Next::none);
  CHECK(read("*2147483648\r\n:1\r\n") == Next::error);  // INT_MIN once truncated
  CHECK(read("*-1\r\n") == Next::value);                    // nil
  // Arrays of arrays: 7 bytes of header each make room for 1024 values; a reply may
  // hold kMaxReplyValues of them in all.
  std::string full = "*1024\r\n";
  for (int i = 0; i < kMaxReplyElements; ++i) full += ":1\r\n";
  const auto arrays = [&](std::size_t n) {
    std::string out = "*" + std::to_string(n) + "\r\n";
    for (std::size_t i = 0; i < n; ++i) out += full;
    return out;
  };
  const std::size_t fit = kMaxReplyValues / (kMaxReplyElements + 1);  // 63 with their own slots
  CHECK(read(arrays(fit)) == Next::value);
  CHECK(read(arrays(kMaxReplyValues / kMaxReplyElements)) == Next::error);
  // Strings: kMaxReplyBytes in all.
  const std::string half(kMaxReplyBytes / 2, 'x');
  const std::string bulk = "$" + std::to_string(half.size()) + "\r\n" + half + "\r\n";
  CHECK(read("*3\r\n" + bulk + bulk) == Next::none);
  CHECK(read("*3\r\n" + bulk + bulk + "$1\r\ny\r\n") == Next::error);
}

TEST_CASE("replies: the reader builds each reply's tree whole, fed a byte at a time") {
  using namespace phlow::limiter::redis;
  const std::string bytes =
      "*4\r\n:42\r\n$5\r\nhello\r\n*3\r\n+OK\r\n$-1\r\n*0\r\n-ERR no\r\n"  // nested, then
      ":-7\r\n";                                                          // a second reply
  ValueReader reader;
  std::vector<Value> got;
  for (char c : bytes) {
    REQUIRE(reader.feed(&c, 1));
    Value value;
    while (true) {
      const ValueReader::Next next = reader.next(value);
      REQUIRE(next != ValueReader::Next::error);
      if (next == ValueReader::Next::none) break;
      got.push_back(std::move(value));
    }
  }
  REQUIRE(got.size() == 2);
  const Value& v = got[0];
  REQUIRE(v.type == Value::Type::array);
  REQUIRE(v.elements.size() == 4);
  CHECK((v.elements[0].type == Value::Type::integer && v.elements[0].integer == 42));
  CHECK((v.elements[1].type == Value::Type::string && v.elements[1].str == "hello"));
  const Value& inner = v.elements[2];
  REQUIRE(inner.type == Value::Type::array);
  REQUIRE(inner.elements.size() == 3);
  CHECK((inner.elements[0].type == Value::Type::status && inner.elements[0].str == "OK"));
  CHECK(inner.elements[1].type == Value::Type::nil);
  CHECK((inner.elements[2].type == Value::Type::array && inner.elements[2].elements.empty()));
  CHECK((v.elements[3].is_error() && v.elements[3].str == "ERR no"));
  CHECK((got[1].type == Value::Type::integer && got[1].integer == -7));
  CHECK_FALSE(reader.overfull());
}
