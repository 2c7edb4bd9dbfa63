#include <catch2/catch.hpp>

#include "config/summary.hpp"
#include "test_helpers.hpp"

using namespace phlow::config;
using namespace phlow::config::test;
using std::chrono::milliseconds;

TEST_CASE("a minimal file gets every documented default") {
  auto result = load_yaml(kMinimalYaml);
  const Config& c = require_ok(result);
  CHECK(c.listen == ListenAddress{"0.0.0.0", 8080, false});
  CHECK(c.threads == 0);
  CHECK(c.shutdown_grace == milliseconds(10'000));
  CHECK(c.http.header_timeout == milliseconds(10'000));
  CHECK(c.http.idle_timeout == milliseconds(60'000));
  CHECK(c.http.max_header_bytes == 16 * 1024);
  CHECK(c.http.max_body_bytes == 100ull * 1024 * 1024);
  CHECK(c.http.max_connections == 10000);
  CHECK(c.http.body_timeout == milliseconds(60'000));
  CHECK(c.http.max_headers == 100);
  CHECK(c.access_log.mode == AccessLogMode::stdout_lines);
  CHECK(c.log_level == LogLevel::info);
  CHECK(c.redis.url.empty());
  CHECK(c.redis.key_prefix == "phlow:ratelimit:");
  CHECK(c.redis.timeout == milliseconds(50));
  CHECK(c.redis.on_failure == OnFailure::fallback);
  CHECK(c.redis.fallback_share == 0);
  CHECK(c.admin.listen == ListenAddress{"127.0.0.1", 9090, false});
  CHECK(c.admin.token.empty());
  REQUIRE(c.upstreams.size() == 1);
  CHECK(c.upstreams[0].name == "agent");
  CHECK(c.upstreams[0].url.port == 8000);
  CHECK(c.upstreams[0].connect_timeout == milliseconds(2'000));
  CHECK(c.upstreams[0].timeout == milliseconds(30'000));
  CHECK(c.upstreams[0].max_idle_connections == 64);
  CHECK(c.identifiers.agent_id.header == "X-Phlow-Agent-Id");
  CHECK(c.identifiers.agent_id.jwt_claim == "agent_id");
  CHECK(c.identifiers.api_key.header == "X-API-Key");
  CHECK(c.identifiers.api_key.query == "api_key");
  CHECK(c.identifiers.ip.trusted_proxies.empty());
  CHECK(c.identifiers.ip.forwarded_header == "X-Forwarded-For");
  CHECK(c.identifiers.ip.ipv6_prefix == 64);
  CHECK(c.response_headers == ResponseHeaders{true, false});
  CHECK_FALSE(c.shadow_mode);
}

TEST_CASE("without limits and routes the seed defaults apply") {
  auto result = load_yaml(kMinimalYaml);
  const Config& c = require_ok(result);
  REQUIRE(c.limits.size() == 2);
  CHECK(c.limits[0].name() == "auth");
  CHECK(c.limits[0].limit.requests == 60);
  CHECK(c.limits[0].limit.window_ms == 60'000);
  CHECK(c.limits[0].limit.algorithm == phlow::limiter::Algorithm::sliding_log);
  CHECK(c.limits[0].key.kind == IdentifierKind::token_hash);
  CHECK(c.limits[1].name() == "role");
  CHECK(c.limits[1].limit.requests == 10);
  CHECK(c.limits[1].key.kind == IdentifierKind::agent_id);
  REQUIRE(c.routes.size() == 1);
  CHECK(c.routes[0].match.path_prefix == "/");
  CHECK(c.routes[0].match.methods.empty());
  CHECK(c.routes[0].upstream == "agent");
  CHECK(c.routes[0].upstream_index == 0);
  CHECK(c.routes[0].limits == std::vector<std::size_t>{0});
}

TEST_CASE("limits, routes and identifiers are read in file order") {
  auto result = load_yaml(kMinimalYaml + R"(
  other: { url: "http://10.0.0.2:9000/base" }
limits:
  zeta: { requests: 5, window_ms: 1500, key: "header:X-Tenant" }
  alpha: { requests: 20, window: 1s, key: api_key, algorithm: token_bucket, burst: 40, shadow: true }
routes:
  - match: { path_prefix: /roles, methods: [post, Get], host: API.Example.com }
    upstream: other
    limits: [alpha, zeta]
  - match: { path_prefix: / }
    upstream: agent
    limits: []
identifiers:
  ip: { trusted_proxies: [127.0.0.1/32, "::1/128", 10.0.0.0/8], ipv6_prefix: 56 }
response_headers: [ietf]
)");
  const Config& c = require_ok(result);
  REQUIRE(c.limits.size() == 2);
  CHECK(c.limits[0].name() == "zeta");
  CHECK(c.limits[0].limit.window_ms == 1500);
  CHECK(c.limits[0].key == IdentifierKey{IdentifierKind::header, "X-Tenant"});
  CHECK(c.limits[1].limit.algorithm == phlow::limiter::Algorithm::token_bucket);
  CHECK(c.limits[1].limit.burst == 40);
  CHECK(c.limits[1].limit.shadow);
  REQUIRE(c.routes.size() == 2);
  CHECK(c.routes[0].match.methods == std::vector<std::string>{"POST", "GET"});
  CHECK(c.routes[0].match.host == "api.example.com");
  CHECK(c.routes[0].upstream_index == 1);
  CHECK(c.routes[0].limits == std::vector<std::size_t>{1, 0});
  CHECK(c.routes[1].limits.empty());
  CHECK(c.upstreams[1].url.base_path == "/base");
  REQUIRE(c.identifiers.ip.trusted_proxies.size() == 3);
  CHECK(c.identifiers.ip.trusted_proxies[1].to_string() == "::1/128");
  CHECK(c.identifiers.ip.ipv6_prefix == 56);
  CHECK(c.response_headers == ResponseHeaders{false, true});
}

TEST_CASE("string values expand ${VAR} from the injected environment") {
  const auto env = fake_env({{"UP_PORT", "8001"}, {"TOKEN", "t0ken"}});
  auto result = load_yaml(R"(
upstreams:
  agent: { url: "http://127.0.0.1:${UP_PORT}" }
admin: { token: "${TOKEN}" }
redis: { key_prefix: "${PREFIX:-rl:}" }
log_level: "${LEVEL:-debug}"
)", env);
  const Config& c = require_ok(result);
  CHECK(c.upstreams[0].url.port == 8001);
  CHECK(c.admin.token == "t0ken");
  CHECK(c.redis.key_prefix == "rl:");
  CHECK(c.log_level == LogLevel::debug);
}

TEST_CASE("redis.url falls back to REDIS_URL when absent or empty") {
  const auto env = fake_env({{"REDIS_URL", "redis://:pw@cache:6379/1"}});
  CHECK(require_ok(load_yaml(kMinimalYaml, env)).redis.url == "redis://:pw@cache:6379/1");
  CHECK(require_ok(load_yaml(kMinimalYaml + "redis: { url: \"\" }\n", env)).redis.url ==
        "redis://:pw@cache:6379/1");
  CHECK(require_ok(load_yaml(kMinimalYaml + "redis: { url: \"redis://other:1\" }\n", env))
            .redis.url == "redis://other:1");
  // Unset everywhere: no Redis at all.
  CHECK(require_ok(load_yaml(kMinimalYaml + "redis: { url: \"${REDIS_URL}\" }\n")).redis.url.empty());
}

TEST_CASE("YAML typing: quoted scalars stay strings, off stays a string") {
  auto result = load_yaml(kMinimalYaml + "access_log: off\nlog_level: \"warn\"\nthreads: 4\n");
  const Config& c = require_ok(result);
  CHECK(c.access_log.mode == AccessLogMode::off);
  CHECK(c.log_level == LogLevel::warn);
  CHECK(c.threads == 4);
  CHECK_FALSE(load_yaml(kMinimalYaml + "threads: \"4\"\n").ok());
}

TEST_CASE("access_log takes stdout, off or a path") {
  auto file = require_ok(load_yaml(kMinimalYaml + "access_log: ./logs/access.log\n")).access_log;
  CHECK(file.mode == AccessLogMode::file);
  CHECK(file.path == "./logs/access.log");
}

TEST_CASE("fallback_share is auto or a number") {
  CHECK(require_ok(load_yaml(kMinimalYaml + "redis: { fallback_share: 3 }\n")).redis.fallback_share == 3);
  CHECK(require_ok(load_yaml(kMinimalYaml + "redis: { fallback_share: auto }\n")).redis.fallback_share == 0);
}

TEST_CASE("the example YAML and JSON files load to equal configs") {
  const std::string dir = PHLOW_CONFIG_EXAMPLES_DIR;
  const auto env = fake_env();
  auto yaml = load_config_file(dir + "/phlow-agent.yaml", env);
  auto json = load_config_file(dir + "/phlow-agent.json", env);
  const Config& a = require_ok(yaml);
  const Config& b = require_ok(json);
  CHECK(a == b);
  REQUIRE(a.limits.size() == 4);
  CHECK(a.limits[0].name() == "auth");
  CHECK(a.limits[1].name() == "role");
  CHECK(a.limits[2].key.kind == IdentifierKind::ip);
  CHECK(a.limits[3].key.kind == IdentifierKind::api_key);
  REQUIRE(a.routes.size() == 2);
  CHECK(a.routes[0].match.methods == std::vector<std::string>{"POST"});
  CHECK(a.routes[0].limits == std::vector<std::size_t>{0, 1, 2});
  CHECK(a.redis.url.empty());
  // Equality is not vacuous: a real difference is seen.
  Config changed = b;
  changed.limits[1].limit.requests = 11;
  CHECK_FALSE(a == changed);
}

TEST_CASE("REDIS_URL reaches the example through ${REDIS_URL:-}") {
  const std::string dir = PHLOW_CONFIG_EXAMPLES_DIR;
  auto result = load_config_file(dir + "/phlow-agent.yaml", fake_env({{"REDIS_URL", "redis://r:6379"}}));
  CHECK(require_ok(result).redis.url == "redis://r:6379");
}

TEST_CASE("to_redacted_json hides secrets and round-trips without them") {
  auto result = load_yaml(kMinimalYaml + "redis: { url: \"redis://:hunter2@r:6379/0\" }\n"
                                         "admin: { token: abc }\n");
  const Config& c = require_ok(result);
  const auto json = to_redacted_json(c);
  CHECK(json["redis"]["url"] == "redis://:***@r:6379/0");
  CHECK(json["admin"]["token"] == "***");
  CHECK(json.dump().find("hunter2") == std::string::npos);
  CHECK_FALSE(json["redis"].contains("tls"));

  auto sentinel = load_yaml(kMinimalYaml + "redis:\n  url: \"rediss+sentinel://:pw@s1,s2/mymaster\"\n"
                                           "  sentinel_password: s3cret\n  tls: { verify: false }\n");
  const auto sentinel_json = to_redacted_json(require_ok(sentinel));
  CHECK(sentinel_json["redis"]["url"] == "rediss+sentinel://:***@s1,s2/mymaster");
  CHECK(sentinel_json["redis"]["sentinel_password"] == "***");
  CHECK(sentinel_json["redis"]["tls"]["verify"] == false);
  CHECK(sentinel_json.dump().find("s3cret") == std::string::npos);
  const std::string summary = summarize(require_ok(sentinel));
  CHECK(summary.find("sentinel rediss+sentinel://:***@s1,s2/mymaster") != std::string::npos);
  CHECK(summary.find("TLS WITHOUT certificate verification") != std::string::npos);
  CHECK(summary.find("s3cret") == std::string::npos);

  const std::string dir = PHLOW_CONFIG_EXAMPLES_DIR;
  auto example = load_config_file(dir + "/phlow-agent.yaml", fake_env());
  const Config& original = require_ok(example);
  auto again = load_json(to_redacted_json(original).dump(2));
  CHECK(require_ok(again) == original);
}

TEST_CASE("TLS settings show file names in to_redacted_json and round-trip") {
  auto result = load_yaml("tls: { cert_file: /etc/phlow/tls.crt, key_file: /etc/phlow/tls.key }\n"
                          "upstreams:\n"
                          "  remote: { url: \"https://agent.internal:8443\", tls: { verify: false, server_name: agent } }\n"
                          "  local: { url: \"http://127.0.0.1:8000\" }\n"
                          "routes:\n  - { match: { path_prefix: / }, upstream: remote }\n");
  const Config& c = require_ok(result);
  CHECK(c.tls.enabled());
  CHECK(c.upstreams[0].url.tls());
  CHECK(c.upstreams[0].tls.server_name == "agent");
  const auto json = to_redacted_json(c);
  CHECK(json["tls"]["key_file"] == "/etc/phlow/tls.key");
  CHECK(json["upstreams"]["remote"]["tls"]["verify"] == false);
  CHECK_FALSE(json["upstreams"]["local"].contains("tls"));
  auto again = load_json(json.dump(2));
  CHECK(require_ok(again) == c);
  const std::string summary = summarize(c);
  CHECK(summary.find("tls        HTTPS with /etc/phlow/tls.crt") != std::string::npos);
  CHECK(summary.find("remote: https://agent.internal:8443 (connect 2s, timeout 30s) CERTIFICATE NOT VERIFIED") !=
        std::string::npos);
}

TEST_CASE("cost and concurrency limits are read, shown and round-trip") {
  auto result = load_yaml(
      "limits:\n"
      "  tokens: { requests: 100000, window: 1h, key: api_key, cost: \"header:X-Phlow-Cost\","
      " cost_from_response: \"header:X-Usage-Tokens\" }\n"
      "  plain: { requests: 5, window: 1m, key: ip }\n"
      "  inflight: { requests: 4, window: 5m, key: agent_id, algorithm: concurrency }\n"
      "routes:\n  - { match: { path_prefix: / }, upstream: agent, limits: [tokens, plain, inflight] }\n"
      "upstreams:\n  agent: { url: \"http://127.0.0.1:8000\" }\n");
  const Config& c = require_ok(result);
  CHECK(c.limits[0].cost_header == "X-Phlow-Cost");
  CHECK(c.limits[0].response_cost_header == "X-Usage-Tokens");
  CHECK(c.limits[0].limit.weighted);
  CHECK_FALSE(c.limits[1].limit.weighted);
  const auto json = to_redacted_json(c);
  CHECK(json["limits"]["tokens"]["cost"] == "header:X-Phlow-Cost");
  CHECK(json["limits"]["tokens"]["cost_from_response"] == "header:X-Usage-Tokens");
  CHECK_FALSE(json["limits"]["plain"].contains("cost"));
  auto again = load_json(json.dump(2));
  CHECK(require_ok(again) == c);
  const std::string summary = summarize(c);
  CHECK(summary.find("tokens: 100000 per 1h, sliding_log, key api_key, cost from request header "
                     "X-Phlow-Cost, plus cost from response header X-Usage-Tokens") != std::string::npos);
  CHECK(summary.find("inflight: 4 in flight, concurrency (lease 5m), key agent_id") != std::string::npos);
  CHECK(c.limits[2].limit.algorithm == phlow::limiter::Algorithm::concurrency);
  CHECK(json["limits"]["inflight"]["algorithm"] == "concurrency");
}

TEST_CASE("summarize shows listeners, redis mode, routes and limits") {
  const std::string dir = PHLOW_CONFIG_EXAMPLES_DIR;
  auto example = load_config_file(dir + "/phlow-agent.yaml",
                                  fake_env({{"REDIS_URL", "redis://:pw@cache:6379/0"}}));
  const std::string text = summarize(require_ok(example));
  INFO(text);
  CHECK(text.find("listen     0.0.0.0:8080") != std::string::npos);
  CHECK(text.find("admin      127.0.0.1:9090 (no token)") != std::string::npos);
  CHECK(text.find("redis      standalone redis://:***@cache:6379/0") != std::string::npos);
  CHECK(text.find("pw@") == std::string::npos);
  CHECK(text.find("[0] POST /roles -> agent, limits: auth, role, per_ip") != std::string::npos);
  CHECK(text.find("[1] * / -> agent, limits: auth, per_ip, per_api_key") != std::string::npos);
  CHECK(text.find("auth: 60 per 1m, sliding_log, key token_hash") != std::string::npos);
  CHECK(text.find("per_api_key: 20 per 1s, token_bucket (burst 40), key api_key, shadow") !=
        std::string::npos);
  auto memory = summarize(require_ok(load_yaml(kMinimalYaml)));
  CHECK(memory.find("redis      disabled") != std::string::npos);
}

TEST_CASE("zero_config builds the default gateway from a URL") {
  auto result = zero_config("http://127.0.0.1:8000", "127.0.0.1:8081", fake_env());
  const Config& c = require_ok(result);
  CHECK(c.listen == ListenAddress{"127.0.0.1", 8081, false});
  REQUIRE(c.upstreams.size() == 1);
  CHECK(c.upstreams[0].url.port == 8000);
  CHECK(c.limits == require_ok(load_yaml(kMinimalYaml)).limits);
  REQUIRE(c.routes.size() == 1);
  CHECK(c.routes[0].match.path_prefix == "/");
  CHECK(c.routes[0].limits == std::vector<std::size_t>{0});
  CHECK(require_ok(zero_config("http://h:1", "0.0.0.0:8080",
                               fake_env({{"REDIS_URL", "redis://r:1"}}))).redis.url == "redis://r:1");
}

TEST_CASE("zero_config reports a bad URL and a bad listen address") {
  auto result = zero_config("ftp://x", "nowhere", fake_env());
  CHECK_FALSE(result.ok());
  REQUIRE(result.errors.size() == 2);
  CHECK(result.errors[0].to_string() ==
        "--upstream: invalid upstream URL \"ftp://x\": expected http://host:port[/base] "
        "or https://host:port[/base]");
  CHECK(result.errors[1].to_string() == "--listen: invalid listen address \"nowhere\": expected HOST:PORT");
}

TEST_CASE("load_config_file rejects unknown extensions and missing files") {
  auto ext = load_config_file("/tmp/config.toml", fake_env());
  REQUIRE(ext.errors.size() == 1);
  CHECK(ext.errors[0].to_string() == "/tmp/config.toml: unknown file type (expected .yaml, .yml or .json)");
  auto missing = load_config_file("/nonexistent/phlow.yaml", fake_env());
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].message == "cannot open the file for reading");
  CHECK(format_for_path("A.YML") == Format::yaml);
}
