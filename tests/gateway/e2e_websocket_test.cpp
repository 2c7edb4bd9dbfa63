// End-to-end WebSocket tunnels: a real gateway in front of the demo upstream's echo
// (/ws). The upgrade passes the route's limits, messages and large frames go both ways,
// idle tunnels close after http.idle_timeout, SIGTERM closes them after shutdown_grace,
// the open-tunnel gauge and the access log follow them, and an upgrade the upstream
// declines is relayed as a normal response; wss:// through the HTTPS listener.
#include <catch2/catch.hpp>

#include <csignal>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "metrics_scrape.hpp"
#include "support/demo_upstream.hpp"
#include "support/e2e.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/tls_files.hpp"
#include "support/ws_client.hpp"

using namespace phlow::test;
using namespace std::chrono_literals;

namespace {

// Upgrades to /ws: 2 per minute per client IP.
std::string ws_gateway_yaml(const DemoUpstream& upstream, const std::string& extra = "") {
  return "listen: \"127.0.0.1:0\"\nthreads: 1\naccess_log: stdout\n"
         "upstreams:\n  app: { url: \"" + upstream.url() + "\" }\n"
         "limits:\n  upgrades: { requests: 2, window: 1m, key: ip }\n"
         "routes:\n  - match: { path_prefix: /ws }\n    upstream: app\n    limits: [upgrades]\n"
         "  - match: { path_prefix: / }\n    upstream: app\n    limits: []\n" + extra;
}

double tunnels(std::uint16_t admin) {
  return metric(scrape(admin), "phlow_gateway_open_connections{side=\"websocket\"}");
}

// The access-log lines (JSON) with `status`.
std::vector<nlohmann::json> log_lines(GatewayProcess& gateway, int status) {
  std::vector<nlohmann::json> found;
  std::istringstream lines(gateway.process().read_stdout());
  for (std::string line; std::getline(lines, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("status", 0) == status) found.push_back(j);
  }
  return found;
}

}  // namespace

TEST_CASE("e2e websocket: a tunnel carries messages both ways and the upgrade is limited") {
  DemoUpstream upstream;
  GatewayProcess gateway(ws_gateway_yaml(upstream));
  WsClient first(gateway.port(), "/ws");
  REQUIRE(first.status() == 101);
  CHECK(first.header("X-RateLimit-Remaining") == "1");
  first.send("hello through the gateway");
  CHECK(first.receive() == "hello through the gateway");
  const std::string large(3 * 1024 * 1024 + 17, 'x');  // frames far larger than a relay chunk
  first.send(large);
  CHECK(first.receive() == large);
  for (int i = 0; i < 50; ++i) {
    first.send("message " + std::to_string(i));
    CHECK(first.receive() == "message " + std::to_string(i));
  }
  CHECK(tunnels(gateway.admin_port()) == 1);

  WsClient second(gateway.port(), "/ws");
  CHECK(second.status() == 101);
  CHECK(tunnels(gateway.admin_port()) == 2);
  WsClient third(gateway.port(), "/ws");  // the third upgrade of 2 per minute
  CHECK(third.status() == 429);
  CHECK(third.header("Retry-After") != "");

  first.close();
  CHECK(wait_until([&] { return tunnels(gateway.admin_port()) == 1; }, 2s));
  second.close();
  CHECK(wait_until([&] { return tunnels(gateway.admin_port()) == 0; }, 2s));
  // One access-log line per tunnel, written when it closed, with the bytes both ways.
  CHECK(wait_until([&] { return log_lines(gateway, 101).size() == 2; }, 2s));
  const auto lines = log_lines(gateway, 101);
  REQUIRE(lines.size() == 2);
  std::uint64_t in = 0;
  for (const auto& line : lines) in = std::max(in, line.at("bytes_in").get<std::uint64_t>());
  CHECK(in > large.size());
  CHECK(log_lines(gateway, 429).size() == 1);
  CHECK(metric(scrape(gateway.admin_port()), "phlow_gateway_requests_total{route=\"/ws\",code_class=\"1xx\"}") == 2);
}

TEST_CASE("e2e websocket: a tunnel idle both ways closes after http.idle_timeout") {
  DemoUpstream upstream;
  GatewayProcess gateway(ws_gateway_yaml(upstream, "http: { idle_timeout: 600ms }\n"));
  WsClient busy(gateway.port(), "/ws");
  REQUIRE(busy.open());
  // Traffic every 200 ms keeps a tunnel open past the idle timeout.
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(200ms);
    busy.send("ping");
    CHECK(busy.receive() == "ping");
  }
  const auto start = std::chrono::steady_clock::now();  // the last traffic
  CHECK(busy.wait_closed(5s));
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK(waited >= 500ms);
  CHECK(waited < 3s);
  CHECK(wait_until([&] { return tunnels(gateway.admin_port()) == 0; }, 2s));
}

TEST_CASE("e2e websocket: SIGTERM closes open tunnels after shutdown_grace") {
  DemoUpstream upstream;
  GatewayProcess gateway(ws_gateway_yaml(upstream, "shutdown_grace: 1s\n"));
  WsClient tunnel(gateway.port(), "/ws");
  REQUIRE(tunnel.open());
  const auto start = std::chrono::steady_clock::now();
  gateway.process().signal(SIGTERM);
  tunnel.send("still here");
  CHECK(tunnel.receive() == "still here");  // within the grace the tunnel works
  CHECK(tunnel.wait_closed(5s));
  CHECK(std::chrono::steady_clock::now() - start >= 800ms);
  const auto exit_code = gateway.process().wait_exit(5s);
  INFO(gateway.process().output());
  CHECK(exit_code == std::optional<int>(0));
}

TEST_CASE("e2e websocket: wss through the HTTPS listener") {
  DemoUpstream upstream;
  GatewayProcess gateway(ws_gateway_yaml(upstream, "tls: { cert_file: \"" + tls_files().server_cert +
                                                       "\", key_file: \"" + tls_files().server_key + "\" }\n"));
  WsClient secure(gateway.port(), HttpsOptions{tls_files().ca_cert, "localhost", ""}, "/ws");
  REQUIRE(secure.status() == 101);
  const std::string large(1024 * 1024, 'y');
  secure.send(large);
  CHECK(secure.receive() == large);
  secure.send("small");
  CHECK(secure.receive() == "small");
  CHECK(tunnels(gateway.admin_port()) == 1);
  secure.close();
  CHECK(wait_until([&] { return tunnels(gateway.admin_port()) == 0; }, 2s));
}

TEST_CASE("e2e websocket: an upgrade the upstream declines is relayed as a normal response") {
  DemoUpstream upstream;
  GatewayProcess gateway(ws_gateway_yaml(upstream));
  WsClient declined(gateway.port(), "/plain");  // the demo upgrades /ws only
  CHECK(declined.status() == 200);
  CHECK(tunnels(gateway.admin_port()) == 0);
  // The connection is still a normal HTTP connection: the gateway serves the next request.
  CHECK(http_request(gateway.port(), "GET", "/").status == 200);
}
