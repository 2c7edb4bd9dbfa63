#pragma once
// Verification of the bearer JWT that carries the agent ID (SPEC.md, "TLS at the edge,
// JWT verification, WebSocket"; config: identifiers.agent_id.jwt).
//
// JWS compact tokens only (header.payload.signature). Algorithms: HS256/384/512 with
// the configured secret, RS256/384/512 with an RSA public key (2048 bits or more),
// ES256 with a P-256 key and ES384 with a P-384 key. The key decides which algorithms
// a token may name, never the token: `alg: none`, an HS token against a public key
// (the classic confusion attack, where the PEM text is used as HMAC secret) or an RS
// token against a secret are all invalid. All cryptography is OpenSSL's (EVP).
//
// A JwtVerifier is immutable once loaded; it lives in the config snapshot and is used
// by every worker thread at once: verify() only reads the keys (a fresh EVP_MD_CTX per
// call) and allocates only its scratch strings and the parsed JSON.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace phlow::gateway {

// Why a token is invalid; `none` means it verified. The names are the reason labels of
// phlow_gateway_jwt_invalid_total.
enum class JwtError : std::uint8_t {
  none,
  malformed,      // not three base64url parts, or larger than kMaxJwtBytes
  bad_header,     // the header is not a JSON object with a string alg, or has crit
  alg_none,       // alg "none": an unsigned token
  wrong_alg,      // an alg the key does not allow (or unknown): algorithm confusion
  unknown_kid,    // JWKS: no key with the token's kid (or no kid and several keys)
  bad_signature,  // the signature does not verify
  bad_payload,    // the payload is not a JSON object, or exp/nbf are not numbers
  expired,        // exp is past (beyond the leeway)
  not_yet_valid,  // nbf is ahead (beyond the leeway)
  bad_issuer,     // iss missing or not the configured issuer
  bad_audience,   // aud missing or not (containing) the configured audience
  missing_claim,  // the agent ID claim is missing, empty, or not a string or integer
};
inline constexpr std::size_t kJwtErrors = 13;
std::string_view to_string(JwtError error);

// Tokens longer than this are invalid without being decoded, so that a client cannot
// make each request decode and parse a huge document.
inline constexpr std::size_t kMaxJwtBytes = 8 * 1024;

class JwtVerifier {
 public:
  // Builds the verifier `settings` describe: takes the secret, or reads and parses the
  // PEM file or the JWKS file. nullptr on failure, with `error` naming the file and
  // what is wrong with it (startup and reload report it as a config error).
  static std::shared_ptr<const JwtVerifier> load(const config::JwtSettings& settings,
                                                 std::string& error);
  // The same from the text of the key file (what load() reads from public_key_file or
  // jwks_file; ignored when `settings` has a secret). For tests and the fuzzer.
  static std::shared_ptr<const JwtVerifier> from_text(const config::JwtSettings& settings,
                                                      std::string_view key_text,
                                                      std::string& error);

  // Verifies `token` (signature, then exp/nbf at `now_seconds` since the epoch with the
  // leeway, iss, aud) and writes its claim `claim` into `out` as text (a string as is,
  // an integer in decimal; capacity reused). Never throws.
  // A verified token is remembered by the calling thread (1024 entries, by SHA-256 of
  // claim name and token, until its exp plus leeway): the same token again costs a
  // hash, not a signature check. The cache is thread_local: workers share no lock.
  JwtError verify(std::string_view token, std::string_view claim, std::int64_t now_seconds,
                  std::string& out) const;
  // The same at the system clock's time.
  JwtError verify(std::string_view token, std::string_view claim, std::string& out) const;

  // How many keys were loaded (a JWKS may hold several; the others one).
  std::size_t key_count() const;
  // Verifications this thread answered from its cache (for tests).
  static std::uint64_t thread_cache_hits();

  struct Key;  // defined in jwt_verifier.cpp (OpenSSL types stay there)
  JwtVerifier(const config::JwtSettings& settings, std::vector<Key> keys);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

 private:
  const Key* select_key(std::string_view kid) const;
  // verify() without the cache; `valid_until` (seconds) is how long a verified token
  // may be cached: exp + leeway, or infinity without exp.
  JwtError verify_uncached(std::string_view token, std::string_view claim, double now,
                           std::string& out, double& valid_until) const;

  std::vector<Key> keys_;
  bool jwks_ = false;  // keys are selected by kid
  std::string issuer_;
  std::string audience_;
  std::int64_t leeway_seconds_ = 0;
  std::uint64_t id_ = 0;  // distinct per verifier ever made: the cache's key
};

// The claim `claim` of `token`'s payload, read WITHOUT verifying anything (the mode
// without identifiers.agent_id.jwt): false when the token is not a three-part JWT with
// a JSON object payload holding that claim as a non-empty string or an integer.
bool unverified_jwt_claim(std::string_view token, std::string_view claim, std::string& out);

}  // namespace phlow::gateway
