// End-to-end Redis over TLS: two real gateways sharing one redis-server through its
// TLS port (certificates made by the fixture with openssl), exact between them; a
// wrong CA sends checks to the fallback with the cause in the log; --check and
// /admin/config show the TLS settings but no secret.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "limiter/descriptor.hpp"
#include "support/demo_upstream.hpp"
#include "support/e2e.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"
#include "support/tls_files.hpp"

using namespace phlow::test;

namespace {

std::string tls_gateway_yaml(const DemoUpstream& upstream, const std::string& redis_url,
                             const std::string& ca_file) {
  return "listen: \"127.0.0.1:0\"\nthreads: 2\naccess_log: \"off\"\nupstreams:\n  app: { url: \"" +
         upstream.url() +
         "\" }\nlimits:\n  shared: { requests: 10, window: 1m, key: token_hash }\n"
         "routes:\n  - match: { path_prefix: / }\n    upstream: app\n    limits: [shared]\n"
         "redis:\n  url: \"" + redis_url + "\"\n  timeout: 1s\n  tls:\n    ca_file: \"" + ca_file + "\"\n";
}

}  // namespace

TEST_CASE("e2e redis tls: two gateways over rediss:// share one budget exactly") {
  const std::uint16_t tls_port = free_port();
  RedisServer redis(redis_tls_args(tls_port, true));
  DemoUpstream upstream;
  const std::string url = "rediss://localhost:" + std::to_string(tls_port) + "/0";
  std::string yaml = tls_gateway_yaml(upstream, url, tls_files().ca_cert);
  yaml += "    cert_file: \"" + tls_files().client_cert + "\"\n    key_file: \"" +
          tls_files().client_key + "\"\n";
  GatewayProcess first(yaml, kNoRedis);
  GatewayProcess second(yaml, kNoRedis);
  for (GatewayProcess* g : {&first, &second}) {
    INFO(g->process().output());
    REQUIRE(g->process().wait_for_output("Connected to Redis", std::chrono::seconds(5)));
  }
  const HeaderList token = {{"Authorization", "Bearer over-tls"}};
  const RaceResult raced = race({first.port(), second.port()}, 4, 6, "/", token);
  CHECK(raced.allowed == 10);
  CHECK(raced.other == 0);
  CHECK(log_units(redis, "phlow:ratelimit:shared:" + phlow::limiter::sha256_hex("over-tls")) ==
        "10");
  const auto ready = nlohmann::json::parse(http_request(first.admin_port(), "GET", "/readyz").body);
  CHECK(ready.at("redis") == "connected");
  CHECK(ready.at("redis_topology") == "standalone");
  // The config as the admin API shows it: file names, never a key's content.
  const std::string shown = http_request(first.admin_port(), "GET", "/admin/config").body;
  const auto redis_json = nlohmann::json::parse(shown).at("redis");
  CHECK(redis_json.at("tls").at("key_file") == tls_files().client_key);
  CHECK(redis_json.at("tls").at("verify") == true);
  CHECK(shown.find("PRIVATE KEY") == std::string::npos);
}

TEST_CASE("e2e redis tls: a wrong CA falls back to memory and the log names the cause") {
  const std::uint16_t tls_port = free_port();
  RedisServer redis(redis_tls_args(tls_port));
  DemoUpstream upstream;
  const std::string url = "rediss://localhost:" + std::to_string(tls_port);
  GatewayProcess gateway(tls_gateway_yaml(upstream, url, tls_files().other_ca_cert), kNoRedis);
  REQUIRE(gateway.process().wait_for_output(
      "Failed to connect to Redis, falling back to in-memory rate limiting", std::chrono::seconds(5)));
  REQUIRE(gateway.process().wait_for_output("certificate verify failed", std::chrono::seconds(5)));
  const HttpResponse r = http_request(gateway.port(), "GET", "/", {{"Authorization", "Bearer t"}});
  CHECK(r.status == 200);
  CHECK(redis.command({"DBSIZE"}) == "0");
}

TEST_CASE("e2e redis tls: --check names TLS and refuses files that do not load") {
  DemoUpstream upstream;
  const auto write = [](const std::string& yaml) {
    const std::string path = tls_files().dir + "/check-" + std::to_string(std::hash<std::string>{}(yaml)) + ".yaml";
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs(yaml.c_str(), f);
    std::fclose(f);
    return path;
  };
  const std::string good =
      write(tls_gateway_yaml(upstream, "rediss://:hunter2@localhost:6380", tls_files().ca_cert));
  const RunResult ok = run_gateway({"--check", "--config", good}, kNoRedis);
  INFO(ok.out << ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(ok.out.find("standalone rediss://:***@localhost:6380") != std::string::npos);
  CHECK(ok.out.find(", TLS") != std::string::npos);
  CHECK((ok.out + ok.err).find("hunter2") == std::string::npos);

  const std::string bad = write(tls_gateway_yaml(upstream, "rediss://localhost:6380", "/nonexistent/ca.pem"));
  const RunResult refused = run_gateway({"--check", "--config", bad}, kNoRedis);
  CHECK(refused.exit_code != 0);
  CHECK((refused.out + refused.err).find("redis.tls: ca_file: cannot load \"/nonexistent/ca.pem\"") !=
        std::string::npos);

  const std::string plain_with_tls =
      write(tls_gateway_yaml(upstream, "redis://localhost:6379", tls_files().ca_cert));
  const RunResult mismatch = run_gateway({"--check", "--config", plain_with_tls}, kNoRedis);
  CHECK(mismatch.exit_code != 0);
  CHECK((mismatch.out + mismatch.err).find("TLS settings need a rediss URL") != std::string::npos);
}
