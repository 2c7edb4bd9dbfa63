// End-to-end command line and signals: exit codes, --check, zero-config mode, SIGHUP
// reload and SIGTERM drain, against the real binary.
#include <catch2/catch.hpp>

#include <csignal>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>

#include "support/demo_upstream.hpp"
#include "support/e2e.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"

using namespace phlow::test;

namespace {

using namespace std::chrono_literals;


bool contains(const std::string& text, std::string_view what) {
  return text.find(what) != std::string::npos;
}

std::string limited_yaml(const DemoUpstream& upstream, int requests) {
  return "listen: \"127.0.0.1:0\"\nthreads: 1\naccess_log: \"off\"\nupstreams:\n  app: { url: \"" +
         upstream.url() + "\" }\nlimits:\n  auth: { requests: " + std::to_string(requests) +
         ", window: 1m, key: token_hash }\nroutes:\n  - match: { path_prefix: / }\n"
         "    upstream: app\n    limits: [auth]\n";
}

int count_allowed(std::uint16_t port, int n, const HeaderList& headers) {
  int allowed = 0;
  for (int i = 0; i < n; ++i) {
    const int status = http_request(port, "GET", "/", headers).status;
    INFO("request " << i << " status " << status);
    REQUIRE((status == 200 || status == 429));
    if (status == 200) ++allowed;
  }
  return allowed;
}

// Polls the upstream's /count until it has received `expected` requests besides the
// polls themselves (/count answers how many requests came before it).
void wait_until_upstream_received(DemoUpstream& upstream, int expected) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (int polls = 0;; ++polls) {
    const auto count = nlohmann::json::parse(http_request(upstream.port(), "GET", "/count").body);
    if (count.at("requests").get<int>() >= polls + expected) return;
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::sleep_for(10ms);
  }
}

bool can_connect(std::uint16_t port) {
  try {
    HttpConnection connection(port, "127.0.0.1", 1000ms);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// Line 6 has an unknown key, line 11 names a limit that does not exist.
constexpr const char* kBadConfig = R"(listen: "127.0.0.1:0"
access_log: "off"
upstreams:
  app: { url: "http://127.0.0.1:9" }
limits:
  auth: { requests: 5, window: 1m, key: token_hash, windw: 3 }
routes:
  - match: { path_prefix: / }
    upstream: app
    limits:
      - nosuch
)";

}  // namespace

TEST_CASE("e2e cli: --version and --help exit 0") {
  const RunResult version = run_gateway({"--version"});
  CHECK(version.exit_code == 0);
  // "phlow-gateway 0.1.0 (commit 0123456789ab[-dirty], Release build)": the commit is
  // git's (or "unknown" outside a checkout), the rest comes from CMake.
  INFO(version.out);
  CHECK(std::regex_search(version.out,
                          std::regex("^phlow-gateway " PHLOW_EXPECTED_VERSION
                                     R"( \(commit ([0-9a-f]{12}(-dirty)?|unknown), )"
                                     PHLOW_EXPECTED_BUILD_TYPE R"( build\)\n$)")));
  const RunResult help = run_gateway({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(contains(help.out, "--config"));
  CHECK(contains(help.out, "--upstream"));
}

TEST_CASE("e2e cli: a bad command line exits 2") {
  const RunResult unknown = run_gateway({"--frobnicate"});
  CHECK(unknown.exit_code == 2);
  CHECK(contains(unknown.err, "--frobnicate"));
  const RunResult missing = run_gateway({"--config"});
  CHECK(missing.exit_code == 2);
  CHECK(contains(missing.err, "--config"));
  const std::string path = write_file(temp_dir(), "ok.yaml", "listen: \"127.0.0.1:0\"\n");
  const RunResult both = run_gateway({"--config", path, "--upstream", "http://127.0.0.1:9"});
  CHECK(both.exit_code == 2);
  const RunResult neither = run_gateway({});
  CHECK(neither.exit_code == 2);
  // --listen would be silently ignored next to a file that sets listen: refused.
  const RunResult listen = run_gateway({"--config", path, "--listen", "127.0.0.1:0"});
  CHECK(listen.exit_code == 2);
  CHECK(contains(listen.err, "--listen"));
}

TEST_CASE("e2e cli: --check on the example config prints a summary of routes and limits") {
  const std::string example = std::string(PHLOW_SOURCE_DIR) + "/config/examples/phlow-agent.yaml";
  const RunResult r = run_gateway({"--config", example, "--check"}, kNoRedis);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  for (const char* name : {"auth", "role", "per_ip", "per_api_key", "/roles", "agent"}) {
    CHECK(contains(r.out, name));
  }
  CHECK(contains(r.out, "60 per 1m"));
  CHECK_FALSE(contains(r.out + r.err, "listening on"));
}

TEST_CASE("e2e cli: --check on a bad config exits 1 naming file line and key path of each error") {
  const std::string path = write_file(temp_dir(), "bad.yaml", kBadConfig);
  const RunResult r = run_gateway({"--config", path, "--check"}, kNoRedis);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, path + ":6:"));
  CHECK(contains(r.err, "limits.auth.windw"));
  CHECK(contains(r.err, path + ":11:"));
  CHECK(contains(r.err, "routes[0].limits[0]"));
  CHECK(contains(r.err, "nosuch"));
}

TEST_CASE("e2e cli: a bad config never starts the gateway") {
  const std::string path = write_file(temp_dir(), "bad.yaml", kBadConfig);
  Process gateway(gateway_path(), {"--config", path}, kNoRedis);
  INFO(gateway.output());
  CHECK(gateway.wait_exit(10s) == 1);
  CHECK_FALSE(contains(gateway.read_stdout() + gateway.read_stderr(), "listening on"));
  CHECK(contains(gateway.read_stderr(), "limits.auth.windw"));
}

TEST_CASE("e2e cli: zero-config mode limits bearer tokens at 60 per minute") {
  DemoUpstream upstream;
  Process gateway(gateway_path(), {"--upstream", upstream.url(), "--listen", "127.0.0.1:0"},
                  kNoRedis);
  auto match = gateway.wait_for_output(std::regex(R"(listening on [^ ]*:(\d+) with)"), 10s);
  INFO(gateway.output());
  REQUIRE(match);
  const auto port = static_cast<std::uint16_t>(std::stoi((*match)[1]));
  HttpConnection connection(port);
  int allowed = 0;
  for (int i = 0; i < 61; ++i) {
    const HttpResponse r = connection.request("GET", "/", {{"Authorization", "Bearer zero"}});
    REQUIRE((r.status == 200 || r.status == 429));
    if (r.status == 200) {
      ++allowed;
      CHECK(r.header("X-RateLimit-Limit") == "60");
    }
  }
  CHECK(allowed == 60);
  CHECK(connection.request("GET", "/", {{"Authorization", "Bearer other"}}).status == 200);
  CHECK(connection.request("GET", "/", {}).status == 200);
  // No file to reload: SIGHUP says so and changes nothing.
  gateway.signal(SIGHUP);
  CHECK(gateway.wait_for_output("no config file to reload", 5s));
  CHECK(connection.request("GET", "/", {{"Authorization", "Bearer zero"}}).status == 429);
  CHECK(gateway.running());
}

TEST_CASE("e2e cli: SIGHUP reloads the config and the counters survive") {
  DemoUpstream upstream;
  GatewayProcess gateway(limited_yaml(upstream, 3), kNoRedis);
  INFO(gateway.process().output());
  const HeaderList token = {{"Authorization", "Bearer reload"}};
  CHECK(count_allowed(gateway.port(), 3, token) == 3);

  // A request in flight across the reload completes.
  const auto port = gateway.port();
  auto slow = std::async(std::launch::async, [port] {
    return http_request(port, "GET", "/slow?ms=500", {}).status;
  });
  wait_until_upstream_received(upstream, 3 + 1);  // the 3 allowed ones and the slow one
  gateway.rewrite_config(limited_yaml(upstream, 5));
  gateway.process().signal(SIGHUP);
  REQUIRE(gateway.process().wait_for_output("config reloaded", 5s));
  CHECK(count_allowed(gateway.port(), 4, token) == 2);
  CHECK(slow.get() == 200);

  // An invalid file: logged with the problem, the running config (5) stays.
  gateway.rewrite_config(limited_yaml(upstream, 1) + "bogus_key: 1\n");
  gateway.process().signal(SIGHUP);
  REQUIRE(gateway.process().wait_for_output("reload of", 5s));
  REQUIRE(gateway.process().wait_for_output("bogus_key", 5s));
  CHECK(count_allowed(gateway.port(), 6, {{"Authorization", "Bearer after-bad-reload"}}) == 5);
  CHECK(gateway.process().running());
  CHECK_FALSE(gateway.process().wait_exit(0ms).has_value());
}

TEST_CASE("e2e cli: SIGTERM finishes the request in flight and refuses new connections") {
  const int signo = GENERATE(SIGTERM, SIGINT);
  INFO("signal " << signo);
  DemoUpstream upstream;
  GatewayProcess gateway(
      "listen: \"127.0.0.1:0\"\nthreads: 1\naccess_log: \"off\"\nshutdown_grace: 3s\n"
      "upstreams:\n  app: { url: \"" + upstream.url() + "\" }\n"
      "routes:\n  - match: { path_prefix: / }\n    upstream: app\n    limits: []\n",
      kNoRedis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  // An idle keep-alive connection must not hold the drain up until the grace ends.
  HttpConnection idle(port);
  REQUIRE(idle.request("GET", "/").status == 200);
  auto slow = std::async(std::launch::async, [port] {
    return http_request(port, "GET", "/slow?ms=800", {});
  });
  wait_until_upstream_received(upstream, 2);
  const auto signalled = std::chrono::steady_clock::now();
  gateway.process().signal(signo);
  REQUIRE(gateway.process().wait_for_output("draining", 2s));
  // The acceptor closes right after the log line: poll for the refusal.
  bool refused = false;
  while (!refused && std::chrono::steady_clock::now() < signalled + 500ms) {
    refused = !can_connect(port);
  }
  CHECK(refused);
  CHECK(slow.wait_for(0ms) == std::future_status::timeout);  // refused while still in flight
  const HttpResponse finished = slow.get();
  CHECK(finished.status == 200);
  CHECK_FALSE(finished.keep_alive);  // a draining server says it closes the connection
  CHECK(gateway.process().wait_exit(4s) == 0);
  CHECK(std::chrono::steady_clock::now() - signalled < 2s);
  CHECK(idle.read_raw_until_close(1s).empty());
  CHECK_FALSE(can_connect(port));
}
