// identifiers.agent_id.jwt: parsing, the one-key rule, on_invalid, and the secret kept
// out of /admin/config (to_redacted_json) and --check (summarize).

#include <catch2/catch.hpp>

#include "config/summary.hpp"
#include "test_helpers.hpp"

using namespace phlow::config;
using namespace phlow::config::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> errors_of(const std::string& agent_id_yaml, const Env& env = fake_env()) {
  auto result = load_yaml(kMinimalYaml + "identifiers:\n  agent_id:\n" + agent_id_yaml, env);
  CHECK_FALSE(result.ok());
  std::vector<std::string> out;
  for (const auto& error : result.errors) out.push_back(error.to_string());
  return out;
}

}  // namespace

TEST_CASE("jwt config: every key parses") {
  auto result = load_yaml(kMinimalYaml +
                              "identifiers:\n"
                              "  agent_id:\n"
                              "    jwt_claim: sub\n"
                              "    jwt:\n"
                              "      jwks_file: /etc/phlow/jwks.json\n"
                              "      issuer: \"https://auth.example\"\n"
                              "      audience: phlow-agents\n"
                              "      leeway: 30s\n"
                              "      on_invalid: ignore\n");
  const Config& c = require_ok(result);
  REQUIRE(c.identifiers.agent_id.jwt.has_value());
  const JwtSettings& jwt = *c.identifiers.agent_id.jwt;
  CHECK(c.identifiers.agent_id.jwt_claim == "sub");
  CHECK(jwt.jwks_file == "/etc/phlow/jwks.json");
  CHECK(jwt.secret.empty());
  CHECK(jwt.public_key_file.empty());
  CHECK(jwt.issuer == "https://auth.example");
  CHECK(jwt.audience == "phlow-agents");
  CHECK(jwt.leeway == 30s);
  CHECK(jwt.on_invalid == JwtOnInvalid::ignore);
}

TEST_CASE("jwt config: defaults and the secret from the environment") {
  auto result = load_yaml(kMinimalYaml + "identifiers:\n  agent_id:\n    jwt: { secret: \"${PHLOW_JWT_SECRET}\" }\n",
                          fake_env({{"PHLOW_JWT_SECRET", "s3cret-value"}}));
  const Config& c = require_ok(result);
  REQUIRE(c.identifiers.agent_id.jwt.has_value());
  CHECK(c.identifiers.agent_id.jwt->secret == "s3cret-value");
  CHECK(c.identifiers.agent_id.jwt->leeway == 0s);
  CHECK(c.identifiers.agent_id.jwt->on_invalid == JwtOnInvalid::reject);
  CHECK(c.identifiers.agent_id.jwt->issuer.empty());
  // Without the jwt key nothing is verified (as before).
  CHECK_FALSE(require_ok(load_yaml(kMinimalYaml)).identifiers.agent_id.jwt.has_value());
}

TEST_CASE("jwt config: exactly one of secret public_key_file and jwks_file") {
  CHECK(errors_of("    jwt: { issuer: x }\n") ==
        std::vector<std::string>{
            "test.yaml:5: identifiers.agent_id.jwt: needs one of secret, public_key_file or jwks_file"});
  CHECK(errors_of("    jwt: { secret: abc, jwks_file: /k.json }\n") ==
        std::vector<std::string>{
            "test.yaml:5: identifiers.agent_id.jwt: set only one of secret, public_key_file or jwks_file"});
  CHECK(errors_of("    jwt: { public_key_file: /k.pem, jwks_file: /k.json }\n").size() == 1);
  // An unset variable gives an empty secret: an error, not an empty HMAC key.
  CHECK(errors_of("    jwt: { secret: \"${PHLOW_JWT_SECRET}\" }\n") ==
        std::vector<std::string>{"test.yaml:5: identifiers.agent_id.jwt.secret: must not be empty"});
}

TEST_CASE("jwt config: bad on_invalid leeway and unknown keys") {
  CHECK(errors_of("    jwt: { secret: abc, on_invalid: drop }\n") ==
        std::vector<std::string>{
            "test.yaml:5: identifiers.agent_id.jwt.on_invalid: expected one of reject, ignore, got \"drop\""});
  const auto leeway = errors_of("    jwt: { secret: abc, leeway: soon }\n");
  REQUIRE(leeway.size() == 1);
  CHECK(leeway[0].find("identifiers.agent_id.jwt.leeway") != std::string::npos);
  const auto typo = errors_of("    jwt: { secret: abc, audiance: x }\n");
  REQUIRE(typo.size() == 1);
  CHECK(typo[0].find("did you mean \"audience\"") != std::string::npos);
}

TEST_CASE("jwt config: the secret is redacted in the JSON view and the summary") {
  auto result = load_yaml(kMinimalYaml +
                          "identifiers:\n  agent_id:\n    jwt: { secret: hunter2-jwt, issuer: iss-1, "
                          "audience: aud-1, leeway: 5s }\n");
  const Config& c = require_ok(result);
  const auto json = to_redacted_json(c);
  const auto& jwt = json["identifiers"]["agent_id"]["jwt"];
  CHECK(jwt["secret"] == "***");
  CHECK(jwt["issuer"] == "iss-1");
  CHECK(jwt["audience"] == "aud-1");
  CHECK(jwt["leeway"] == "5s");
  CHECK(jwt["on_invalid"] == "reject");
  CHECK_FALSE(jwt.contains("public_key_file"));
  CHECK(json.dump().find("hunter2") == std::string::npos);
  const std::string summary = summarize(c);
  INFO(summary);
  CHECK(summary.find("hunter2") == std::string::npos);
  CHECK(summary.find("agent_id   claim agent_id of a verified JWT (secret (set)") != std::string::npos);
  // Without jwt, the summary says the claim is not verified.
  CHECK(summarize(require_ok(load_yaml(kMinimalYaml))).find("(NOT verified)") != std::string::npos);
}

TEST_CASE("jwt config: file names are shown and the JSON view loads back") {
  auto result = load_yaml(kMinimalYaml +
                          "identifiers:\n  agent_id:\n    jwt: { public_key_file: /etc/phlow/jwt.pem, "
                          "on_invalid: ignore }\n");
  const Config& c = require_ok(result);
  const auto json = to_redacted_json(c);
  CHECK(json["identifiers"]["agent_id"]["jwt"]["public_key_file"] == "/etc/phlow/jwt.pem");
  CHECK(summarize(c).find("public key /etc/phlow/jwt.pem") != std::string::npos);
  // With no secret in it, the view is the config.
  auto again = load_json(json.dump(2));
  CHECK(require_ok(again) == c);
}
