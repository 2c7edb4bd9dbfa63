// The real binary in front of the real demo upstream: the smallest proof that the
// pieces fit. The detailed end-to-end suites live beside it.
#include <catch2/catch.hpp>

#include "support/demo_upstream.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"

using namespace phlow::test;

TEST_CASE("e2e: a YAML config limits by token and forwards the rest") {
  DemoUpstream upstream;
  GatewayProcess gateway(R"(
listen: "127.0.0.1:0"
threads: 1
access_log: "off"
upstreams:
  app: { url: ")" + upstream.url() + R"(" }
limits:
  auth: { requests: 3, window: 1m, key: token_hash }
routes:
  - match: { path_prefix: / }
    upstream: app
    limits: [auth]
)");
  const std::vector<std::pair<std::string, std::string>> token = {{"Authorization", "Bearer t1"}};
  for (int i = 0; i < 3; ++i) {
    const HttpResponse r = http_request(gateway.port(), "GET", "/hello", token, "");
    INFO(gateway.process().output());
    REQUIRE(r.status == 200);
    CHECK(r.header("X-Upstream") == "phlow-demo-upstream");
    CHECK(r.header("X-RateLimit-Remaining") == std::to_string(2 - i));
  }
  const HttpResponse limited = http_request(gateway.port(), "GET", "/hello", token, "");
  CHECK(limited.status == 429);
  CHECK(limited.body.find(R"("limit":"auth")") != std::string::npos);
  const HttpResponse other = http_request(gateway.port(), "GET", "/hello",
                                          {{"Authorization", "Bearer t2"}}, "");
  CHECK(other.status == 200);
}

TEST_CASE("e2e: zero-config mode applies auth 60 per minute") {
  DemoUpstream upstream;
  Process gateway(gateway_path(), {"--upstream", upstream.url(), "--listen", "127.0.0.1:0"});
  auto match = gateway.wait_for_output(std::regex(R"(listening on [^ ]*:(\d+) with)"),
                                       std::chrono::seconds(10));
  REQUIRE(match);
  const auto port = static_cast<std::uint16_t>(std::stoi((*match)[1]));
  HttpConnection connection(port);
  int ok = 0, limited = 0;
  for (int i = 0; i < 62; ++i) {
    const HttpResponse r = connection.request("GET", "/", {{"Authorization", "Bearer z"}}, "");
    (r.status == 200 ? ok : limited) += 1;
  }
  CHECK(ok == 60);
  CHECK(limited == 2);
}
