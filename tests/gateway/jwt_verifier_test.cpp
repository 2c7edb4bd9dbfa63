// The JWT verifier of identifiers.agent_id.jwt against tokens made here with OpenSSL
// (tests/support/jwt_tokens.hpp): each algorithm, JWKS selection by kid, and every
// kind of invalid token, the algorithm-confusion attacks included.
#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>
#include <unistd.h>
#include <vector>

#include "fake_request.hpp"
#include "gateway/identifier_extractor.hpp"
#include "gateway/jwt_verifier.hpp"
#include "support/base64url.hpp"
#include "support/jwt_tokens.hpp"
#include "support/tls_files.hpp"

using namespace phlow::gateway;
using phlow::config::JwtSettings;
using phlow::test::base64url;
using phlow::test::hs_jwt;
using phlow::test::JwtKey;
using phlow::test::pk_jwt;
using json = nlohmann::json;

namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret = "a-test-secret-of-32-bytes-length";

// Keys are slow to make (RSA): once per test process.
const JwtKey& rsa_key() {
  static const JwtKey key = JwtKey::rsa();
  return key;
}
const JwtKey& other_rsa_key() {
  static const JwtKey key = JwtKey::rsa();
  return key;
}
const JwtKey& p256_key() {
  static const JwtKey key = JwtKey::ec("P-256");
  return key;
}
const JwtKey& p384_key() {
  static const JwtKey key = JwtKey::ec("P-384");
  return key;
}

JwtSettings secret_settings() {
  JwtSettings s;
  s.secret = kSecret;
  return s;
}
JwtSettings pem_settings() {
  JwtSettings s;
  s.public_key_file = "key.pem";  // from_text() gets the text, the name only says PEM
  return s;
}
JwtSettings jwks_settings() {
  JwtSettings s;
  s.jwks_file = "jwks.json";
  return s;
}

std::shared_ptr<const JwtVerifier> make(const JwtSettings& settings, std::string_view text = {}) {
  std::string error;
  auto verifier = JwtVerifier::from_text(settings, text, error);
  INFO(error);
  REQUIRE(verifier != nullptr);
  return verifier;
}

json claims(std::string agent = "agent-7") { return {{"agent_id", agent}, {"exp", kNow + 60}}; }

// The verdict on `token`, and the agent ID when valid.
std::string verify(const JwtVerifier& verifier, std::string_view token, std::int64_t now = kNow) {
  std::string out = "stale";
  const JwtError e = verifier.verify(token, "agent_id", now, out);
  if (e != JwtError::none) return "invalid:" + std::string(to_string(e));
  return out;
}

json with(json object, const std::string& key, const std::string& value) {
  object[key] = value;
  return object;
}

std::string replace_part(const std::string& token, int part, const std::string& with) {
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  if (part == 0) return with + token.substr(first);
  if (part == 1) return token.substr(0, first + 1) + with + token.substr(second);
  return token.substr(0, second + 1) + with;
}

}  // namespace

TEST_CASE("jwt: valid HS256 HS384 and HS512 tokens give the claim") {
  const auto verifier = make(secret_settings());
  CHECK(verify(*verifier, hs_jwt("HS256", kSecret, claims())) == "agent-7");
  CHECK(verify(*verifier, hs_jwt("HS384", kSecret, claims("b"))) == "b");
  CHECK(verify(*verifier, hs_jwt("HS512", kSecret, claims("c"))) == "c");
  // Integer claims in decimal; no exp at all is fine (none is required).
  CHECK(verify(*verifier, hs_jwt("HS256", kSecret, {{"agent_id", 42}})) == "42");
  CHECK(verify(*verifier, hs_jwt("HS256", kSecret, {{"agent_id", -3}})) == "-3");
}

TEST_CASE("jwt: a wrong secret or a tampered token is a bad signature") {
  const auto verifier = make(secret_settings());
  CHECK(verify(*verifier, hs_jwt("HS256", "another-secret", claims())) == "invalid:bad_signature");
  const std::string good = hs_jwt("HS256", kSecret, claims("agent-7"));
  // The payload of another agent under agent-7's signature.
  const std::string forged = replace_part(good, 1, base64url(claims("admin").dump()));
  CHECK(verify(*verifier, forged) == "invalid:bad_signature");
  // A truncated signature (a MAC compared by prefix would accept it).
  const std::string truncated = good.substr(0, good.size() - 4);
  CHECK(verify(*verifier, truncated) == "invalid:bad_signature");
  CHECK(verify(*verifier, replace_part(good, 2, "")) == "invalid:bad_signature");
}

TEST_CASE("jwt: RS256 RS384 and RS512 with a PEM public key") {
  const auto verifier = make(pem_settings(), rsa_key().public_pem());
  CHECK(verify(*verifier, pk_jwt("RS256", rsa_key(), claims("r1"))) == "r1");
  CHECK(verify(*verifier, pk_jwt("RS384", rsa_key(), claims("r2"))) == "r2");
  CHECK(verify(*verifier, pk_jwt("RS512", rsa_key(), claims("r3"))) == "r3");
  // Signed by another key pair.
  CHECK(verify(*verifier, pk_jwt("RS256", other_rsa_key(), claims())) == "invalid:bad_signature");
  const std::string good = pk_jwt("RS256", rsa_key(), claims("agent-7"));
  CHECK(verify(*verifier, replace_part(good, 1, base64url(claims("admin").dump()))) ==
        "invalid:bad_signature");
}

TEST_CASE("jwt: ES256 with a P-256 key and ES384 with a P-384 key") {
  const auto p256 = make(pem_settings(), p256_key().public_pem());
  const auto p384 = make(pem_settings(), p384_key().public_pem());
  CHECK(verify(*p256, pk_jwt("ES256", p256_key(), claims("e1"))) == "e1");
  CHECK(verify(*p384, pk_jwt("ES384", p384_key(), claims("e2"))) == "e2");
  const std::string good = pk_jwt("ES256", p256_key(), claims("agent-7"));
  CHECK(verify(*p256, replace_part(good, 1, base64url(claims("admin").dump()))) ==
        "invalid:bad_signature");
  // A DER signature (what OpenSSL makes) is not the JWS form r || s.
  CHECK(verify(*p256, replace_part(good, 2, base64url(std::string(72, '\x30')))) ==
        "invalid:bad_signature");
}

TEST_CASE("jwt: the key decides the algorithm - confusion attacks are invalid") {
  const std::string pem = rsa_key().public_pem();
  const auto rsa = make(pem_settings(), pem);
  // The classic attack: an HS256 token whose HMAC key is the public key's PEM text.
  CHECK(verify(*rsa, hs_jwt("HS256", pem, claims())) == "invalid:wrong_alg");
  // An RS token against a secret-only config.
  const auto secret = make(secret_settings());
  CHECK(verify(*secret, pk_jwt("RS256", rsa_key(), claims())) == "invalid:wrong_alg");
  // An ES256 token against an RSA key and against a P-384 key; ES384 against P-256.
  CHECK(verify(*rsa, pk_jwt("ES256", p256_key(), claims())) == "invalid:wrong_alg");
  const auto p384 = make(pem_settings(), p384_key().public_pem());
  CHECK(verify(*p384, pk_jwt("ES256", p256_key(), claims())) == "invalid:wrong_alg");
  const auto p256 = make(pem_settings(), p256_key().public_pem());
  CHECK(verify(*p256, pk_jwt("ES384", p384_key(), claims())) == "invalid:wrong_alg");
  CHECK(verify(*p256, pk_jwt("RS256", rsa_key(), claims())) == "invalid:wrong_alg");
  // An EC public key's PEM as HMAC secret.
  CHECK(verify(*p256, hs_jwt("HS256", p256_key().public_pem(), claims())) == "invalid:wrong_alg");
  // Algorithms not supported at all.
  json header = {{"alg", "PS256"}};
  CHECK(verify(*rsa, phlow::test::jwt_signing_input(header, claims()) + ".c2ln") == "invalid:wrong_alg");
}

TEST_CASE("jwt: alg none is invalid with any key") {
  for (const std::string alg : {"none", "None", "NONE"}) {
    const std::string unsigned_token =
        phlow::test::jwt_signing_input({{"alg", alg}, {"typ", "JWT"}}, claims()) + ".";
    CHECK(verify(*make(secret_settings()), unsigned_token) == "invalid:alg_none");
    CHECK(verify(*make(pem_settings(), rsa_key().public_pem()), unsigned_token) == "invalid:alg_none");
  }
}

TEST_CASE("jwt: exp and nbf with and without leeway") {
  JwtSettings settings = secret_settings();
  const auto strict = make(settings);
  settings.leeway = std::chrono::seconds(30);
  const auto lenient = make(settings);
  const auto token = [](json payload) { return hs_jwt("HS256", kSecret, payload); };
  // exp in the past; exactly now is already past (valid only before exp).
  CHECK(verify(*strict, token({{"agent_id", "a"}, {"exp", kNow - 10}})) == "invalid:expired");
  CHECK(verify(*strict, token({{"agent_id", "a"}, {"exp", kNow}})) == "invalid:expired");
  CHECK(verify(*strict, token({{"agent_id", "a"}, {"exp", kNow + 1}})) == "a");
  CHECK(verify(*lenient, token({{"agent_id", "a"}, {"exp", kNow - 10}})) == "a");
  CHECK(verify(*lenient, token({{"agent_id", "a"}, {"exp", kNow - 31}})) == "invalid:expired");
  // Fractional NumericDate.
  CHECK(verify(*strict, token({{"agent_id", "a"}, {"exp", kNow + 0.5}})) == "a");
  // nbf in the future.
  CHECK(verify(*strict, token({{"agent_id", "a"}, {"nbf", kNow + 10}})) == "invalid:not_yet_valid");
  CHECK(verify(*strict, token({{"agent_id", "a"}, {"nbf", kNow}})) == "a");
  CHECK(verify(*lenient, token({{"agent_id", "a"}, {"nbf", kNow + 10}})) == "a");
  CHECK(verify(*lenient, token({{"agent_id", "a"}, {"nbf", kNow + 31}})) == "invalid:not_yet_valid");
  // Not numbers.
  CHECK(verify(*strict, token({{"agent_id", "a"}, {"exp", "tomorrow"}})) == "invalid:bad_payload");
  CHECK(verify(*strict, token({{"agent_id", "a"}, {"nbf", json::array()}})) == "invalid:bad_payload");
}

TEST_CASE("jwt: the system clock overload checks exp against now") {
  const auto verifier = make(secret_settings());
  std::string out;
  const auto now = phlow::test::unix_now();
  CHECK(verifier->verify(hs_jwt("HS256", kSecret, {{"agent_id", "a"}, {"exp", now + 60}}), "agent_id", out) ==
        JwtError::none);
  CHECK(verifier->verify(hs_jwt("HS256", kSecret, {{"agent_id", "a"}, {"exp", now - 60}}), "agent_id", out) ==
        JwtError::expired);
}

TEST_CASE("jwt: issuer must match when set") {
  JwtSettings settings = secret_settings();
  settings.issuer = "https://auth.example";
  const auto verifier = make(settings);
  const auto token = [](json payload) { return hs_jwt("HS256", kSecret, payload); };
  CHECK(verify(*verifier, token({{"agent_id", "a"}, {"iss", "https://auth.example"}})) == "a");
  CHECK(verify(*verifier, token({{"agent_id", "a"}, {"iss", "https://evil.example"}})) == "invalid:bad_issuer");
  CHECK(verify(*verifier, token({{"agent_id", "a"}})) == "invalid:bad_issuer");
  CHECK(verify(*verifier, token({{"agent_id", "a"}, {"iss", json::array({"https://auth.example"})}})) ==
        "invalid:bad_issuer");
  // Without issuer configured, any iss (or none) is fine.
  CHECK(verify(*make(secret_settings()), token({{"agent_id", "a"}, {"iss", "whoever"}})) == "a");
}

TEST_CASE("jwt: audience as a string or in an array") {
  JwtSettings settings = secret_settings();
  settings.audience = "phlow-agents";
  const auto verifier = make(settings);
  const auto token = [](json payload) { return hs_jwt("HS256", kSecret, payload); };
  CHECK(verify(*verifier, token({{"agent_id", "a"}, {"aud", "phlow-agents"}})) == "a");
  CHECK(verify(*verifier, token({{"agent_id", "a"}, {"aud", {"other", "phlow-agents"}}})) == "a");
  CHECK(verify(*verifier, token({{"agent_id", "a"}, {"aud", "other"}})) == "invalid:bad_audience");
  CHECK(verify(*verifier, token({{"agent_id", "a"}, {"aud", {"other", "x"}}})) == "invalid:bad_audience");
  CHECK(verify(*verifier, token({{"agent_id", "a"}, {"aud", json::array()}})) == "invalid:bad_audience");
  CHECK(verify(*verifier, token({{"agent_id", "a"}})) == "invalid:bad_audience");
  CHECK(verify(*verifier, token({{"agent_id", "a"}, {"aud", "phlow-agents-2"}})) == "invalid:bad_audience");
}

TEST_CASE("jwt: a missing or unusable claim") {
  const auto verifier = make(secret_settings());
  const auto token = [](json payload) { return hs_jwt("HS256", kSecret, payload); };
  CHECK(verify(*verifier, token({{"sub", "a"}})) == "invalid:missing_claim");
  CHECK(verify(*verifier, token({{"agent_id", ""}})) == "invalid:missing_claim");
  CHECK(verify(*verifier, token({{"agent_id", 1.5}})) == "invalid:missing_claim");
  CHECK(verify(*verifier, token({{"agent_id", {{"x", 1}}}})) == "invalid:missing_claim");
  CHECK(verify(*verifier, token(json::array({1, 2}))) == "invalid:bad_payload");
}

TEST_CASE("jwt: malformed tokens") {
  const auto verifier = make(secret_settings());
  const std::string good = hs_jwt("HS256", kSecret, claims());
  CHECK(verify(*verifier, "") == "invalid:malformed");
  CHECK(verify(*verifier, "abc") == "invalid:malformed");
  CHECK(verify(*verifier, "a.b") == "invalid:malformed");
  CHECK(verify(*verifier, good + ".x") == "invalid:malformed");          // four parts
  CHECK(verify(*verifier, "a.b.c.d.e") == "invalid:malformed");          // a JWE
  CHECK(verify(*verifier, replace_part(good, 0, "eyJ*")) == "invalid:malformed");  // not base64url
  CHECK(verify(*verifier, replace_part(good, 0, good.substr(0, good.find('.')) + "=")) ==
        "invalid:malformed");  // padding
  CHECK(verify(*verifier, replace_part(good, 2, "a+b/")) == "invalid:malformed");
  // Header not JSON, not an object, alg missing or not a string, crit present.
  CHECK(verify(*verifier, replace_part(good, 0, base64url("not json"))) == "invalid:bad_header");
  CHECK(verify(*verifier, replace_part(good, 0, base64url("[1]"))) == "invalid:bad_header");
  CHECK(verify(*verifier, replace_part(good, 0, base64url(R"({"typ":"JWT"})"))) == "invalid:bad_header");
  CHECK(verify(*verifier, replace_part(good, 0, base64url(R"({"alg":256})"))) == "invalid:bad_header");
  CHECK(verify(*verifier, hs_jwt("HS256", kSecret, claims(), {{"crit", {"exp"}}, {"exp", 1}})) ==
        "invalid:bad_header");
  // A payload that is not JSON, correctly signed.
  const std::string input = base64url(R"({"alg":"HS256"})") + "." + base64url("agent_id=a");
  unsigned char mac[64];
  unsigned int size = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &size);
  CHECK(verify(*verifier, input + "." + base64url(std::string(reinterpret_cast<char*>(mac), size))) ==
        "invalid:bad_payload");
}

TEST_CASE("jwt: a token over 8 KiB is invalid before anything is decoded") {
  const auto verifier = make(secret_settings());
  const auto padded = [](std::size_t filler) {
    return hs_jwt("HS256", kSecret, {{"agent_id", "a"}, {"pad", std::string(filler, 'x')}});
  };
  // Find the filler that makes the token exactly kMaxJwtBytes long.
  std::size_t filler = 5000;
  while (padded(filler).size() < kMaxJwtBytes) ++filler;
  while (padded(filler).size() > kMaxJwtBytes) --filler;
  REQUIRE(padded(filler).size() <= kMaxJwtBytes);
  CHECK(verify(*verifier, padded(filler)) == "a");
  CHECK(verify(*verifier, padded(filler + 3)) == "invalid:malformed");
  CHECK(verify(*verifier, std::string(1'000'000, 'a')) == "invalid:malformed");
}

TEST_CASE("jwt: a JWKS selects the key by kid") {
  const std::string doc = phlow::test::jwks({rsa_key().jwk("rsa-1"), p256_key().jwk("ec-1", "ES256"),
                                             p384_key().jwk("ec-2"),
                                             {{"kty", "oct"}, {"kid", "hs-1"}, {"k", base64url(kSecret)}}});
  const auto verifier = make(jwks_settings(), doc);
  CHECK(verifier->key_count() == 4);
  CHECK(verify(*verifier, pk_jwt("RS256", rsa_key(), claims("r"), {{"kid", "rsa-1"}})) == "r");
  CHECK(verify(*verifier, pk_jwt("ES256", p256_key(), claims("e"), {{"kid", "ec-1"}})) == "e");
  CHECK(verify(*verifier, pk_jwt("ES384", p384_key(), claims("f"), {{"kid", "ec-2"}})) == "f");
  CHECK(verify(*verifier, hs_jwt("HS256", kSecret, claims("h"), {{"kid", "hs-1"}})) == "h");
  // Unknown kid, no kid among several keys, a kid that is not a string.
  CHECK(verify(*verifier, pk_jwt("RS256", rsa_key(), claims(), {{"kid", "rsa-2"}})) == "invalid:unknown_kid");
  CHECK(verify(*verifier, pk_jwt("RS256", rsa_key(), claims())) == "invalid:unknown_kid");
  CHECK(verify(*verifier, pk_jwt("RS256", rsa_key(), claims(), {{"kid", 1}})) == "invalid:bad_header");
  // The right kid with another key's signature, or an algorithm that key does not take.
  CHECK(verify(*verifier, pk_jwt("RS256", other_rsa_key(), claims(), {{"kid", "rsa-1"}})) ==
        "invalid:bad_signature");
  CHECK(verify(*verifier, hs_jwt("HS256", rsa_key().public_pem(), claims(), {{"kid", "rsa-1"}})) ==
        "invalid:wrong_alg");
  CHECK(verify(*verifier, pk_jwt("ES256", p256_key(), claims(), {{"kid", "ec-2"}})) == "invalid:wrong_alg");
}

TEST_CASE("jwt: a JWK alg binds its key to that algorithm") {
  const auto verifier = make(jwks_settings(), phlow::test::jwks({rsa_key().jwk("k", "RS256")}));
  CHECK(verify(*verifier, pk_jwt("RS256", rsa_key(), claims("a"), {{"kid", "k"}})) == "a");
  CHECK(verify(*verifier, pk_jwt("RS512", rsa_key(), claims("a"), {{"kid", "k"}})) == "invalid:wrong_alg");
}

TEST_CASE("jwt: a JWKS with one key takes tokens without kid") {
  const auto verifier = make(jwks_settings(), phlow::test::jwks({p256_key().jwk()}));
  CHECK(verify(*verifier, pk_jwt("ES256", p256_key(), claims("a"))) == "a");
  // With one key and a kid that does not name it, the kid still decides.
  CHECK(verify(*verifier, pk_jwt("ES256", p256_key(), claims("a"), {{"kid", "x"}})) == "invalid:unknown_kid");
}

TEST_CASE("jwt: a JWKS skips keys it has no use for") {
  const std::string doc = phlow::test::jwks({
      {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}},
      {{"kty", "EC"}, {"crv", "P-521"}, {"x", "AA"}, {"y", "AA"}},
      with(rsa_key().jwk("enc-key"), "use", "enc"),
      rsa_key().jwk("ps", "PS256"),
      with(rsa_key().jwk("sig-key"), "use", "sig"),
  });
  const auto verifier = make(jwks_settings(), doc);
  CHECK(verifier->key_count() == 1);
  CHECK(verify(*verifier, pk_jwt("RS256", rsa_key(), claims("a"), {{"kid", "enc-key"}})) == "invalid:unknown_kid");
  CHECK(verify(*verifier, pk_jwt("RS256", rsa_key(), claims("a"))) == "a");
}

TEST_CASE("jwt: bad key material fails to load with a reason") {
  const auto fails = [](const JwtSettings& settings, std::string_view text) {
    std::string error;
    auto verifier = JwtVerifier::from_text(settings, text, error);
    CHECK(verifier == nullptr);
    CHECK(!error.empty());
    return error;
  };
  CHECK(fails(pem_settings(), "not a pem").find("PEM") != std::string::npos);
  CHECK(fails(pem_settings(), JwtKey::rsa(1024).public_pem()).find("1024 bits") != std::string::npos);
  CHECK(fails(pem_settings(), JwtKey::ec("P-521").public_pem()).find("curve") != std::string::npos);
  CHECK(fails(jwks_settings(), "{}").find("JWKS") != std::string::npos);
  CHECK(fails(jwks_settings(), "not json").find("JWKS") != std::string::npos);
  CHECK(fails(jwks_settings(), R"({"keys":[]})").find("no usable") != std::string::npos);
  CHECK(fails(jwks_settings(), R"({"keys":[{"kty":"RSA","n":"AQAB"}]})").find("keys[0]") != std::string::npos);
  // x and y must be the full coordinate size, and a point of the curve.
  json short_x = p256_key().jwk();
  short_x["x"] = base64url(std::string(31, '\x01'));
  CHECK(fails(jwks_settings(), phlow::test::jwks({short_x})).find("32 bytes") != std::string::npos);
  json off_curve = p256_key().jwk();
  off_curve["y"] = base64url(std::string(32, '\x01'));
  CHECK(fails(jwks_settings(), phlow::test::jwks({off_curve})).find("invalid EC key") != std::string::npos);
  // A key whose alg does not fit it.
  CHECK(fails(jwks_settings(), phlow::test::jwks({rsa_key().jwk("k", "ES256")})).find("alg") != std::string::npos);
  // load(): a missing file is named.
  JwtSettings missing;
  missing.public_key_file = "/nonexistent/jwt.pem";
  std::string error;
  CHECK(JwtVerifier::load(missing, error) == nullptr);
  CHECK(error.find("/nonexistent/jwt.pem") != std::string::npos);
}

TEST_CASE("jwt: load reads the PEM or JWKS file and a PEM certificate works too") {
  char dir_template[] = "/tmp/phlow-jwt-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  JwtSettings settings;
  settings.public_key_file = dir + "/key.pem";
  std::ofstream(settings.public_key_file) << p256_key().public_pem();
  std::string error;
  auto verifier = JwtVerifier::load(settings, error);
  REQUIRE(verifier != nullptr);
  CHECK(verify(*verifier, pk_jwt("ES256", p256_key(), claims("a"))) == "a");
  JwtSettings jwks;
  jwks.jwks_file = dir + "/jwks.json";
  std::ofstream(jwks.jwks_file) << phlow::test::jwks({rsa_key().jwk("k1")});
  verifier = JwtVerifier::load(jwks, error);
  REQUIRE(verifier != nullptr);
  CHECK(verify(*verifier, pk_jwt("RS256", rsa_key(), claims("b"), {{"kid", "k1"}})) == "b");
  // A certificate (what a provider may publish instead of a bare key): its public key.
  const phlow::test::TlsFiles& tls = phlow::test::tls_files();  // EC P-256, made by openssl
  JwtSettings cert;
  cert.public_key_file = tls.server_cert;
  verifier = JwtVerifier::load(cert, error);
  INFO(error);
  REQUIRE(verifier != nullptr);
  const JwtKey server_key = JwtKey::from_private_pem_file(tls.server_key, "P-256");
  CHECK(verify(*verifier, pk_jwt("ES256", server_key, claims("c"))) == "c");
  CHECK(verify(*verifier, pk_jwt("ES256", p256_key(), claims("c"))) == "invalid:bad_signature");
  std::remove(settings.public_key_file.c_str());
  std::remove(jwks.jwks_file.c_str());
  rmdir(dir.c_str());
}

TEST_CASE("jwt: the extractor takes agent_id only from a verified token") {
  using phlow::config::IdentifierKey;
  using phlow::config::IdentifierKind;
  using phlow::gateway::test::FakeRequest;
  phlow::config::Identifiers settings;
  settings.agent_id.jwt = secret_settings();
  const auto verifier = make(*settings.agent_id.jwt);
  const IdentifierExtractor extractor(settings, verifier.get());
  const auto identify = [&](phlow::gateway::test::FakeHeaders headers, std::string& out, JwtError& why) {
    FakeRequest request;
    request.headers = std::move(headers);
    return extractor.identify(IdentifierKey{IdentifierKind::agent_id, {}}, request.view(), out, &why);
  };
  std::string out;
  JwtError why = JwtError::none;
  const std::string good = hs_jwt("HS256", kSecret, {{"agent_id", "a1"}, {"exp", phlow::test::unix_now() + 60}});
  CHECK(identify({{"Authorization", "Bearer " + good}}, out, why) == Identified::found);
  CHECK(out == "a1");
  // The header is ignored, with or without a token.
  CHECK(identify({{"X-Phlow-Agent-Id", "boss"}}, out, why) == Identified::missing);
  CHECK(identify({{"X-Phlow-Agent-Id", "boss"}, {"Authorization", "Bearer " + good}}, out, why) ==
        Identified::found);
  CHECK(out == "a1");
  // An unverifiable token is invalid, with the reason.
  CHECK(identify({{"Authorization", "Bearer " + hs_jwt("HS256", "x", {{"agent_id", "a1"}})}}, out, why) ==
        Identified::invalid);
  CHECK(why == JwtError::bad_signature);
  CHECK(identify({{"Authorization", "Bearer not-a-jwt"}}, out, why) == Identified::invalid);
  CHECK(why == JwtError::malformed);
  // No bearer token at all: missing, as without verification.
  CHECK(identify({{"Authorization", "Basic YTpi"}}, out, why) == Identified::missing);
  // Without its verifier every token is invalid (fail closed).
  const IdentifierExtractor blind(settings);
  FakeRequest request;
  request.headers = {{"Authorization", "Bearer " + good}};
  CHECK(blind.identify(IdentifierKey{IdentifierKind::agent_id, {}}, request.view(), out) == Identified::invalid);
  CHECK_FALSE(blind.extract(IdentifierKey{IdentifierKind::agent_id, {}}, request.view(), out));
}

TEST_CASE("jwt: one verifier shared by threads") {
  // The snapshot's verifier is used by every worker at once (TSan runs this test).
  const std::string doc = phlow::test::jwks({rsa_key().jwk("r"), p256_key().jwk("e")});
  const auto verifier = make(jwks_settings(), doc);
  const auto secret = make(secret_settings());
  const std::vector<std::string> tokens = {
      pk_jwt("RS256", rsa_key(), claims("r"), {{"kid", "r"}}),
      pk_jwt("ES256", p256_key(), claims("e"), {{"kid", "e"}}),
      pk_jwt("RS256", other_rsa_key(), claims("x"), {{"kid", "r"}}),
  };
  const std::string hs = hs_jwt("HS256", kSecret, claims("h"));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (verify(*verifier, tokens[0]) != "r") ++wrong;
        if (verify(*verifier, tokens[1]) != "e") ++wrong;
        if (verify(*verifier, tokens[2]) != "invalid:bad_signature") ++wrong;
        if (verify(*secret, hs) != "h") ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(wrong.load() == 0);
}

TEST_CASE("jwt: a verified token is cached by its thread until its exp") {
  const auto verifier = make(secret_settings());
  const std::string token = hs_jwt("HS256", kSecret, {{"agent_id", "cached"}, {"exp", kNow + 10}});
  const std::uint64_t before = JwtVerifier::thread_cache_hits();
  CHECK(verify(*verifier, token) == "cached");
  CHECK(JwtVerifier::thread_cache_hits() == before);  // verified, then remembered
  CHECK(verify(*verifier, token) == "cached");
  CHECK(verify(*verifier, token, kNow + 9) == "cached");
  CHECK(JwtVerifier::thread_cache_hits() == before + 2);
  // Past exp the cache does not answer: the token is verified again, and is expired.
  CHECK(verify(*verifier, token, kNow + 10) == "invalid:expired");
  CHECK(JwtVerifier::thread_cache_hits() == before + 2);
  // Another verifier (a reload with another secret) never takes this one's entries.
  JwtSettings other = secret_settings();
  other.secret = "another-secret-of-32-bytes-long!";
  CHECK(verify(*make(other), token) == "invalid:bad_signature");
  // Another claim name is another entry.
  std::string out;
  CHECK(verifier->verify(token, "sub", kNow, out) == JwtError::missing_claim);
  // Invalid tokens are not remembered.
  const std::string forged = hs_jwt("HS256", "guess", {{"agent_id", "cached"}});
  CHECK(verify(*verifier, forged) == "invalid:bad_signature");
  CHECK(verify(*verifier, forged) == "invalid:bad_signature");
  CHECK(JwtVerifier::thread_cache_hits() == before + 2);
  // Each thread has its own cache: the first verification there is not a hit.
  std::uint64_t other_thread_hits = 99;
  std::string other_thread_result;
  std::thread([&] {
    other_thread_result = verify(*verifier, token);
    other_thread_hits = JwtVerifier::thread_cache_hits();
  }).join();
  CHECK(other_thread_result == "cached");
  CHECK(other_thread_hits == 0);
}
