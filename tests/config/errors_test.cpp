// Every kind of config error, asserted with its file, line, key path and message.

#include <catch2/catch.hpp>

#include "test_helpers.hpp"

using namespace phlow::config;
using namespace phlow::config::test;

namespace {

using Lines = std::vector<std::string>;

Lines rendered(const LoadResult& result) {
  Lines out;
  for (const auto& error : result.errors) out.push_back(error.to_string());
  return out;
}

// Errors of kMinimalYaml (lines 1-2) followed by `extra` (from line 3 on).
Lines errors_with(const std::string& extra) {
  auto result = load_yaml(kMinimalYaml + extra);
  CHECK_FALSE(result.ok());
  CHECK(result.config == nullptr);
  return rendered(result);
}

}  // namespace

TEST_CASE("unknown keys are errors at every level, with a suggestion") {
  CHECK(errors_with("lmits: {}\n") ==
        Lines{"test.yaml:3: lmits: unknown key \"lmits\" (did you mean \"limits\"?)"});
  CHECK(errors_with("http: { idle: 1s }\n") ==
        Lines{"test.yaml:3: http.idle: unknown key \"idle\" (expected one of: body_timeout, "
              "header_timeout, idle_timeout, max_body_bytes, max_connections, max_header_bytes, "
              "max_headers)"});
  CHECK(errors_with("limits:\n  auth: { requests: 1, window: 1m, key: ip, shadw: true }\n") ==
        Lines{"test.yaml:4: limits.auth.shadw: unknown key \"shadw\" (did you mean \"shadow\"?)"});
  CHECK(errors_with("routes:\n  - match: { path_prefix: /, method: [GET] }\n") ==
        Lines{"test.yaml:4: routes[0].match.method: unknown key \"method\" (did you mean \"methods\"?)"});
  CHECK(errors_with("identifiers: { ip: { trusted: [] } }\n") ==
        Lines{"test.yaml:3: identifiers.ip.trusted: unknown key \"trusted\" (expected one of: "
              "forwarded_header, ipv6_prefix, trusted_proxies)"});
}

TEST_CASE("a typo in a limit's key name rejects the file instead of disabling it") {
  CHECK(errors_with("limits:\n  auth: { requests: 60, windw: 1m, key: token_hash }\n") ==
        Lines{"test.yaml:4: limits.auth: missing window (a duration such as 1m) or window_ms",
              "test.yaml:4: limits.auth.windw: unknown key \"windw\" (did you mean \"window\"?)"});
}

TEST_CASE("wrong types name what was expected and what was found") {
  CHECK(errors_with("threads: many\n") ==
        Lines{"test.yaml:3: threads: expected an integer 0..1024, got \"many\""});
  CHECK(errors_with("shadow_mode: \"true\"\n") ==
        Lines{"test.yaml:3: shadow_mode: expected true or false, got \"true\""});
  CHECK(errors_with("http: 5\n") == Lines{"test.yaml:3: http: expected a mapping, got the number 5"});
  CHECK(errors_with("routes: { path_prefix: / }\n") ==
        Lines{"test.yaml:3: routes: expected a list of routes, got a mapping"});
  CHECK(errors_with("admin: { token: [a] }\n") ==
        Lines{"test.yaml:3: admin.token: expected a string, got a list"});
}

TEST_CASE("bad durations and sizes") {
  CHECK(errors_with("shutdown_grace: 10\n") ==
        Lines{"test.yaml:3: shutdown_grace: expected a duration such as 250ms, 30s, 1m, 1h or "
              "1d, got the number 10"});
  CHECK(errors_with("http:\n  idle_timeout: 1 minute\n") ==
        Lines{"test.yaml:4: http.idle_timeout: expected a duration such as 250ms, 30s, 1m, 1h "
              "or 1d, got \"1 minute\""});
  CHECK(errors_with("http:\n  body_timeout: soon\n") ==
        Lines{"test.yaml:4: http.body_timeout: expected a duration such as 250ms, 30s, 1m, 1h "
              "or 1d, got \"soon\""});
  CHECK(errors_with("http:\n  max_headers: 0\n") ==
        Lines{"test.yaml:4: http.max_headers: expected an integer 1..10000, got the number 0"});
  CHECK(errors_with("http:\n  max_headers: many\n") ==
        Lines{"test.yaml:4: http.max_headers: expected an integer 1..10000, got \"many\""});
  CHECK(errors_with("http:\n  max_header_bytes: 16KB\n") ==
        Lines{"test.yaml:4: http.max_header_bytes: expected a size such as 512, 16KiB, 10MiB "
              "or 1GiB, got \"16KB\""});
  CHECK(errors_with("limits:\n  auth: { requests: 1, window_ms: 1s, key: ip }\n") ==
        Lines{"test.yaml:4: limits.auth.window_ms: expected an integer >= 1, got \"1s\""});
}

TEST_CASE("undefined limit and upstream references") {
  CHECK(errors_with("routes:\n  - match: { path_prefix: / }\n    limits: [auth, foo]\n") ==
        Lines{"test.yaml:5: routes[0].limits[1]: unknown limit \"foo\" (defined limits: auth, role)"});
  CHECK(errors_with("routes:\n  - match: { path_prefix: / }\n    upstream: agnt\n") ==
        Lines{"test.yaml:5: routes[0].upstream: unknown upstream \"agnt\" (defined upstreams: agent)"});
  CHECK(errors_with("limits:\n  per_ip: { requests: 1, window: 1s, key: ip }\n") ==
        Lines{"test.yaml: routes: missing: the default route applies limit \"auth\", which is "
              "not defined (defined limits: per_ip)"});
}

TEST_CASE("the path names the right route and limit index") {
  CHECK(errors_with("routes:\n"
                    "  - match: { path_prefix: /a }\n"
                    "    limits: [auth]\n"
                    "  - match: { path_prefix: /b }\n"
                    "    limits: [role, nope]\n") ==
        Lines{"test.yaml:7: routes[1].limits[1]: unknown limit \"nope\" (defined limits: auth, role)"});
}

TEST_CASE("duplicate names") {
  CHECK(errors_with("limits:\n  a: { requests: 1, window: 1s, key: ip }\n"
                    "  a: { requests: 2, window: 1s, key: ip }\n") ==
        Lines{"test.yaml:5: limits.a: duplicate key \"a\"",
              "test.yaml: routes: missing: the default route applies limit \"auth\", which is "
              "not defined (defined limits: a)"});
  CHECK(errors_with("  agent: { url: \"http://h:2\" }\n") ==
        Lines{"test.yaml:3: upstreams.agent: duplicate key \"agent\""});
  CHECK(errors_with("routes:\n  - match: { path_prefix: / }\n    limits: [auth, auth]\n") ==
        Lines{"test.yaml:5: routes[0].limits[1]: limit \"auth\" is listed twice"});
}

TEST_CASE("invalid CIDRs") {
  CHECK(errors_with("identifiers:\n  ip: { trusted_proxies: [127.0.0.1/32, 10.0.0.1/8, ::1/129] }\n") ==
        Lines{"test.yaml:4: identifiers.ip.trusted_proxies[1]: invalid CIDR \"10.0.0.1/8\": host "
              "bits set below the prefix; did you mean 10.0.0.0/8?",
              "test.yaml:4: identifiers.ip.trusted_proxies[2]: invalid CIDR \"::1/129\": prefix "
              "length must be 0..128"});
}

TEST_CASE("unparsable URLs") {
  auto result = load_yaml("upstreams:\n  a: { url: \"ftp://h:1\" }\n  b: { url: \"h:1\" }\n"
                          "  c: { timeout: 1s }\nroutes:\n  - { match: { path_prefix: / }, upstream: a }\n");
  CHECK(rendered(result) ==
        Lines{"test.yaml:2: upstreams.a.url: invalid upstream URL \"ftp://h:1\": expected "
              "http://host:port[/base] or https://host:port[/base]",
              "test.yaml:3: upstreams.b.url: invalid upstream URL \"h:1\": expected "
              "http://host:port[/base] or https://host:port[/base]",
              "test.yaml:4: upstreams.c: missing url (such as http://127.0.0.1:8000)"});
  CHECK(errors_with("redis: { url: \"redis://:pw@h:port\" }\n") ==
        Lines{"test.yaml:3: redis.url: invalid Redis URL \"***\": Redis URL port must be a number from 1 to 65535"});
  // An unset variable expands to "": no Redis, which is valid.
  CHECK(load_yaml(kMinimalYaml + "redis: { url: \"${CACHE}\" }\n").ok());
}

TEST_CASE("TLS settings of the listener and of upstreams are checked") {
  CHECK(errors_with("tls: { cert_file: /etc/x.crt }\n") ==
        Lines{"test.yaml:3: tls: cert_file and key_file are both required"});
  CHECK(errors_with("tls: { cert_file: /a, key_file: /b, ca_file: /c }\n") ==
        Lines{"test.yaml:3: tls.ca_file: unknown key \"ca_file\" (expected one of: cert_file, key_file)"});
  auto plain = load_yaml("upstreams:\n  a: { url: \"http://h:1\", tls: { verify: false } }\n");
  CHECK(rendered(plain) == Lines{"test.yaml:2: upstreams.a.tls: tls needs an https:// url"});
  auto missing = load_yaml("upstreams:\n  a: { url: \"https://h\", tls: { ca_file: /nonexistent/ca.pem } }\n");
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].to_string().starts_with(
      "test.yaml:2: upstreams.a.tls: ca_file: cannot load \"/nonexistent/ca.pem\""));
  auto half = load_yaml("upstreams:\n  a: { url: \"https://h\", tls: { cert_file: /x.pem } }\n");
  CHECK(rendered(half) == Lines{"test.yaml:2: upstreams.a.tls: cert_file and key_file go together"});
}

TEST_CASE("an invalid REDIS_URL from the environment is reported") {
  auto result = load_yaml(kMinimalYaml, fake_env({{"REDIS_URL", "localhost:6379"}}));
  CHECK(rendered(result) ==
        Lines{"test.yaml: redis.url: invalid Redis URL \"***\": Redis URL must start with "
              "redis://, rediss://, redis+sentinel://, rediss+sentinel://, redis+cluster:// or "
              "rediss+cluster://"});
}

TEST_CASE("redis TLS and sentinel settings must fit the URL") {
  CHECK(errors_with("redis: { url: \"redis://h\", tls: { verify: false } }\n") ==
        Lines{"test.yaml:3: redis.tls: TLS settings need a rediss URL (rediss://, "
              "rediss+sentinel:// or rediss+cluster://)"});
  CHECK(errors_with("redis: { url: \"rediss://h\", tls: { ca_file: /nonexistent.pem } }\n")
            .at(0)
            .starts_with("test.yaml:3: redis.tls: ca_file: cannot load \"/nonexistent.pem\""));
  CHECK(errors_with("redis: { url: \"rediss://h\", tls: { verfy: false } }\n") ==
        Lines{"test.yaml:3: redis.tls.verfy: unknown key \"verfy\" (did you mean \"verify\"?)"});
  CHECK(errors_with("redis: { url: \"redis://h\", sentinel_password: x }\n") ==
        Lines{"test.yaml:3: redis.sentinel_password: sentinel_password needs a redis+sentinel:// URL"});
  CHECK(load_yaml(kMinimalYaml + "redis: { url: \"redis+sentinel://s1,s2/m\", sentinel_password: x }\n").ok());
}

TEST_CASE("limits must be positive and use a known algorithm and key") {
  CHECK(errors_with("limits:\n  auth: { requests: 0, window: 1m, key: ip }\n") ==
        Lines{"test.yaml:4: limits.auth.requests: expected an integer >= 1, got the number 0"});
  CHECK(errors_with("limits:\n  auth: { requests: 5, window: 0s, key: ip }\n") ==
        Lines{"test.yaml:4: limits.auth.window: window must be positive"});
  CHECK(errors_with("limits:\n  auth: { requests: 5, window: 1m, key: ip, algorithm: leaky }\n") ==
        Lines{"test.yaml:4: limits.auth.algorithm: unknown algorithm \"leaky\" (expected "
              "sliding_log, sliding_window, token_bucket or concurrency)"});
  CHECK(errors_with("limits:\n  auth: { requests: 5, window: 1m, key: user }\n") ==
        Lines{"test.yaml:4: limits.auth.key: unknown identifier key \"user\" (expected "
              "token_hash, agent_id, ip, api_key or header:NAME)"});
  CHECK(errors_with("limits:\n  auth: { requests: 5, window: 1m }\n") ==
        Lines{"test.yaml:4: limits.auth: missing key (token_hash, agent_id, ip, api_key or "
              "header:NAME)"});
  CHECK(errors_with("limits:\n  auth: { requests: 2000000000, window: 1m, key: ip }\n") ==
        Lines{"test.yaml:4: limits.auth.requests: requests must be at most 1000000000"});
  CHECK(errors_with("limits:\n  \"a:b\": { requests: 1, window: 1m, key: ip }\n  auth: { requests: 1, window: 1m, key: ip }\n") ==
        Lines{"test.yaml:4: limits.a:b: limit name must not contain ':'"});
}

TEST_CASE("cost and cost_from_response take header:NAME") {
  CHECK(errors_with("limits:\n  auth: { requests: 5, window: 1m, key: ip, cost: tokens }\n") ==
        Lines{"test.yaml:4: limits.auth.cost: expected header:NAME (the request or response header holding a "
              "whole number of units), got \"tokens\""});
  CHECK(errors_with("limits:\n  auth: { requests: 5, window: 1m, key: ip, cost_from_response: \"header:\" }\n") ==
        Lines{"test.yaml:4: limits.auth.cost_from_response: expected header:NAME (the request or response header "
              "holding a whole number of units), got \"header:\""});
  CHECK(errors_with("limits:\n  auth: { requests: 5, window: 1m, key: ip, cost: \"header:X Cost\" }\n") ==
        Lines{"test.yaml:4: limits.auth.cost: expected header:NAME (the request or response header holding a "
              "whole number of units), got \"header:X Cost\""});
  // What responses may add past the limit needs room in a sliding_window's arithmetic.
  CHECK(errors_with("limits:\n  auth: { requests: 1000000000, window: 1h, key: ip, algorithm: sliding_window,"
                    " cost_from_response: \"header:X-Usage\" }\n") ==
        Lines{"test.yaml:4: limits.auth.requests: requests x window_ms too large for a sliding_window with a cost"});
}

TEST_CASE("concurrency limits reject what makes no sense for slots") {
  CHECK(errors_with("limits:\n  auth: { requests: 4, window: 5m, key: agent_id, algorithm: concurrency, burst: 8 }\n") ==
        Lines{"test.yaml:4: limits.auth.burst: burst applies to token_bucket only"});
  CHECK(errors_with("limits:\n  auth: { requests: 4, window: 5m, key: agent_id, algorithm: concurrency,"
                    " cost: \"header:X-Cost\" }\n") ==
        Lines{"test.yaml:4: limits.auth.cost: cost does not apply to concurrency (a request takes one slot)"});
  CHECK(errors_with("limits:\n  auth: { requests: 4, window: 5m, key: agent_id, algorithm: concurrency,"
                    " cost_from_response: \"header:X-Usage\" }\n") ==
        Lines{"test.yaml:4: limits.auth.cost_from_response: cost does not apply to concurrency (a request takes "
              "one slot)"});
  CHECK(errors_with("limits:\n  auth: { requests: 4, window: 500ms, key: agent_id, algorithm: concurrency }\n") ==
        Lines{"test.yaml:4: limits.auth.window: window must be at least 1s for concurrency (it is how long a "
              "slot's lease lasts)"});
}

TEST_CASE("burst only on token_bucket limits") {
  CHECK(errors_with("limits:\n  auth:\n    requests: 5\n    window: 1m\n    key: ip\n    burst: 10\n") ==
        Lines{"test.yaml:8: limits.auth.burst: burst applies to token_bucket only"});
  CHECK(errors_with("limits:\n  auth: { requests: 5, window: 1m, window_ms: 100, key: ip }\n") ==
        Lines{"test.yaml:4: limits.auth.window_ms: give either window or window_ms, not both"});
}

TEST_CASE("invalid listen addresses") {
  CHECK(errors_with("listen: \"localhost:8080\"\n") ==
        Lines{"test.yaml:3: listen: invalid listen address \"localhost:8080\": host must be a "
              "numeric IP address such as 0.0.0.0 or 127.0.0.1"});
  CHECK(errors_with("admin:\n  listen: \"[::1]:99999\"\n") ==
        Lines{"test.yaml:4: admin.listen: invalid listen address \"[::1]:99999\": port must be "
              "an integer 0..65535"});
}

TEST_CASE("invalid enum values") {
  CHECK(errors_with("access_log: of\n") ==
        Lines{"test.yaml:3: access_log: expected stdout, off or a file path containing '/' "
              "(such as ./access.log), got \"of\""});
  CHECK(errors_with("log_level: verbose\n") ==
        Lines{"test.yaml:3: log_level: expected one of trace, debug, info, warn, error, "
              "critical, off, got \"verbose\""});
  CHECK(errors_with("redis: { on_failure: explode }\n") ==
        Lines{"test.yaml:3: redis.on_failure: expected one of fallback, allow, deny, got \"explode\""});
  CHECK(errors_with("response_headers: [x-ratelimit, draft]\n") ==
        Lines{"test.yaml:3: response_headers[1]: expected x-ratelimit or ietf, got \"draft\""});
  CHECK(errors_with("redis: { fallback_share: some }\n") ==
        Lines{"test.yaml:3: redis.fallback_share: expected an integer 1..10000, got \"some\""});
}

TEST_CASE("more than 16 limits on a route") {
  std::string text = "limits:\n";
  std::string names;
  for (int i = 0; i < 17; ++i) {
    text += "  l" + std::to_string(i) + ": { requests: 1, window: 1s, key: ip }\n";
    names += (i ? ", l" : "l") + std::to_string(i);
  }
  text += "routes:\n  - match: { path_prefix: / }\n    limits: [" + names + "]\n";
  CHECK(errors_with(text) ==
        Lines{"test.yaml:23: routes[0].limits: a route applies at most 16 limits, got 17"});
}

TEST_CASE("routes need a match, a path and an upstream when there is a choice") {
  auto result = load_yaml("upstreams:\n  a: { url: \"http://h:1\" }\n  b: { url: \"http://h:2\" }\n"
                          "routes:\n  - limits: [auth]\n  - match: { path_prefix: api }\n    upstream: a\n");
  CHECK(rendered(result) ==
        Lines{"test.yaml:5: routes[0]: missing match",
              "test.yaml:5: routes[0]: missing upstream (there is more than one)",
              "test.yaml:6: routes[1].match.path_prefix: expected a path starting with '/', got \"api\""});
  auto no_routes = load_yaml("upstreams:\n  a: { url: \"http://h:1\" }\n  b: { url: \"http://h:2\" }\n");
  CHECK(rendered(no_routes) ==
        Lines{"test.yaml: routes: missing: with more than one upstream, routes must say which to use"});
  CHECK(errors_with("routes: []\n") == Lines{"test.yaml:3: routes: expected at least one route"});
  CHECK(rendered(load_yaml("listen: \"0.0.0.0:1\"\n")) ==
        Lines{"test.yaml: upstreams: missing: at least one upstream is required"});
}

TEST_CASE("bad ${VAR} syntax is reported at its path") {
  CHECK(errors_with("admin: { token: \"${TOKEN\" }\n") ==
        Lines{"test.yaml:3: admin.token: unterminated \"${\" (expected ${NAME} or ${NAME:-default})"});
}

TEST_CASE("several errors are collected in one pass, in file order") {
  auto result = load_yaml("listen: nowhere\n"
                          "upstreams:\n  agent: { url: \"ftp://x\" }\n"
                          "limits:\n  auth: { requests: -1, window: 1m, key: token_hash }\n"
                          "routes:\n  - match: { path_prefix: / }\n    limits: [auth, role]\n"
                          "shadow_mode: maybe\n");
  CHECK(rendered(result) ==
        Lines{"test.yaml:1: listen: invalid listen address \"nowhere\": expected HOST:PORT",
              "test.yaml:3: upstreams.agent.url: invalid upstream URL \"ftp://x\": expected "
              "http://host:port[/base] or https://host:port[/base]",
              "test.yaml:5: limits.auth.requests: expected an integer >= 1, got the number -1",
              "test.yaml:8: routes[0].limits[1]: unknown limit \"role\" (defined limits: auth)",
              "test.yaml:9: shadow_mode: expected true or false, got \"maybe\""});
  CHECK(format_errors(result.errors).find("test.yaml:9: shadow_mode") != std::string::npos);
}

TEST_CASE("JSON errors carry lines too") {
  auto result = load_json("{\n"
                          "  \"upstreams\": {\"agent\": {\"url\": \"http://127.0.0.1:8000\"}},\n"
                          "  \"limits\": {\n"
                          "    \"auth\": {\"requests\": 60, \"window\": \"1m\", \"key\": \"token_hash\"},\n"
                          "    \"auth\": {\"requests\": 6, \"window\": \"1m\", \"key\": \"token_hash\"}\n"
                          "  },\n"
                          "  \"routes\": [\n"
                          "    {\"match\": {\"path_prefix\": \"/\"},\n"
                          "     \"limits\": [\n"
                          "       \"auth\",\n"
                          "       \"nope\"]}\n"
                          "  ],\n"
                          "  \"shadow_mode\": \"yes\"\n"
                          "}\n");
  CHECK(rendered(result) ==
        Lines{"test.json:5: limits.auth: duplicate key \"auth\"",
              "test.json:11: routes[0].limits[1]: unknown limit \"nope\" (defined limits: auth)",
              "test.json:13: shadow_mode: expected true or false, got \"yes\""});
}

TEST_CASE("syntax errors name the line") {
  CHECK(rendered(load_json("{\n  \"upstreams\": {\n    \"a\": {\"url\": \"http://h:1\"},\n  }\n}\n")) ==
        Lines{"test.json:4: invalid JSON: syntax error while parsing object key - unexpected "
              "'}'; expected string literal"});
  // Found by fuzz/config_fuzzer (30-minute run): nlohmann::json throws out_of_range,
  // not parse_error, for a number past double's range; it escaped as a crash.
  CHECK(rendered(load_json("{\n  \"threads\": 1110000000000e004194\n}\n")) ==
        Lines{"test.json:2: invalid JSON: number overflow parsing '1110000000000e004194'"});
  CHECK(rendered(load_json("1e999")) ==
        Lines{"test.json:1: invalid JSON: number overflow parsing '1e999'"});
  CHECK(rendered(load_yaml("upstreams:\n  a: {url: \"http://h:1\"\nlimits: 3\n")) ==
        Lines{"test.yaml:3: invalid YAML: end of map flow not found"});
  CHECK(rendered(load_yaml("- a\n- b\n")) ==
        Lines{"test.yaml: expected a mapping, got a list",
              "test.yaml: upstreams: missing: at least one upstream is required"});
}

TEST_CASE("empty or misshapen sections are reported, not crashed on") {
  CHECK(errors_with("limits:\n  auth:\n") ==
        Lines{"test.yaml:4: limits.auth: missing requests",
              "test.yaml:4: limits.auth: missing window (a duration such as 1m) or window_ms",
              "test.yaml:4: limits.auth: missing key (token_hash, agent_id, ip, api_key or header:NAME)"});
  CHECK(errors_with("limits: [auth]\n") ==
        Lines{"test.yaml:3: limits: expected a mapping, got a list",
              "test.yaml: routes: missing: the default route applies limit \"auth\", which is "
              "not defined (defined limits: none)"});
  CHECK(rendered(load_yaml("upstreams: []\n")) ==
        Lines{"test.yaml:1: upstreams: expected a mapping, got a list"});
  CHECK(rendered(load_json("[]")) ==
        Lines{"test.json:1: expected a mapping, got a list",
              "test.json:1: upstreams: missing: at least one upstream is required"});
}

TEST_CASE("YAML floats are numbers, and not integers") {
  CHECK(errors_with("threads: 1.5\n") ==
        Lines{"test.yaml:3: threads: expected an integer 0..1024, got the number 1.5"});
  CHECK(errors_with("threads: -.5e1\n") ==
        Lines{"test.yaml:3: threads: expected an integer 0..1024, got the number -5.0"});
  CHECK(errors_with("threads: 1e999\n") ==
        Lines{"test.yaml:3: threads: expected an integer 0..1024, got \"1e999\""});
  CHECK(errors_with("threads: 1.2.3\n") ==
        Lines{"test.yaml:3: threads: expected an integer 0..1024, got \"1.2.3\""});
}

// Found by fuzz/config_fuzzer: a YAML header name with a stray byte loaded, and
// /admin/config then threw from nlohmann's dump().
TEST_CASE("YAML strings and keys that are not UTF-8 are errors") {
  CHECK(errors_with("identifiers:\n  agent_id: { header: \"\xaf-Agent\" }\n") ==
        Lines{"test.yaml:4: identifiers.agent_id.header: not valid UTF-8"});
  CHECK(errors_with("http:\n  \"a\xc0\xaf\": 1\n") ==
        Lines{"test.yaml:4: http: keys must be valid UTF-8"});
  CHECK(load_yaml(kMinimalYaml + "identifiers:\n  agent_id: { header: \"X-\xc3\xa9t\xc3\xa9\" }\n").ok());
}
