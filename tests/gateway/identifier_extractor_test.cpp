#include <catch2/catch.hpp>

#include <vector>

#include "support/base64url.hpp"

#include "fake_request.hpp"
#include "gateway/identifier_extractor.hpp"
#include "limiter/descriptor.hpp"

using phlow::config::IdentifierKey;
using phlow::config::IdentifierKind;
using phlow::config::Identifiers;
using phlow::gateway::IdentifierExtractor;
using phlow::gateway::test::FakeHeaders;
using phlow::gateway::test::FakeRequest;
using phlow::limiter::sha256_hex;

namespace {

using phlow::test::base64url;

std::string jwt(std::string_view payload) {
  return base64url(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url(payload) + ".c2lnbmF0dXJl";
}

// The identifier of `kind` for `request`, or "<missing>".
std::string extract(const FakeRequest& request, IdentifierKind kind,
                    const Identifiers& settings = {}, std::string header = {}) {
  const IdentifierExtractor extractor(settings);
  std::string out = "stale";
  if (!extractor.extract(IdentifierKey{kind, std::move(header)}, request.view(), out)) {
    return "<missing>";
  }
  return out;
}

FakeRequest with_headers(FakeHeaders headers, std::string target = "/") {
  FakeRequest request;
  request.headers = std::move(headers);
  request.target = std::move(target);
  return request;
}

}  // namespace

TEST_CASE("token_hash: SHA-256 of the bearer token") {
  const auto hash = [](FakeHeaders h) { return extract(with_headers(std::move(h)), IdentifierKind::token_hash); };
  CHECK(hash({{"Authorization", "Bearer abc"}}) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hash({{"authorization", "bearer abc"}}) == sha256_hex("abc"));
  CHECK(hash({{"Authorization", "BEARER   abc"}}) == sha256_hex("abc"));
  CHECK(hash({{"Authorization", "Bearer a.b.c"}}) == sha256_hex("a.b.c"));
  CHECK(hash({{"Authorization", "Bearer abc"}, {"Authorization", "Bearer other"}}) ==
        sha256_hex("abc"));
}

// A session hashes its connection's tokens through one memo: the same digests as
// without, whatever the order of tokens and API keys.
TEST_CASE("token_hash and api_key: a session's digest memo gives the same digests") {
  Identifiers settings;
  const IdentifierExtractor extractor(settings);
  phlow::limiter::Sha256Memo memo;
  const std::vector<FakeRequest> requests = {
      with_headers({{"Authorization", "Bearer abc"}}),
      with_headers({{"Authorization", "Bearer abc"}}),
      with_headers({{"Authorization", "Bearer other"}}),
      with_headers({{"X-Api-Key", "abc"}}),
      with_headers({{"Authorization", "Bearer abc"}}),
      with_headers({{"Authorization", "Bearer ab"}}),
      with_headers({}),
  };
  for (const IdentifierKind kind : {IdentifierKind::token_hash, IdentifierKind::api_key}) {
    for (const FakeRequest& request : requests) {
      const IdentifierKey key{kind, {}};
      std::string plain = "stale";
      std::string memoized = "stale";
      const auto without = extractor.identify(key, request.view(), plain);
      const auto with = extractor.identify(key, request.view(), memoized, nullptr, &memo);
      CHECK(without == with);
      if (without == phlow::gateway::Identified::found) CHECK(memoized == plain);
    }
  }
  std::string out;
  memo.hex("abc", out);
  CHECK(out == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  memo.hex("abd", out);
  CHECK(out == sha256_hex("abd"));
  out = "abc";
  memo.hex(out, out);  // the input may be the output
  CHECK(out == sha256_hex("abc"));
}

TEST_CASE("token_hash: missing without a bearer token") {
  const auto hash = [](FakeHeaders h) { return extract(with_headers(std::move(h)), IdentifierKind::token_hash); };
  CHECK(hash({}) == "<missing>");
  CHECK(hash({{"Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"}}) == "<missing>");
  CHECK(hash({{"Authorization", "Bearer"}}) == "<missing>");
  CHECK(hash({{"Authorization", "Bearer "}}) == "<missing>");
  CHECK(hash({{"Authorization", "Bearerabc"}}) == "<missing>");
  CHECK(hash({{"Authorization", ""}}) == "<missing>");
  CHECK(hash({{"X-Token", "Bearer abc"}}) == "<missing>");
}

TEST_CASE("agent_id: the header wins over the JWT claim") {
  const auto token = "Bearer " + jwt(R"({"agent_id":"from-jwt"})");
  CHECK(extract(with_headers({{"X-Phlow-Agent-Id", "agent-7"}, {"Authorization", token}}),
                IdentifierKind::agent_id) == "agent-7");
  CHECK(extract(with_headers({{"X-Phlow-Agent-Id", ""}, {"Authorization", token}}),
                IdentifierKind::agent_id) == "from-jwt");
  CHECK(extract(with_headers({{"Authorization", token}}), IdentifierKind::agent_id) == "from-jwt");
}

TEST_CASE("agent_id: configured header and claim names") {
  Identifiers settings;
  settings.agent_id.header = "X-Agent";
  settings.agent_id.jwt_claim = "sub";
  const auto token = "Bearer " + jwt(R"({"agent_id":"a","sub":"s-1"})");
  CHECK(extract(with_headers({{"x-agent", "h"}}), IdentifierKind::agent_id, settings) == "h");
  CHECK(extract(with_headers({{"X-Phlow-Agent-Id", "h"}, {"Authorization", token}}),
                IdentifierKind::agent_id, settings) == "s-1");
}

TEST_CASE("agent_id: integer claims render in decimal") {
  const auto claim = [](std::string payload) {
    return extract(with_headers({{"Authorization", "Bearer " + jwt(payload)}}),
                   IdentifierKind::agent_id);
  };
  CHECK(claim(R"({"agent_id":42})") == "42");
  CHECK(claim(R"({"agent_id":-7})") == "-7");
  CHECK(claim(R"({"agent_id":18446744073709551615})") == "18446744073709551615");
}

TEST_CASE("agent_id: unusable claims are missing") {
  const auto claim = [](std::string payload) {
    return extract(with_headers({{"Authorization", "Bearer " + jwt(payload)}}),
                   IdentifierKind::agent_id);
  };
  CHECK(claim(R"({"sub":"x"})") == "<missing>");
  CHECK(claim(R"({"agent_id":""})") == "<missing>");
  CHECK(claim(R"({"agent_id":1.5})") == "<missing>");
  CHECK(claim(R"({"agent_id":true})") == "<missing>");
  CHECK(claim(R"({"agent_id":null})") == "<missing>");
  CHECK(claim(R"({"agent_id":["a"]})") == "<missing>");
  CHECK(claim(R"({"agent_id":{"id":"a"}})") == "<missing>");
  CHECK(claim(R"(["agent_id","a"])") == "<missing>");
  CHECK(claim(R"("agent_id")") == "<missing>");
  CHECK(claim("not json") == "<missing>");
  CHECK(claim(R"({"agent_id":"a")") == "<missing>");
}

TEST_CASE("agent_id: malformed tokens are missing") {
  const auto claim = [](std::string token) {
    return extract(with_headers({{"Authorization", "Bearer " + token}}), IdentifierKind::agent_id);
  };
  const auto payload = base64url(R"({"agent_id":"a"})");
  CHECK(claim("h." + payload + ".s") == "a");
  CHECK(claim("h." + payload + ".") == "a");  // unsecured JWT: empty signature
  CHECK(claim("h." + payload) == "<missing>");
  CHECK(claim("h." + payload + ".s.x") == "<missing>");
  CHECK(claim(payload) == "<missing>");
  CHECK(claim("h.!!!!.s") == "<missing>");
  CHECK(claim("h." + payload + "=.s") == "<missing>");  // padding is not base64url
  CHECK(claim("h.eyJhZ2VudF9pZCI6ImEifQ+.s") == "<missing>");
  CHECK(claim("h.e.s") == "<missing>");  // 1 mod 4 characters
  CHECK(extract(with_headers({{"Authorization", "Basic " + jwt(R"({"agent_id":"a"})")}}),
                IdentifierKind::agent_id) == "<missing>");
  CHECK(extract(with_headers({}), IdentifierKind::agent_id) == "<missing>");
}

TEST_CASE("agent_id: a payload over 8 KiB is missing") {
  const auto claim = [](std::size_t filler) {
    const std::string payload = R"({"agent_id":"a","pad":")" + std::string(filler, 'x') + "\"}";
    return extract(with_headers({{"Authorization", "Bearer " + jwt(payload)}}),
                   IdentifierKind::agent_id);
  };
  const std::size_t overhead = std::string(R"({"agent_id":"a","pad":""})").size();
  CHECK(claim(8192 - overhead) == "a");
  CHECK(claim(8193 - overhead) == "<missing>");
  CHECK(claim(100000) == "<missing>");
}

TEST_CASE("api_key: the header wins over the query parameter") {
  CHECK(extract(with_headers({{"X-API-Key", "k1"}}, "/x?api_key=k2"), IdentifierKind::api_key) ==
        sha256_hex("k1"));
  CHECK(extract(with_headers({{"X-API-Key", ""}}, "/x?api_key=k2"), IdentifierKind::api_key) ==
        sha256_hex("k2"));
  CHECK(extract(with_headers({}, "/x?a=1&api_key=k2&b=2"), IdentifierKind::api_key) ==
        sha256_hex("k2"));
  CHECK(extract(with_headers({}, "/x?api_key=first&api_key=second"), IdentifierKind::api_key) ==
        sha256_hex("first"));
}

TEST_CASE("api_key: the query parameter is percent-decoded and keeps plus") {
  const auto key = [](std::string target) {
    return extract(with_headers({}, std::move(target)), IdentifierKind::api_key);
  };
  CHECK(key("/?api_key=a%2Fb%3d") == sha256_hex("a/b="));
  CHECK(key("/?api_key=a+b") == sha256_hex("a+b"));
  CHECK(key("/?api_key=a%20b") == sha256_hex("a b"));
  CHECK(key("/?api_key=100%") == sha256_hex("100%"));
  CHECK(key("/?api_key=%zz") == sha256_hex("%zz"));
  CHECK(key("/?api%5Fkey=v") == sha256_hex("v"));
}

TEST_CASE("api_key: configured names and missing cases") {
  Identifiers settings;
  settings.api_key.header = "X-Key";
  settings.api_key.query = "key";
  CHECK(extract(with_headers({{"x-key", "h"}}, "/?api_key=q"), IdentifierKind::api_key,
                settings) == sha256_hex("h"));
  CHECK(extract(with_headers({{"X-API-Key", "h"}}, "/?key=q"), IdentifierKind::api_key,
                settings) == sha256_hex("q"));
  const auto key = [](std::string target) {
    return extract(with_headers({}, std::move(target)), IdentifierKind::api_key);
  };
  CHECK(key("/") == "<missing>");
  CHECK(key("/?") == "<missing>");
  CHECK(key("/?api_key=") == "<missing>");
  CHECK(key("/?api_key") == "<missing>");
  CHECK(key("/?api_keyx=1&xapi_key=2") == "<missing>");
  CHECK(key("/api_key=1") == "<missing>");
}

TEST_CASE("header:NAME: the first value") {
  const auto header = [](FakeHeaders h) {
    return extract(with_headers(std::move(h)), IdentifierKind::header, {}, "X-Tenant");
  };
  CHECK(header({{"X-Tenant", "acme"}}) == "acme");
  CHECK(header({{"x-tenant", "acme"}, {"X-Tenant", "other"}}) == "acme");
  CHECK(header({{"X-Tenant", ""}}) == "<missing>");
  CHECK(header({{"X-Other", "acme"}}) == "<missing>");
  CHECK(header({}) == "<missing>");
}

TEST_CASE("ip: IPv4 peers as they are") {
  FakeRequest request;
  request.peer = "198.51.100.23";
  CHECK(extract(request, IdentifierKind::ip) == "198.51.100.23");
  request.peer = "::ffff:198.51.100.23";
  CHECK(extract(request, IdentifierKind::ip) == "198.51.100.23");
}

TEST_CASE("ip: IPv6 clients grouped by prefix") {
  const auto ip = [](std::string peer, int prefix) {
    Identifiers settings;
    settings.ip.ipv6_prefix = prefix;
    FakeRequest request;
    request.peer = std::move(peer);
    return extract(request, IdentifierKind::ip, settings);
  };
  CHECK(ip("2001:db8:1:2:3:4:5:6", 64) == "2001:db8:1:2::/64");
  CHECK(ip("2001:0DB8:0001:0002:ffff::1", 64) == "2001:db8:1:2::/64");
  CHECK(ip("2001:db8:1:2:3:4:5:6", 48) == "2001:db8:1::/48");
  CHECK(ip("2001:db8:1:2:3:4:5:6", 56) == "2001:db8:1::/56");
  CHECK(ip("2001:db8:1:2ff:3:4:5:6", 56) == "2001:db8:1:200::/56");
  CHECK(ip("2001:db8:1:2:3:4:5:6", 128) == "2001:db8:1:2:3:4:5:6");
  CHECK(ip("2001:DB8:0:0::1", 128) == "2001:db8::1");
  CHECK(ip("::1", 64) == "::/64");
  CHECK(ip("::ffff:10.1.2.3", 64) == "10.1.2.3");
}

TEST_CASE("ip: an unparsable peer counts by its text") {
  FakeRequest request;
  request.peer = "fe80::1%eth0";
  CHECK(extract(request, IdentifierKind::ip) == "fe80::1%eth0");
  request.peer = "";
  CHECK(extract(request, IdentifierKind::ip) == "unknown");
}

TEST_CASE("redact_target hides the api_key query parameter only") {
  Identifiers settings;
  IdentifierExtractor extractor(settings);
  CHECK(extractor.redact_target("/items") == "/items");
  CHECK(extractor.redact_target("/items?x=1") == "/items?x=1");
  CHECK(extractor.redact_target("/q?api_key=secret") == "/q?api_key=***");
  CHECK(extractor.redact_target("/q?a=1&api_key=secret&b=2&api%5Fkey=again") ==
        "/q?a=1&api_key=***&b=2&api%5Fkey=***");
  CHECK(extractor.redact_target("/q?api_key&other_api_key=x") == "/q?api_key&other_api_key=x");
  CHECK(extractor.redact_target("/q?") == "/q?");
}
