#include <catch2/catch.hpp>

#include "fake_request.hpp"
#include "gateway/identifier_extractor.hpp"

using phlow::config::IdentifierKey;
using phlow::config::IdentifierKind;
using phlow::config::Identifiers;
using phlow::config::parse_cidr;
using phlow::gateway::IdentifierExtractor;
using phlow::gateway::test::FakeHeaders;
using phlow::gateway::test::FakeRequest;

namespace {

// Trusts the loopback proxy, 10.0.0.0/8 and fd00::/8.
Identifiers trusting_proxies() {
  Identifiers settings;
  for (const char* cidr : {"127.0.0.1/32", "10.0.0.0/8", "fd00::/8"}) {
    settings.ip.trusted_proxies.push_back(*parse_cidr(cidr));
  }
  return settings;
}

std::string client_ip(std::string peer, FakeHeaders headers,
                      const Identifiers& settings = trusting_proxies()) {
  FakeRequest request;
  request.peer = std::move(peer);
  request.headers = std::move(headers);
  return IdentifierExtractor(settings).client_ip(request.view());
}

}  // namespace

TEST_CASE("client_ip: the peer without a forwarded header") {
  CHECK(client_ip("127.0.0.1", {}) == "127.0.0.1");
  CHECK(client_ip("203.0.113.7", {}) == "203.0.113.7");
  CHECK(client_ip("::1", {}) == "::1");
}

TEST_CASE("client_ip: a trusted peer vouches for the right-most untrusted address") {
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "203.0.113.7"}}) == "203.0.113.7");
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "198.51.100.1, 203.0.113.7"}}) ==
        "203.0.113.7");
  CHECK(client_ip("127.0.0.1", {{"x-forwarded-for", " 203.0.113.7 \t"}}) == "203.0.113.7");
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "2001:db8::1"}}) == "2001:db8::1");
}

TEST_CASE("client_ip: trusted proxies in the chain are skipped") {
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "198.51.100.1, 203.0.113.7, 10.1.1.1"}}) ==
        "203.0.113.7");
  CHECK(client_ip("10.0.0.5", {{"X-Forwarded-For", "203.0.113.7,10.2.2.2,127.0.0.1"}}) ==
        "203.0.113.7");
  CHECK(client_ip("fd00::1", {{"X-Forwarded-For", "2001:db8::9, fd12::3"}}) == "2001:db8::9");
  CHECK(client_ip("::ffff:127.0.0.1", {{"X-Forwarded-For", "203.0.113.7, ::ffff:10.0.0.1"}}) ==
        "203.0.113.7");
}

TEST_CASE("client_ip: every entry trusted gives the left-most") {
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "10.0.0.1, 10.0.0.2, 127.0.0.1"}}) ==
        "10.0.0.1");
}

TEST_CASE("client_ip: a garbage entry ends the walk at the peer") {
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "203.0.113.7, garbage"}}) == "127.0.0.1");
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "garbage, 10.0.0.1"}}) == "127.0.0.1");
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "203.0.113.7:4711"}}) == "127.0.0.1");
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "203.0.113.7,,10.0.0.1"}}) == "127.0.0.1");
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", ""}}) == "127.0.0.1");
  // The right-most untrusted entry is found before the garbage further left.
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "garbage, 203.0.113.7"}}) == "203.0.113.7");
}

TEST_CASE("client_ip: spoofing from an untrusted peer has no effect") {
  CHECK(client_ip("203.0.113.7", {{"X-Forwarded-For", "198.51.100.1"}}) == "203.0.113.7");
  CHECK(client_ip("11.0.0.1", {{"X-Forwarded-For", "10.0.0.1"}}) == "11.0.0.1");
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "198.51.100.1"}}, Identifiers{}) ==
        "127.0.0.1");
}

TEST_CASE("client_ip: multiple forwarded headers are one list in order") {
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "198.51.100.1, 203.0.113.7"},
                                {"X-Forwarded-For", "10.0.0.1"}}) == "203.0.113.7");
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "203.0.113.7"},
                                {"X-Forwarded-For", "198.51.100.1, 10.0.0.1"}}) ==
        "198.51.100.1");
}

TEST_CASE("client_ip: a configured forwarded header") {
  auto settings = trusting_proxies();
  settings.ip.forwarded_header = "X-Real-IP";
  CHECK(client_ip("127.0.0.1", {{"X-Forwarded-For", "198.51.100.1"}, {"X-Real-IP", "203.0.113.7"}},
                  settings) == "203.0.113.7");
}

TEST_CASE("ip: the forwarded IPv6 client is grouped") {
  auto settings = trusting_proxies();
  FakeRequest request;
  request.peer = "127.0.0.1";
  request.headers = FakeHeaders{{"X-Forwarded-For", "2001:db8:aa:bb:1:2:3:4, 10.0.0.1"}};
  std::string out;
  REQUIRE(IdentifierExtractor(settings).extract(IdentifierKey{IdentifierKind::ip, {}},
                                                request.view(), out));
  CHECK(out == "2001:db8:aa:bb::/64");
}
