// End-to-end JWT verification (identifiers.agent_id.jwt): the real gateway in front of
// the real demo upstream, tokens made here with OpenSSL (support/jwt_tokens.hpp), key
// files in a temporary directory.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "metrics_scrape.hpp"
#include "support/base64url.hpp"
#include "support/demo_upstream.hpp"
#include "support/e2e.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/jwt_tokens.hpp"

using namespace phlow::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// A directory for key files, removed with what it holds.
class KeyDir {
 public:
  KeyDir() {
    char path[] = "/tmp/phlow-e2e-jwt-XXXXXX";
    if (mkdtemp(path) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = path;
  }
  ~KeyDir() {
    for (const auto& file : files_) std::remove(file.c_str());
    rmdir(dir_.c_str());
  }
  KeyDir(const KeyDir&) = delete;
  KeyDir& operator=(const KeyDir&) = delete;
  // Writes `text` to `name` in the directory (replacing it) and returns its path.
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::trunc) << text;
    files_.push_back(path);
    return path;
  }

 private:
  std::string dir_;
  std::vector<std::string> files_;
};

const JwtKey& rsa_key() {
  static const JwtKey key = JwtKey::rsa();
  return key;
}
const JwtKey& ec_key() {
  static const JwtKey key = JwtKey::ec("P-256");
  return key;
}

// A route "/" limited to 2 per minute by agent_id, a route "/free" without limits,
// and `jwt` (the YAML mapping under identifiers.agent_id.jwt, one line).
std::string jwt_yaml(const DemoUpstream& upstream, const std::string& jwt) {
  return "listen: \"127.0.0.1:0\"\nthreads: 1\naccess_log: \"off\"\nupstreams:\n  app: { url: \"" +
         upstream.url() + "\" }\n"
         "limits:\n  per_agent: { requests: 2, window: 1m, key: agent_id }\n"
         "routes:\n"
         "  - match: { path_prefix: /free }\n    upstream: app\n    limits: []\n"
         "  - match: { path_prefix: / }\n    upstream: app\n    limits: [per_agent]\n"
         "identifiers:\n  agent_id:\n    jwt_claim: agent_id\n    jwt: " + jwt + "\n";
}

json claims(const std::string& agent) {
  return {{"agent_id", agent},
          {"iss", "https://auth.example"},
          {"aud", json::array({"phlow-agents"})},
          {"exp", unix_now() + 300}};
}

HeaderList bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// Requests the demo upstream has received so far (the asking request not included).
std::uint64_t upstream_requests(const DemoUpstream& upstream) {
  return json::parse(http_request(upstream.port(), "GET", "/count").body).at("requests");
}

// Statuses of `n` requests with `headers`, comma-free: "200 200 429".
std::string statuses(std::uint16_t port, int n, const HeaderList& headers, std::string_view target = "/") {
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (!out.empty()) out += ' ';
    out += std::to_string(http_request(port, "GET", target, headers).status);
  }
  return out;
}

}  // namespace

TEST_CASE("e2e jwt: verified tokens count per agent and the header cannot impersonate") {
  DemoUpstream upstream;
  KeyDir keys;
  const std::string jwks = keys.write("jwks.json", phlow::test::jwks({rsa_key().jwk("rsa-1"),
                                                                      ec_key().jwk("ec-1")}));
  GatewayProcess gateway(jwt_yaml(upstream, "{ jwks_file: \"" + jwks +
                                                "\", issuer: \"https://auth.example\", "
                                                "audience: phlow-agents }"),
                         kNoRedis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  const std::string agent_a = pk_jwt("RS256", rsa_key(), claims("agent-a"), {{"kid", "rsa-1"}});
  const std::string agent_b = pk_jwt("ES256", ec_key(), claims("agent-b"), {{"kid", "ec-1"}});
  CHECK(statuses(port, 3, bearer(agent_a)) == "200 200 429");
  // A second token of agent A (another key) shares A's spent budget; B has its own.
  CHECK(statuses(port, 1, bearer(pk_jwt("ES256", ec_key(), claims("agent-a"), {{"kid", "ec-1"}}))) == "429");
  CHECK(statuses(port, 3, bearer(agent_b)) == "200 200 429");
  // The agent header alone sets no agent ID: the limit is skipped, not A's budget used.
  for (int i = 0; i < 4; ++i) {
    const HttpResponse r = http_request(port, "GET", "/", {{"X-Phlow-Agent-Id", "agent-c"}});
    CHECK(r.status == 200);
    CHECK_FALSE(r.has_header("X-RateLimit-Limit"));
  }
  CHECK(statuses(port, 2, {{"X-Phlow-Agent-Id", "agent-a"}}) == "200 200");
  // An unsigned token naming agent C is no way in either (401, see the next case).
  const std::string unsigned_c =
      base64url(R"({"alg":"none"})") + "." + base64url(claims("agent-c").dump()) + ".";
  CHECK(statuses(port, 1, bearer(unsigned_c)) == "401");
}

TEST_CASE("e2e jwt: an invalid token gets 401 and is never forwarded") {
  DemoUpstream upstream;
  KeyDir keys;
  const std::string pem = rsa_key().public_pem();
  const std::string pem_file = keys.write("jwt.pem", pem);
  GatewayProcess gateway(jwt_yaml(upstream, "{ public_key_file: \"" + pem_file +
                                                "\", issuer: \"https://auth.example\", "
                                                "audience: phlow-agents, leeway: 5s, on_invalid: reject }"),
                         kNoRedis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  json expired = claims("agent-a");
  expired["exp"] = unix_now() - 60;
  json early = claims("agent-a");
  early["nbf"] = unix_now() + 600;
  json wrong_iss = claims("agent-a");
  wrong_iss["iss"] = "https://evil.example";
  json wrong_aud = claims("agent-a");
  wrong_aud["aud"] = "someone-else";
  json no_claim = claims("agent-a");
  no_claim.erase("agent_id");
  const std::string good = pk_jwt("RS256", rsa_key(), claims("agent-a"));
  const std::vector<std::pair<std::string, std::string>> invalid = {
      {"alg none", base64url(R"({"alg":"none"})") + "." + base64url(claims("agent-a").dump()) + "."},
      {"HS256 signed with the PEM", hs_jwt("HS256", pem, claims("agent-a"))},
      {"other key", pk_jwt("RS256", JwtKey::rsa(), claims("agent-a"))},
      {"ES256 against RSA", pk_jwt("ES256", ec_key(), claims("agent-a"))},
      {"tampered payload",
       good.substr(0, good.find('.') + 1) + base64url(claims("agent-b").dump()) + good.substr(good.rfind('.'))},
      {"expired", pk_jwt("RS256", rsa_key(), expired)},
      {"not yet valid", pk_jwt("RS256", rsa_key(), early)},
      {"wrong iss", pk_jwt("RS256", rsa_key(), wrong_iss)},
      {"wrong aud", pk_jwt("RS256", rsa_key(), wrong_aud)},
      {"no claim", pk_jwt("RS256", rsa_key(), no_claim)},
      {"not a JWT", "opaque-token"},
  };
  const std::uint64_t before = upstream_requests(upstream);
  HttpConnection connection(port);
  for (const auto& [name, token] : invalid) {
    INFO("token: " << name);
    // On one kept-alive connection, with a small body the gateway drains.
    const HttpResponse r = connection.request("POST", "/", bearer(token), "payload");
    CHECK(r.status == 401);
    CHECK(r.header("WWW-Authenticate") == R"(Bearer error="invalid_token")");
    CHECK(r.header("Content-Type") == "application/json");
    CHECK(json::parse(r.body) == json{{"error", "Invalid token"}, {"code", "INVALID_TOKEN"}});
    CHECK(r.keep_alive);
  }
  // None reached the upstream (this call's own request is not counted).
  CHECK(upstream_requests(upstream) == before + 1);
  // Nothing was consumed from agent A's limit.
  CHECK(statuses(port, 3, bearer(good)) == "200 200 429");
  // A route without an agent_id limit does not look at the token.
  CHECK(statuses(port, 1, bearer("opaque-token"), "/free") == "200");
  const Exposition e = scrape(gateway.admin_port());
  CHECK(metric(e, R"(phlow_gateway_jwt_invalid_total{reason="alg_none"})") == 1);
  CHECK(metric(e, R"(phlow_gateway_jwt_invalid_total{reason="wrong_alg"})") == 2);
  CHECK(metric(e, R"(phlow_gateway_jwt_invalid_total{reason="bad_signature"})") == 2);
  CHECK(metric(e, R"(phlow_gateway_jwt_invalid_total{reason="expired"})") == 1);
  CHECK(metric(e, R"(phlow_gateway_jwt_invalid_total{reason="malformed"})") == 1);
  CHECK(metric(e, R"(phlow_gateway_requests_total{route="/",code_class="4xx"})") == 12);
}

TEST_CASE("e2e jwt: on_invalid ignore lets invalid tokens through uncounted") {
  DemoUpstream upstream;
  GatewayProcess gateway(
      jwt_yaml(upstream, "{ secret: \"${PHLOW_JWT_SECRET}\", on_invalid: ignore }"),
      {{"REDIS_URL", ""}, {"PHLOW_JWT_SECRET", "e2e-secret-e2e-secret-e2e-secret"}});
  INFO(gateway.process().output());
  const auto port = gateway.port();
  const json payload = {{"agent_id", "agent-a"}};
  // Valid (HS256 with the secret from the environment): counted.
  CHECK(statuses(port, 3, bearer(hs_jwt("HS256", "e2e-secret-e2e-secret-e2e-secret", payload))) ==
        "200 200 429");
  // Invalid (another secret, naming the same agent): forwarded, no limit applied.
  const std::string forged = hs_jwt("HS256", "guessed", payload);
  for (int i = 0; i < 4; ++i) {
    const HttpResponse r = http_request(port, "GET", "/", bearer(forged));
    CHECK(r.status == 200);
    CHECK_FALSE(r.has_header("X-RateLimit-Limit"));
  }
  CHECK(metric(scrape(gateway.admin_port()), R"(phlow_gateway_jwt_invalid_total{reason="bad_signature"})") == 4);
}

TEST_CASE("e2e jwt: SIGHUP rereads the JWKS file and a bad one keeps the old keys") {
  DemoUpstream upstream;
  KeyDir keys;
  const std::string jwks = keys.write("jwks.json", phlow::test::jwks({rsa_key().jwk("old")}));
  GatewayProcess gateway(jwt_yaml(upstream, "{ jwks_file: \"" + jwks + "\" }"), kNoRedis);
  INFO(gateway.process().output());
  const auto port = gateway.port();
  const std::string by_new_key = pk_jwt("ES256", ec_key(), {{"agent_id", "n"}}, {{"kid", "new"}});
  CHECK(statuses(port, 1, bearer(by_new_key)) == "401");
  keys.write("jwks.json", phlow::test::jwks({rsa_key().jwk("old"), ec_key().jwk("new")}));
  gateway.process().signal(SIGHUP);
  REQUIRE(gateway.process().wait_for_output("config reloaded", 5s));
  CHECK(statuses(port, 1, bearer(by_new_key)) == "200");
  // A JWKS that no longer parses: the reload fails and names the file; the keys stay.
  keys.write("jwks.json", "{ not json");
  gateway.process().signal(SIGHUP);
  REQUIRE(gateway.process().wait_for_output("reload of", 5s));
  CHECK(gateway.process().output().find("jwks.json") != std::string::npos);
  CHECK(statuses(port, 1, bearer(by_new_key)) == "200");
  CHECK(statuses(port, 1, bearer(pk_jwt("RS256", rsa_key(), {{"agent_id", "o"}}, {{"kid", "old"}}))) == "200");
  CHECK(gateway.process().running());
}

TEST_CASE("e2e jwt: a bad key file stops startup and fails --check") {
  DemoUpstream upstream;
  KeyDir keys;
  const std::string pem = keys.write("bad.pem", "not a key\n");
  const std::string config = keys.write("gateway.yaml", jwt_yaml(upstream, "{ public_key_file: \"" + pem + "\" }"));
  const RunResult check = run_gateway({"--config", config, "--check"}, kNoRedis);
  CHECK(check.exit_code == 1);
  CHECK(check.err.find("bad.pem") != std::string::npos);
  CHECK(check.err.find("identifiers.agent_id.jwt") != std::string::npos);
  const RunResult run = run_gateway({"--config", config}, kNoRedis);
  CHECK(run.exit_code == 1);
  CHECK((run.out + run.err).find("bad.pem") != std::string::npos);
  // A good key: --check passes and says how agent IDs are verified.
  keys.write("bad.pem", ec_key().public_pem());
  const RunResult good = run_gateway({"--config", config, "--check"}, kNoRedis);
  CHECK(good.exit_code == 0);
  CHECK(good.out.find("verified JWT") != std::string::npos);
}
