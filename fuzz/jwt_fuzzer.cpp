// The JWT verifier (gateway/jwt_verifier.hpp) and the unverified claim reader on
// arbitrary input. The first byte picks the mode, the rest is its input:
//   0  a token, verified against an HS256 secret, a PEM P-256 key and a JWKS (RSA and
//      EC keys by kid), and read without verification
//   1  "<header JSON>\n<payload JSON>": made into a token signed with the secret
//      (HMAC-SHA256), so that the header, exp/nbf/iss/aud and claim code is reached
//      past the signature
//   2  key material: loaded as a JWKS and as a PEM, then used on a fixed token
// Invariants: nothing crashes or leaks; a verified token yields a non-empty claim and
// is at most kMaxJwtBytes; a token signed in mode 1 verifies only if its header names
// HS256 (the only algorithm that key and digest make) without crit; verification is
// deterministic.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "fuzz_assert.hpp"
#include "gateway/jwt_verifier.hpp"
#include "support/base64url.hpp"

namespace {

using phlow::config::JwtSettings;
using phlow::gateway::JwtError;
using phlow::gateway::JwtVerifier;

constexpr std::string_view kSecret = "fuzz-secret-fuzz-secret-fuzz-sec";
constexpr std::int64_t kNow = 1'800'000'000;

// Public keys only (the private halves made the seed tokens and were thrown away).
constexpr std::string_view kJwks =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"fuzz-rsa\",\"n\":\"lV21874RN7vQSlu_2V8qwiTeQJe"
    "bRciGnPF0Z0SiS_27VnbN8aI5pABikHT-94XvD11I8AFn_2p9-BSqNly7m2Es8YSvBVee524-It-gFanW4_K"
    "ZW8ZVuJs9yAxBg7ll57kj13-pKTHPTIoEYoSZgJzmR8bMJfJuXYk_TUoYWQiJ6e6GxnGhxcL-ix35qFemYKr"
    "CFsQKL9p7rIE6ARTsSK7Yu99CkQ_jXd4OeUJt7mJ7Sv5-rYIeOUQe5ysvrx-vChu8qwXhEszN_nYTciu93t2"
    "uHgqa7tm7aJOMVEjaZ3KwGnYJfrGu0Ia4EMolJ6EfuizO13_TcUMutxqGIur9Yw\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"kid\":\"fuzz-ec\",\"crv\":\"P-256\",\"x\":\"cB1xtTCg-ma6bXiMgcJjwR9H"
    "-TN5T6Q1heLnoK3Owks\",\"y\":\"ZL0-EgDE5zkS90u3hFq1JIS20vVjVkhjqdAYh03Z2gQ\"}]}";
constexpr std::string_view kEcPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEcB1xtTCg+ma6bXiMgcJjwR9H+TN5\n"
    "T6Q1heLnoK3OwktkvT4SAMTnORL3S7eEWrUkhLbS9WNWSGOp0BiHTdnaBA==\n"
    "-----END PUBLIC KEY-----\n";

std::shared_ptr<const JwtVerifier> make(JwtSettings settings, std::string_view text) {
  std::string error;
  auto verifier = JwtVerifier::from_text(settings, text, error);
  FUZZ_ASSERT(verifier != nullptr);
  return verifier;
}

struct Verifiers {
  std::shared_ptr<const JwtVerifier> secret, strict_secret, pem, jwks;
  Verifiers() {
    JwtSettings s;
    s.secret = kSecret;
    secret = make(s, {});
    s.issuer = "https://auth.example";
    s.audience = "phlow-agents";
    s.leeway = std::chrono::seconds(30);
    strict_secret = make(s, {});
    JwtSettings p;
    p.public_key_file = "fuzz.pem";
    pem = make(p, kEcPem);
    JwtSettings j;
    j.jwks_file = "fuzz.json";
    jwks = make(j, kJwks);
  }
};

const Verifiers& verifiers() {
  static const Verifiers v;
  return v;
}

JwtError check(const JwtVerifier& verifier, std::string_view token) {
  std::string out;
  const JwtError e = verifier.verify(token, "agent_id", kNow, out);
  if (e == JwtError::none) {
    FUZZ_ASSERT(!out.empty());
    FUZZ_ASSERT(token.size() <= phlow::gateway::kMaxJwtBytes);
  }
  std::string again;
  FUZZ_ASSERT(verifier.verify(token, "agent_id", kNow, again) == e);
  FUZZ_ASSERT(again == out || e != JwtError::none);
  return e;
}

void tokens(std::string_view token) {
  const Verifiers& v = verifiers();
  check(*v.secret, token);
  check(*v.strict_secret, token);
  check(*v.pem, token);
  check(*v.jwks, token);
  std::string claim;
  if (phlow::gateway::unverified_jwt_claim(token, "agent_id", claim)) FUZZ_ASSERT(!claim.empty());
}

void signed_parts(std::string_view input) {
  const auto newline = input.find('\n');
  if (newline == std::string_view::npos) return;
  const std::string_view header = input.substr(0, newline);
  const std::string_view payload = input.substr(newline + 1);
  const std::string signing_input = phlow::test::base64url(header) + "." + phlow::test::base64url(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), kSecret.data(), static_cast<int>(kSecret.size()),
       reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &size);
  const std::string token =
      signing_input + "." + phlow::test::base64url(std::string_view(reinterpret_cast<const char*>(mac), size));
  const Verifiers& v = verifiers();
  const JwtError plain = check(*v.secret, token);
  const JwtError strict = check(*v.strict_secret, token);
  if (plain == JwtError::none || strict == JwtError::none) {
    const auto parsed = nlohmann::json::parse(header, nullptr, false);
    FUZZ_ASSERT(parsed.is_object());
    FUZZ_ASSERT(parsed.contains("alg") && parsed["alg"] == "HS256");
    FUZZ_ASSERT(!parsed.contains("crit"));
  }
  // Public keys never accept an HMAC-signed token.
  FUZZ_ASSERT(check(*v.pem, token) != JwtError::none);
  FUZZ_ASSERT(check(*v.jwks, token) != JwtError::none);
}

void key_material(std::string_view text) {
  static const std::string token =
      "eyJhbGciOiJFUzI1NiIsImtpZCI6ImZ1enotZWMifQ."
      "eyJhZ2VudF9pZCI6ImZ1enotYWdlbnQiLCJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZSIsImF1ZCI6WyJwaGxvdy1hZ2VudHMiXSwibmJmIjoxMDAwfQ."
      "UjhzBOle-icLemEvtcPl0NHjaZ73J2Mr95NbzLo-nvvqcO1y2wFJbWRyOvpy53bIrYkBDHQKnQQqJJVtwtjM2w";
  JwtSettings j;
  j.jwks_file = "fuzz.json";
  JwtSettings p;
  p.public_key_file = "fuzz.pem";
  for (const JwtSettings& settings : {j, p}) {
    std::string error;
    const auto verifier = JwtVerifier::from_text(settings, text, error);
    FUZZ_ASSERT((verifier == nullptr) != error.empty());
    if (verifier) {
      FUZZ_ASSERT(verifier->key_count() > 0);
      check(*verifier, token);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: tokens(input); break;
    case 1: signed_parts(input); break;
    default: key_material(input); break;
  }
  return 0;
}
