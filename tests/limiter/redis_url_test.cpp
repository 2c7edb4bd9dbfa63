#include <catch2/catch.hpp>

#include "limiter/percent_decode.hpp"
#include "limiter/redis_url.hpp"
#include "redis/resp.hpp"

using namespace phlow::limiter;

TEST_CASE("redis URLs parse") {
  auto u = std::get<RedisUrl>(parse_redis_url("redis://:s%40cret@cache.local:6380/2"));
  REQUIRE(u.nodes.size() == 1);
  CHECK(u.topology == RedisTopology::standalone);
  CHECK(u.nodes[0].host == "cache.local");
  CHECK(u.nodes[0].port == 6380);
  CHECK(u.password == "s@cret");
  CHECK(u.username.empty());
  CHECK(u.db == 2);
  CHECK(u.endpoint() == "cache.local:6380");
  auto d = std::get<RedisUrl>(parse_redis_url("redis://localhost"));
  CHECK(d.nodes.at(0).port == 6379);
  CHECK(d.db == 0);
  auto acl = std::get<RedisUrl>(parse_redis_url("rediss://app:pw@[::1]:7000/0"));
  CHECK(acl.tls);
  CHECK(acl.nodes.at(0).host == "::1");
  CHECK(acl.username == "app");
  CHECK(acl.endpoint() == "[::1]:7000");
}

TEST_CASE("sentinel and cluster URLs list their nodes") {
  auto s = std::get<RedisUrl>(parse_redis_url("redis+sentinel://:pw@s1,s2:26380,[::1]/mymaster/3"));
  CHECK(s.topology == RedisTopology::sentinel);
  CHECK_FALSE(s.tls);
  CHECK(s.endpoint() == "s1:26379,s2:26380,[::1]:26379");
  CHECK(s.master_name == "mymaster");
  CHECK(s.db == 3);
  CHECK(s.password == "pw");
  auto c = std::get<RedisUrl>(parse_redis_url("rediss+cluster://u:p%2Fw@c1:7000,c2:7001"));
  CHECK(c.topology == RedisTopology::cluster);
  CHECK(c.tls);
  CHECK(c.endpoint() == "c1:7000,c2:7001");
  CHECK(c.username == "u");
  CHECK(c.password == "p/w");
  CHECK(std::get<RedisUrl>(parse_redis_url("redis+cluster://c1:7000/0")).db == 0);
  CHECK(to_string(RedisTopology::cluster) == "cluster");
}

TEST_CASE("malformed redis URLs say what is wrong - never the password") {
  for (const char* bad : {"http://localhost", "redis://", "redis://:pw@:6379", "redis://h:0",
                          "redis://h:99999", "redis://h:abc", "redis://h/x", "redis://h/-1",
                          "redis://[::1", "redis://:bad%zzescape@h", "localhost:6379",
                          "redis://a,b", "redis+sentinel://s1", "redis+sentinel://s1/",
                          "redis+sentinel://s1/m/x", "redis+cluster://c1,/", "redis+cluster://c1/2",
                          "redis+cluster://c1:,c2", "redis+cluster://,c2"}) {
    auto r = parse_redis_url(bad);
    INFO(bad);
    REQUIRE(std::holds_alternative<std::string>(r));
    CHECK(std::get<std::string>(r).find("bad%zz") == std::string::npos);
  }
}

TEST_CASE("RESP commands encode as arrays of bulk strings") {
  std::string out;
  redis::CommandWriter(out, 3).arg("SET").arg("k\r\n").arg(std::int64_t{-42});
  CHECK(out == "*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$3\r\n-42\r\n");
}

TEST_CASE("Redis versions below 5 are refused") {
  CHECK(redis::redis_version("# Server\r\nredis_version:7.0.15\r\nredis_mode:x") == "7.0.15");
  CHECK(redis::version_supported("5.0.0"));
  CHECK(redis::version_supported("7.0.15"));
  CHECK_FALSE(redis::version_supported("4.0.14"));
  CHECK_FALSE(redis::version_supported(""));
}

TEST_CASE("percent decode: one implementation, bad escapes rejected or kept") {
  using phlow::limiter::BadEscape;
  using phlow::limiter::percent_decode;
  CHECK(percent_decode("p%40ss%3Aw%2fd+x", BadEscape::reject) == "p@ss:w/d+x");  // '+' stays
  CHECK(percent_decode("%41%6a", BadEscape::keep) == "Aj");
  for (const std::string bad : {"%", "%4", "a%zz", "%4g", "%-1", "%+1", "x%"}) {
    INFO(bad);
    CHECK_FALSE(percent_decode(bad, BadEscape::reject).has_value());
    CHECK(percent_decode(bad, BadEscape::keep) == bad);  // nothing decodable in these
  }
  CHECK(percent_decode("100%25 %zz%41", BadEscape::keep) == "100% %zzA");
  CHECK(percent_decode("%00", BadEscape::reject) == std::string(1, '\0'));
}
