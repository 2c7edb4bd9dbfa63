#pragma once
// JWTs made the way an issuer makes them, for the verifier's tests: keys generated
// with OpenSSL (EVP_PKEY_Q_keygen), tokens signed with HMAC or EVP_DigestSign, public
// keys written as PEM and as JWKs. Independent of the gateway's verifier code (only
// OpenSSL in common), so a test of one is not the other checking itself.

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

typedef struct evp_pkey_st EVP_PKEY;

namespace phlow::test {

// A generated key pair.
class JwtKey {
 public:
  static JwtKey rsa(int bits = 2048);
  static JwtKey ec(std::string_view curve);  // "P-256" or "P-384"
  // The private key of a PEM file (e.g. a TLS key from tls_files()), of `curve` when
  // it is an EC key ("" for RSA).
  static JwtKey from_private_pem_file(const std::string& path, std::string_view curve);

  // SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY").
  std::string public_pem() const;
  // The public JWK: {"kty":"RSA","n","e"} or {"kty":"EC","crv","x","y"}, plus kid (and
  // alg) when not empty.
  nlohmann::json jwk(std::string_view kid = {}, std::string_view alg = {}) const;
  // The JWS signature (base64url) of `signing_input` with `alg` (RS256/384/512,
  // ES256/384: raw r || s as RFC 7518 says).
  std::string sign(std::string_view alg, std::string_view signing_input) const;

  EVP_PKEY* get() const { return key_.get(); }

 private:
  struct Free {
    void operator()(EVP_PKEY* key) const;
  };
  std::string curve_;  // EC only
  std::unique_ptr<EVP_PKEY, Free> key_;
};

// base64url(header) "." base64url(payload): what the signature covers.
std::string jwt_signing_input(const nlohmann::json& header, const nlohmann::json& payload);
// A token signed with HMAC (alg HS256/384/512) by `secret`.
std::string hs_jwt(std::string_view alg, std::string_view secret, const nlohmann::json& payload,
                   nlohmann::json header = nlohmann::json::object());
// A token signed by `key` with `alg`; `header` gets "alg" (and keeps e.g. "kid").
std::string pk_jwt(std::string_view alg, const JwtKey& key, const nlohmann::json& payload,
                   nlohmann::json header = nlohmann::json::object());
// {"keys":[...]}.
std::string jwks(std::initializer_list<nlohmann::json> keys);
// Seconds since the epoch now.
std::int64_t unix_now();

}  // namespace phlow::test
