// The deployment files (SPEC.md, "Deployment"): docker-compose.yml, the Dockerfile and
// deploy/compose/gateway.yaml. No container engine runs here, so the compose stack is
// checked as a file and then started as the same processes: one redis-server with an
// append-only file, the demo upstream, two gateways on deploy/compose/gateway.yaml.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "limiter/descriptor.hpp"
#include "support/demo_upstream.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

using namespace phlow::test;

namespace {

std::string source_file(const std::string& relative) {
  std::ifstream in(std::string(PHLOW_SOURCE_DIR) + "/" + relative);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A service with its `<<: *anchor` merge key resolved (yaml-cpp keeps "<<" as a key).
YAML::Node service(const YAML::Node& compose, const std::string& name) {
  const YAML::Node raw = compose["services"][name];
  REQUIRE(raw.IsMap());
  YAML::Node merged(YAML::NodeType::Map);
  if (raw["<<"]) {
    for (const auto& entry : raw["<<"]) merged[entry.first.as<std::string>()] = entry.second;
  }
  for (const auto& entry : raw) {
    if (entry.first.as<std::string>() != "<<") merged[entry.first.as<std::string>()] = entry.second;
  }
  return merged;
}

std::vector<std::string> strings(const YAML::Node& list) {
  std::vector<std::string> out;
  for (const auto& item : list) out.push_back(item.as<std::string>());
  return out;
}

bool has(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// Replaces the one occurrence of `from` in `text` (fails the test when it is missing).
std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

std::string readyz_redis(std::uint16_t admin_port) {
  const HttpResponse r = http_request(admin_port, "GET", "/readyz");
  if (r.status != 200) return "status " + std::to_string(r.status);
  return nlohmann::json::parse(r.body).at("redis").get<std::string>();
}

}  // namespace

TEST_CASE("deploy: docker-compose.yml describes redis with AOF, upstream, two gateways and a load balancer") {
  const YAML::Node compose = YAML::LoadFile(std::string(PHLOW_SOURCE_DIR) + "/docker-compose.yml");
  const YAML::Node services = compose["services"];
  REQUIRE(services.IsMap());
  std::vector<std::string> names;
  for (const auto& entry : services) names.push_back(entry.first.as<std::string>());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"gateway-1", "gateway-2", "lb", "redis", "upstream"});

  // Redis: the official image, persistence on a named volume.
  const YAML::Node redis = service(compose, "redis");
  CHECK(redis["image"].as<std::string>() == "redis:7");
  const auto command = strings(redis["command"]);
  const auto appendonly = std::find(command.begin(), command.end(), "--appendonly");
  REQUIRE(appendonly != command.end());
  REQUIRE(appendonly + 1 != command.end());
  CHECK(*(appendonly + 1) == "yes");
  CHECK(has(strings(redis["volumes"]), "redis-data:/data"));
  CHECK(compose["volumes"]["redis-data"]);
  CHECK(has(strings(redis["healthcheck"]["test"]), "ping"));

  // The demo upstream, from the image the Dockerfile builds.
  const YAML::Node upstream = service(compose, "upstream");
  CHECK(upstream["build"].as<std::string>() == ".");
  CHECK(has(strings(upstream["entrypoint"]), "phlow-demo-upstream"));
  CHECK(upstream["healthcheck"]["test"]);

  // Two gateways: same image, same config file, same REDIS_URL; ready before lb.
  std::vector<std::string> admin_ports;
  for (const std::string name : {"gateway-1", "gateway-2"}) {
    INFO(name);
    const YAML::Node gw = service(compose, name);
    CHECK(gw["image"].as<std::string>() == upstream["image"].as<std::string>());
    CHECK(gw["environment"]["REDIS_URL"].as<std::string>() == "redis://redis:6379/0");
    CHECK(has(strings(gw["volumes"]), "./deploy/compose/gateway.yaml:/etc/phlow/gateway.yaml:ro"));
    CHECK(has(strings(gw["command"]), "/etc/phlow/gateway.yaml"));
    const auto check = strings(gw["healthcheck"]["test"]);
    CHECK(std::any_of(check.begin(), check.end(),
                      [](const std::string& s) { return s.find(":9090/readyz") != std::string::npos; }));
    CHECK(gw["depends_on"]["redis"]["condition"].as<std::string>() == "service_healthy");
    CHECK(gw["depends_on"]["upstream"]["condition"].as<std::string>() == "service_healthy");
    for (const auto& port : strings(gw["ports"])) {
      // The admin listener is published on the host's loopback only.
      CHECK(port.rfind("127.0.0.1:", 0) == 0);
      admin_ports.push_back(port);
    }
  }
  CHECK(admin_ports.size() == 2);
  CHECK(admin_ports[0] != admin_ports[1]);

  // The load balancer publishes 8080 and starts once both gateways are healthy.
  const YAML::Node lb = service(compose, "lb");
  CHECK(has(strings(lb["ports"]), "8080:8080"));
  CHECK(lb["depends_on"]["gateway-1"]["condition"].as<std::string>() == "service_healthy");
  CHECK(lb["depends_on"]["gateway-2"]["condition"].as<std::string>() == "service_healthy");
  const auto lb_volumes = strings(lb["volumes"]);
  REQUIRE(lb_volumes.size() == 1);
  const std::string lb_conf = source_file(lb_volumes[0].substr(2, lb_volumes[0].find(':') - 2));
  CHECK(lb_conf.find("server gateway-1:8080;") != std::string::npos);
  CHECK(lb_conf.find("server gateway-2:8080;") != std::string::npos);
  CHECK(lb_conf.find("proxy_pass http://phlow_gateways;") != std::string::npos);
}

TEST_CASE("deploy: the Dockerfile builds on Debian 12 and runs on debian:12-slim as a non-root user") {
  const std::string dockerfile = source_file("Dockerfile");
  const auto line = [&](const std::string& pattern) {
    return std::regex_search(dockerfile, std::regex(pattern, std::regex::multiline));
  };
  CHECK(line("^FROM debian:12 AS build$"));
  CHECK(line("^RUN scripts/install-deps.sh --build-only"));  // the same package list
  CHECK(line("-DCMAKE_BUILD_TYPE=Release"));
  CHECK(line("cpack -G DEB"));
  CHECK(line("^FROM debian:12-slim$"));
  CHECK(line("^USER phlow$"));
  CHECK(line("^EXPOSE 8080 9090$"));
  CHECK(line("^HEALTHCHECK .*\\n.*http://127\\.0\\.0\\.1:9090/healthz"));
  CHECK(line("^ENTRYPOINT \\[\"phlow-gateway\"\\]$"));
  CHECK(line("^CMD \\[\"--config\", \"/etc/phlow/gateway.yaml\"\\]$"));
  const std::string ignore = source_file(".dockerignore");
  CHECK(ignore.find("\nbuild-*\n") != std::string::npos);
  CHECK(ignore.find("\n.git\n") != std::string::npos);
}

TEST_CASE("deploy: deploy/compose/gateway.yaml passes --check") {
  const RunResult r = run_gateway({"--config", std::string(PHLOW_SOURCE_DIR) + "/deploy/compose/gateway.yaml",
                                   "--check"},
                                  {{"REDIS_URL", "redis://redis:6379/0"}});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("agent: http://upstream:8000") != std::string::npos);
  CHECK(r.out.find("auth: 60 per 1m") != std::string::npos);
}

TEST_CASE("deploy: the compose topology as processes shares one budget exactly and keeps it across a Redis restart") {
  // redis: as docker-compose.yml runs it (append-only file, fsync every second).
  const std::string data = temp_dir();
  RedisServer redis({"--appendonly", "yes", "--appendfsync", "everysec", "--dir", data});
  DemoUpstream upstream(2);
  // gateway-1 and gateway-2: the compose config with loopback listen addresses. Each
  // check gets 1 s instead of 50 ms: on a loaded machine a late check is decided in
  // memory by design (docs/RELIABILITY.md), and this test counts exactly.
  std::string yaml = source_file("deploy/compose/gateway.yaml");
  yaml = replace_once(yaml, "listen: \"0.0.0.0:8080\"", "listen: \"127.0.0.1:0\"");
  yaml = replace_once(yaml, "listen: \"0.0.0.0:9090\"", "listen: \"127.0.0.1:0\"");
  yaml = replace_once(yaml, "timeout: 50ms", "timeout: 1s");
  const EnvVars env = {{"REDIS_URL", redis.url("", "/0")}, {"UPSTREAM_URL", upstream.url()}};
  GatewayProcess first(yaml, env);
  GatewayProcess second(yaml, env);
  REQUIRE(first.process().wait_for_output("Connected to Redis", std::chrono::seconds(5)));
  REQUIRE(second.process().wait_for_output("Connected to Redis", std::chrono::seconds(5)));
  INFO(first.process().output());
  INFO(second.process().output());

  // The README's curl loop through a round-robin balancer: alternate the gateways.
  const HeaderList token = {{"Authorization", "Bearer demo"}};
  int allowed = 0;
  int rejected = 0;
  for (int i = 0; i < 63; ++i) {
    const HttpResponse r = http_request(i % 2 == 0 ? first.port() : second.port(), "GET", "/", token);
    if (r.status == 200) {
      ++allowed;
      CHECK(r.header("X-Upstream") == "phlow-demo-upstream");
    } else {
      CHECK(r.status == 429);
      ++rejected;
    }
  }
  CHECK(allowed == 60);
  CHECK(rejected == 3);
  const std::string key = "phlow:ratelimit:auth:" + phlow::limiter::sha256_hex("demo");
  CHECK(log_units(redis, key) == "60");

  // `docker compose restart redis`: SIGTERM, then the same data directory again.
  redis.stop();
  redis.start();
  CHECK(log_units(redis, key) == "60");
  for (auto* gateway : {&first, &second}) {
    REQUIRE(gateway->process().wait_for_output("Reconnected to Redis", std::chrono::seconds(10)));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (readyz_redis(gateway->admin_port()) != "connected" &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE(readyz_redis(gateway->admin_port()) == "connected");
  }
  // The budget survived: both gateways still reject the token, and nothing was added.
  for (int i = 0; i < 4; ++i) {
    const HttpResponse r = http_request(i % 2 == 0 ? first.port() : second.port(), "GET", "/", token);
    CHECK(r.status == 429);
  }
  CHECK(log_units(redis, key) == "60");
  // Another token still has its own full budget.
  CHECK(http_request(first.port(), "GET", "/", {{"Authorization", "Bearer other"}}).status == 200);
}
