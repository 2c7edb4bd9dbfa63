#include <catch2/catch.hpp>

#include "config/cidr.hpp"
#include "config/env.hpp"
#include "config/limit_spec.hpp"
#include "config/listen_address.hpp"
#include "config/units.hpp"
#include "config/url.hpp"

#include <map>

using namespace phlow::config;
using std::chrono::milliseconds;

TEST_CASE("parse_duration accepts ms, s, m, h, d") {
  CHECK(parse_duration("250ms") == milliseconds(250));
  CHECK(parse_duration("30s") == milliseconds(30'000));
  CHECK(parse_duration("1m") == milliseconds(60'000));
  CHECK(parse_duration("1h") == milliseconds(3'600'000));
  CHECK(parse_duration("1d") == milliseconds(86'400'000));
  CHECK(parse_duration("0s") == milliseconds(0));
}

TEST_CASE("parse_duration rejects bare numbers, unknown units, signs and spaces") {
  for (const char* bad : {"", "60", "1min", "1 s", " 1s", "-1s", "+1s", "1.5s", "s", "1S",
                          "99999999999999999999d", "1ms5"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
}

TEST_CASE("parse_size accepts bytes and binary units") {
  CHECK(parse_size("512") == 512u);
  CHECK(parse_size("16KiB") == 16u * 1024);
  CHECK(parse_size("10MiB") == 10u * 1024 * 1024);
  CHECK(parse_size("1GiB") == 1024u * 1024 * 1024);
  for (const char* bad : {"", "16KB", "16kib", "1.5MiB", "-1", "MiB", "99999999999999GiB"}) {
    INFO(bad);
    CHECK_FALSE(parse_size(bad).has_value());
  }
}

TEST_CASE("format_duration and format_size pick the largest exact unit") {
  CHECK(format_duration(milliseconds(60'000)) == "1m");
  CHECK(format_duration(milliseconds(90'000)) == "90s");
  CHECK(format_duration(milliseconds(1'500)) == "1500ms");
  CHECK(format_duration(milliseconds(86'400'000)) == "1d");
  CHECK(format_duration(milliseconds(0)) == "0ms");
  CHECK(format_size(16 * 1024) == "16KiB");
  CHECK(format_size(100ull << 20) == "100MiB");
  CHECK(format_size(1000) == "1000");
}

TEST_CASE("parse_cidr reads IPv4 and IPv6 networks and bare addresses") {
  auto v4 = parse_cidr("10.0.0.0/8");
  REQUIRE(v4);
  CHECK_FALSE(v4->ipv6);
  CHECK(v4->prefix_length == 8);
  CHECK(v4->to_string() == "10.0.0.0/8");
  CHECK(v4->contains("10.1.2.3"));
  CHECK_FALSE(v4->contains("11.0.0.1"));
  CHECK(v4->contains("::ffff:10.9.9.9"));

  auto host = parse_cidr("127.0.0.1/32");
  REQUIRE(host);
  CHECK(host->contains("127.0.0.1"));
  CHECK_FALSE(host->contains("127.0.0.2"));

  auto v6 = parse_cidr("::1/128");
  REQUIRE(v6);
  CHECK(v6->ipv6);
  CHECK(v6->prefix_length == 128);
  CHECK(v6->contains("::1"));
  CHECK_FALSE(v6->contains("127.0.0.1"));

  auto net6 = parse_cidr("2001:db8::/32");
  REQUIRE(net6);
  CHECK(net6->contains("2001:db8:ffff::1"));
  CHECK_FALSE(net6->contains("2001:db9::1"));

  auto bare = parse_cidr("192.168.1.7");
  REQUIRE(bare);
  CHECK(bare->prefix_length == 32);
}

TEST_CASE("parse_cidr explains what is wrong") {
  std::string why;
  CHECK_FALSE(parse_cidr("10.0.0.1/8", &why));
  CHECK(why == "host bits set below the prefix; did you mean 10.0.0.0/8?");
  CHECK_FALSE(parse_cidr("10.0.0.0/33", &why));
  CHECK(why == "prefix length must be 0..32");
  CHECK_FALSE(parse_cidr("::/129", &why));
  CHECK(why == "prefix length must be 0..128");
  CHECK_FALSE(parse_cidr("10.0.0.0/", &why));
  CHECK_FALSE(parse_cidr("300.0.0.0/8", &why));
  CHECK(why == "not an IPv4 or IPv6 address");
  CHECK_FALSE(parse_cidr("localhost/8", &why));
}

TEST_CASE("parse_listen_address reads HOST:PORT and [v6]:PORT") {
  auto v4 = parse_listen_address("0.0.0.0:8080");
  REQUIRE(v4);
  CHECK(v4->host == "0.0.0.0");
  CHECK(v4->port == 8080);
  CHECK_FALSE(v4->ipv6);

  auto v6 = parse_listen_address("[::1]:9090");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 9090);
  CHECK(v6->ipv6);
  CHECK(v6->to_string() == "[::1]:9090");

  auto any = parse_listen_address(":80");
  REQUIRE(any);
  CHECK(any->host == "0.0.0.0");
}

TEST_CASE("parse_listen_address rejects bad input with a reason") {
  std::string why;
  CHECK_FALSE(parse_listen_address("8080", &why));
  CHECK(why == "expected HOST:PORT");
  CHECK_FALSE(parse_listen_address("0.0.0.0:70000", &why));
  CHECK(why == "port must be an integer 0..65535");
  CHECK_FALSE(parse_listen_address("::1:8080", &why));
  CHECK(why == "an IPv6 host needs brackets: [::1]:8080");
  CHECK_FALSE(parse_listen_address("example.com:80", &why));
  CHECK_FALSE(parse_listen_address("[::1]8080", &why));
  CHECK_FALSE(parse_listen_address("[zz]:80", &why));
  CHECK(why == "not an IPv6 address");
}

TEST_CASE("parse_upstream_url reads host, port and base path") {
  auto url = parse_upstream_url("http://127.0.0.1:8000");
  REQUIRE(url);
  CHECK(url->scheme == "http");
  CHECK(url->host == "127.0.0.1");
  CHECK(url->port == 8000);
  CHECK(url->base_path.empty());

  auto based = parse_upstream_url("http://agents.internal:9000/api/v1/");
  REQUIRE(based);
  CHECK(based->host == "agents.internal");
  CHECK(based->base_path == "/api/v1");
  CHECK(based->to_string() == "http://agents.internal:9000/api/v1");

  auto v6 = parse_upstream_url("http://[::1]:8000");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->to_string() == "http://[::1]:8000");

  auto default_port = parse_upstream_url("http://svc");
  REQUIRE(default_port);
  CHECK(default_port->port == 80);
}

TEST_CASE("parse_upstream_url takes https with port 443 by default") {
  auto url = parse_upstream_url("https://agent.internal/v1/");
  REQUIRE(url);
  CHECK(url->tls());
  CHECK(url->port == 443);
  CHECK(url->base_path == "/v1");
  CHECK(url->to_string() == "https://agent.internal:443/v1");
  auto plain = parse_upstream_url("http://agent.internal");
  REQUIRE(plain);
  CHECK_FALSE(plain->tls());
  CHECK(plain->port == 80);
}

TEST_CASE("parse_upstream_url rejects what it cannot proxy to") {
  std::string why;
  for (const char* bad : {"ftp://x:1", "https://", "127.0.0.1:8000", "http://", "http://:80",
                          "http://h:0", "http://h:99999", "http://h:80?q=1", "http://u@h:80",
                          "http://[::1"}) {
    INFO(bad);
    CHECK_FALSE(parse_upstream_url(bad, &why));
    CHECK_FALSE(why.empty());
  }
}

TEST_CASE("parse_redis_url reads password, host, port, db and topology") {
  auto url = parse_redis_url("redis://:s3cret@redis.internal:6380/2");
  REQUIRE(url);
  CHECK_FALSE(url->tls);
  CHECK(url->password == "s3cret");
  CHECK(url->username.empty());
  CHECK(url->endpoint() == "redis.internal:6380");
  CHECK(url->db == 2);

  auto user = parse_redis_url("redis://user:pw@h");
  REQUIRE(user);
  CHECK(user->username == "user");
  CHECK(user->nodes.at(0).port == 6379);

  std::string why;
  CHECK_FALSE(parse_redis_url("redis+cluster://user:pw@h/3", &why));
  CHECK(why == "invalid Redis URL \"***\": Redis Cluster has only database 0");  // never the password
  auto tls = parse_redis_url("rediss+sentinel://user:pw@s1,s2:26380/m/1");
  REQUIRE(tls);
  CHECK(tls->tls);
  CHECK(tls->topology == phlow::limiter::RedisTopology::sentinel);
  CHECK(why.find("pw") == std::string::npos);

  CHECK_FALSE(parse_redis_url("http://h:6379"));
  CHECK_FALSE(parse_redis_url("redis://h:6379/x"));
  CHECK_FALSE(parse_redis_url("redis://"));
}

TEST_CASE("redact_redis_url hides the password and nothing else") {
  CHECK(redact_redis_url("redis://:s3cret@h:6379/0") == "redis://:***@h:6379/0");
  CHECK(redact_redis_url("rediss://u:p@w@h") == "rediss://u:***@h");
  CHECK(redact_redis_url("redis://h:6379") == "redis://h:6379");
  CHECK(redact_redis_url("redis://token@h") == "redis://***@h");
  CHECK(redact_redis_url("nonsense:pw") == "***");
}

TEST_CASE("parse_identifier_key reads the five kinds") {
  CHECK(parse_identifier_key("token_hash")->kind == IdentifierKind::token_hash);
  CHECK(parse_identifier_key("agent_id")->kind == IdentifierKind::agent_id);
  CHECK(parse_identifier_key("ip")->kind == IdentifierKind::ip);
  CHECK(parse_identifier_key("api_key")->kind == IdentifierKind::api_key);
  auto header = parse_identifier_key("header:X-Tenant");
  REQUIRE(header);
  CHECK(header->kind == IdentifierKind::header);
  CHECK(header->header_name == "X-Tenant");
  CHECK(header->to_string() == "header:X-Tenant");
  CHECK_FALSE(parse_identifier_key("header:"));
  CHECK_FALSE(parse_identifier_key("header:bad name"));
  CHECK_FALSE(parse_identifier_key("token"));
}

TEST_CASE("expand_env substitutes variables and defaults") {
  const std::map<std::string, std::string> vars{{"HOST", "db"}, {"EMPTY", ""}};
  const Env env = [&](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  CHECK(expand_env("redis://${HOST}:6379", env).value == "redis://db:6379");
  CHECK(expand_env("${UNSET}", env).value == "");
  CHECK(expand_env("${UNSET:-fallback}", env).value == "fallback");
  CHECK(expand_env("${EMPTY:-fallback}", env).value == "fallback");
  CHECK(expand_env("${HOST:-fallback}", env).value == "db");
  CHECK(expand_env("${UNSET:-}", env).value == "");
  CHECK(expand_env("a$$b $x", env).value == "a$b $x");
  CHECK(expand_env("${HOST}${HOST}", env).value == "dbdb");

  auto unterminated = expand_env("${HOST", env);
  CHECK(unterminated.error == "unterminated \"${\" (expected ${NAME} or ${NAME:-default})");
  auto bad_name = expand_env("${1X}", env);
  CHECK(bad_name.error == "invalid variable name \"1X\" in ${...}");
}

TEST_CASE("parse_listen_address accepts the IPv6 wildcard") {
  auto any6 = parse_listen_address("[::]:8080");
  REQUIRE(any6);
  CHECK(any6->host == "::");
  CHECK(any6->ipv6);
  CHECK(any6->port == 8080);
}
