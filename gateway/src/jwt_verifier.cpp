#include "gateway/jwt_verifier.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "gateway/base64url.hpp"

namespace phlow::gateway {
namespace {

using json = nlohmann::json;

// A decoded JWT payload larger than this is not parsed by the unverified reader (the
// verified path bounds the whole token by kMaxJwtBytes instead).
constexpr std::size_t kMaxUnverifiedPayloadBytes = 8 * 1024;
// Base64 of kMaxUnverifiedPayloadBytes without padding: longer input decodes to more.
constexpr std::size_t kMaxUnverifiedPayloadEncoded = (kMaxUnverifiedPayloadBytes * 4 + 2) / 3;
// RSA keys below this size are refused when loaded (RFC 7518 section 3.3 requires it).
constexpr int kMinRsaBits = 2048;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// What a key is decides the only algorithms a token verified by it may name.
enum class KeyKind : std::uint8_t { hmac, rsa, ec_p256, ec_p384 };

}  // namespace

struct JwtVerifier::Key {
  KeyKind kind = KeyKind::hmac;
  std::string kid;     // JWKS only; empty: none
  std::string alg;     // the JWK's alg; empty: any the kind allows
  std::string secret;  // hmac
  Pkey pkey;           // rsa, ec_*
};

namespace {

struct Algorithm {
  std::string_view name;
  KeyKind kind;  // the key kind it needs (RS* accept any RSA key of kMinRsaBits or more)
  const EVP_MD* (*digest)();
};

constexpr std::array<Algorithm, 8> kAlgorithms{{
    {"HS256", KeyKind::hmac, EVP_sha256},
    {"HS384", KeyKind::hmac, EVP_sha384},
    {"HS512", KeyKind::hmac, EVP_sha512},
    {"RS256", KeyKind::rsa, EVP_sha256},
    {"RS384", KeyKind::rsa, EVP_sha384},
    {"RS512", KeyKind::rsa, EVP_sha512},
    {"ES256", KeyKind::ec_p256, EVP_sha256},
    {"ES384", KeyKind::ec_p384, EVP_sha384},
}};

const Algorithm* find_algorithm(std::string_view name) {
  for (const Algorithm& a : kAlgorithms) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

// The size of r and of s in a JWS ECDSA signature (RFC 7518 section 3.4).
std::size_t ec_component_bytes(KeyKind kind) { return kind == KeyKind::ec_p256 ? 32 : 48; }

bool verify_hmac(const JwtVerifier::Key& key, const EVP_MD* md, std::string_view signed_part,
                 std::string_view signature) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int mac_size = 0;
  if (HMAC(md, key.secret.data(), static_cast<int>(key.secret.size()),
           reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(),
           mac.data(), &mac_size) == nullptr) {
    return false;
  }
  // Constant time: a byte-by-byte compare that stops early would let a client find a
  // valid MAC one byte at a time. The size is public (it follows from alg).
  return signature.size() == mac_size && CRYPTO_memcmp(mac.data(), signature.data(), mac_size) == 0;
}

// The DER ECDSA-Sig-Value OpenSSL verifies, from the JWS form r || s (fixed size each);
// empty on a signature of the wrong size.
std::size_t ecdsa_der(KeyKind kind, std::string_view raw, std::array<unsigned char, 128>& der) {
  const std::size_t n = ec_component_bytes(kind);
  if (raw.size() != 2 * n) return 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  std::unique_ptr<BIGNUM, BnFree> r(BN_bin2bn(bytes, static_cast<int>(n), nullptr));
  std::unique_ptr<BIGNUM, BnFree> s(BN_bin2bn(bytes + n, static_cast<int>(n), nullptr));
  std::unique_ptr<ECDSA_SIG, EcdsaSigFree> sig(ECDSA_SIG_new());
  if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return 0;
  r.release();  // owned by sig now
  s.release();
  const int size = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (size <= 0 || static_cast<std::size_t>(size) > der.size()) return 0;
  unsigned char* out = der.data();
  return i2d_ECDSA_SIG(sig.get(), &out) == size ? static_cast<std::size_t>(size) : 0;
}

bool verify_pkey(const JwtVerifier::Key& key, const EVP_MD* md, std::string_view signed_part,
                 std::string_view signature) {
  std::array<unsigned char, 128> der{};
  const unsigned char* sig = reinterpret_cast<const unsigned char*>(signature.data());
  std::size_t sig_size = signature.size();
  if (key.kind != KeyKind::rsa) {
    sig_size = ecdsa_der(key.kind, signature, der);
    if (sig_size == 0) {
      ERR_clear_error();  // as below
      return false;
    }
    sig = der.data();
  }
  // A context per call: the key is shared by every worker thread, read only.
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  const bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key.pkey.get()) == 1 &&
                  EVP_DigestVerify(ctx.get(), sig, sig_size,
                                   reinterpret_cast<const unsigned char*>(signed_part.data()),
                                   signed_part.size()) == 1;
  // A failed verification may leave errors on this thread's OpenSSL queue, where the
  // next TLS call of the same thread would find them and misreport its own result.
  if (!ok) ERR_clear_error();
  return ok;
}

// Splits "a.b.c" into its three parts; false unless there are exactly three.
bool split_token(std::string_view token, std::array<std::string_view, 3>& parts) {
  const auto first = token.find('.');
  if (first == std::string_view::npos) return false;
  const auto second = token.find('.', first + 1);
  // Exactly three parts: header.payload.signature (a JWE has five, its payload encrypted).
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
    return false;
  }
  parts = {token.substr(0, first), token.substr(first + 1, second - first - 1),
           token.substr(second + 1)};
  return true;
}

// The claim as text: a string as is, an integer in decimal; false for anything else
// or an empty result.
bool claim_text(const json& payload, std::string_view claim, std::string& out) {
  if (claim.empty()) return false;
  const auto it = payload.find(claim);
  if (it == payload.end()) return false;
  if (it->is_string()) {
    out = it->get_ref<const std::string&>();
  } else if (it->is_number_unsigned()) {
    out = std::to_string(it->get<std::uint64_t>());
  } else if (it->is_number_integer()) {
    out = std::to_string(it->get<std::int64_t>());
  } else {
    return false;
  }
  return !out.empty();
}

// exp/nbf are NumericDate: seconds, possibly fractional (RFC 7519 section 2).
bool numeric_date(const json& payload, const char* name, bool& present, double& value) {
  const auto it = payload.find(name);
  present = it != payload.end();
  if (!present) return true;
  if (!it->is_number()) return false;
  value = it->get<double>();
  return std::isfinite(value);
}

JwtError check_audience(const json& payload, const std::string& audience) {
  if (audience.empty()) return JwtError::none;
  const auto it = payload.find("aud");
  if (it == payload.end()) return JwtError::bad_audience;
  if (it->is_string()) {
    return it->get_ref<const std::string&>() == audience ? JwtError::none : JwtError::bad_audience;
  }
  if (it->is_array()) {
    for (const auto& entry : *it) {
      if (entry.is_string() && entry.get_ref<const std::string&>() == audience) return JwtError::none;
    }
  }
  return JwtError::bad_audience;
}

// ----- loading (control plane: errors are messages, never exceptions) -----

bool read_file(const std::string& path, std::string& out, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path;
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    error = "cannot read " + path;
    return false;
  }
  out = std::move(text).str();
  return true;
}

// The kind of a public key, or an error for a type or size the verifier refuses.
bool classify(EVP_PKEY* pkey, KeyKind& kind, std::string& error) {
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    if (EVP_PKEY_get_bits(pkey) < kMinRsaBits) {
      error = "RSA key of " + std::to_string(EVP_PKEY_get_bits(pkey)) + " bits (need " +
              std::to_string(kMinRsaBits) + " or more)";
      return false;
    }
    kind = KeyKind::rsa;
    return true;
  }
  if (EVP_PKEY_is_a(pkey, "EC")) {
    std::array<char, 64> group{};
    std::size_t size = 0;
    if (EVP_PKEY_get_group_name(pkey, group.data(), group.size(), &size) != 1) {
      error = "EC key without a named curve";
      return false;
    }
    const std::string_view name(group.data(), size);
    if (name == "prime256v1" || name == "P-256") {
      kind = KeyKind::ec_p256;
      return true;
    }
    if (name == "secp384r1" || name == "P-384") {
      kind = KeyKind::ec_p384;
      return true;
    }
    error = "EC key on curve " + std::string(name) + " (need P-256 or P-384)";
    return false;
  }
  error = "unsupported key type (need an RSA or EC public key)";
  return false;
}

// A PEM public key ("BEGIN PUBLIC KEY") or the key of a PEM certificate.
bool pem_key(std::string_view text, JwtVerifier::Key& key, std::string& error) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) {
    error = "out of memory";
    return false;
  }
  Pkey pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    bio.reset(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    std::unique_ptr<X509, X509Free> cert(
        bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (cert) pkey.reset(X509_get_pubkey(cert.get()));
  }
  ERR_clear_error();
  if (!pkey) {
    error = "no PEM public key (BEGIN PUBLIC KEY) or certificate found";
    return false;
  }
  if (!classify(pkey.get(), key.kind, error)) return false;
  key.pkey = std::move(pkey);
  return true;
}

// A base64url JWK member, decoded; error names the member when absent or invalid.
bool jwk_bytes(const json& jwk, const char* name, std::string& out, std::string& error) {
  const auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string() || !base64url_decode(it->get_ref<const std::string&>(), out) ||
      out.empty()) {
    error = std::string("missing or invalid \"") + name + "\"";
    return false;
  }
  return true;
}

Pkey pkey_from_params(const char* type, OSSL_PARAM_BLD* builder) {
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(builder));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return nullptr;
  }
  Pkey pkey(raw);
  // fromdata does not check that an EC point is on its curve: a JWKS is configuration,
  // but a key that cannot be right should fail loudly at load, not every request.
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return nullptr;
  return pkey;
}

bool rsa_jwk(const json& jwk, JwtVerifier::Key& key, std::string& error) {
  std::string n, e;
  if (!jwk_bytes(jwk, "n", n, error) || !jwk_bytes(jwk, "e", e, error)) return false;
  std::unique_ptr<BIGNUM, BnFree> bn_n(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(n.data()), static_cast<int>(n.size()), nullptr));
  std::unique_ptr<BIGNUM, BnFree> bn_e(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(e.data()), static_cast<int>(e.size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> builder(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !builder ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    error = "invalid RSA key";
    return false;
  }
  key.pkey = pkey_from_params("RSA", builder.get());
  if (!key.pkey) {
    error = "invalid RSA key";
    return false;
  }
  return classify(key.pkey.get(), key.kind, error);
}

bool ec_jwk(const json& jwk, const std::string& crv, JwtVerifier::Key& key, std::string& error) {
  const std::size_t n = crv == "P-256" ? 32 : 48;
  std::string x, y;
  if (!jwk_bytes(jwk, "x", x, error) || !jwk_bytes(jwk, "y", y, error)) return false;
  // RFC 7518 section 6.2.1.2: the coordinates have the full size of the curve.
  if (x.size() != n || y.size() != n) {
    error = "x and y must be " + std::to_string(n) + " bytes for " + crv;
    return false;
  }
  const std::string point = '\x04' + x + y;  // uncompressed point (SEC 1)
  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, crv.c_str(), 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    error = "invalid EC key";
    return false;
  }
  key.pkey = pkey_from_params("EC", builder.get());
  if (!key.pkey) {
    error = "invalid EC key (not a point of " + crv + ")";
    return false;
  }
  return classify(key.pkey.get(), key.kind, error);
}

// One JWK. Returns false with `error` for a broken key; true with `usable` false for a
// key the verifier has no use for (encryption keys, other curves or algorithms), which
// a provider's JWKS may well hold beside the signing keys.
bool parse_jwk(const json& jwk, JwtVerifier::Key& key, bool& usable, std::string& error) {
  usable = false;
  if (!jwk.is_object()) {
    error = "not a JSON object";
    return false;
  }
  const auto string_member = [&](const char* name, std::string& out) {
    const auto it = jwk.find(name);
    if (it == jwk.end()) return true;
    if (!it->is_string()) {
      error = std::string("\"") + name + "\" is not a string";
      return false;
    }
    out = it->get<std::string>();
    return true;
  };
  std::string kty, use, crv;
  if (!string_member("kty", kty) || !string_member("use", use) || !string_member("kid", key.kid) ||
      !string_member("alg", key.alg) || !string_member("crv", crv)) {
    return false;
  }
  if (kty.empty()) {
    error = "missing \"kty\"";
    return false;
  }
  if (!use.empty() && use != "sig") return true;
  const Algorithm* alg = key.alg.empty() ? nullptr : find_algorithm(key.alg);
  if (!key.alg.empty() && alg == nullptr) return true;  // e.g. PS256, EdDSA
  if (kty == "RSA") {
    if (!rsa_jwk(jwk, key, error)) return false;
  } else if (kty == "EC") {
    if (crv != "P-256" && crv != "P-384") return true;
    if (!ec_jwk(jwk, crv, key, error)) return false;
  } else if (kty == "oct") {
    if (!jwk_bytes(jwk, "k", key.secret, error)) return false;
    key.kind = KeyKind::hmac;
  } else {
    return true;  // e.g. OKP
  }
  if (alg != nullptr && alg->kind != key.kind) {
    error = "\"alg\" " + key.alg + " does not fit the key";
    return false;
  }
  usable = true;
  return true;
}

bool jwks_keys(std::string_view text, std::vector<JwtVerifier::Key>& keys, std::string& error) {
  const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("keys") || !doc["keys"].is_array()) {
    error = "not a JWKS document (a JSON object with a \"keys\" array)";
    return false;
  }
  const json& list = doc["keys"];
  for (std::size_t i = 0; i < list.size(); ++i) {
    JwtVerifier::Key key;
    bool usable = false;
    if (!parse_jwk(list[i], key, usable, error)) {
      error = "keys[" + std::to_string(i) + "]: " + error;
      ERR_clear_error();
      return false;
    }
    if (usable) keys.push_back(std::move(key));
  }
  ERR_clear_error();
  if (keys.empty()) {
    error = "no usable signing key (RSA, EC P-256/P-384 or oct)";
    return false;
  }
  return true;
}

// ----- per-thread cache of verified tokens -----

// Each JwtVerifier gets its own id, so that a cache entry of a verifier that a reload
// replaced (possibly by a new one at the same address) is never taken for the new one.
std::atomic<std::uint64_t> next_verifier_id{1};

using Digest = std::array<unsigned char, 32>;

// SHA-256 of the claim name and the token: the cache key (the raw token is not kept).
bool token_digest(std::string_view claim, std::string_view token, Digest& out) {
  // One context per thread, reset by each init: hashing allocates nothing per request.
  thread_local const std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  unsigned int size = 0;
  const unsigned char separator = 0;
  const bool ok = ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx.get(), claim.data(), claim.size()) == 1 &&
                  EVP_DigestUpdate(ctx.get(), &separator, 1) == 1 &&
                  EVP_DigestUpdate(ctx.get(), token.data(), token.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx.get(), out.data(), &size) == 1 && size == out.size();
  if (!ok) ERR_clear_error();
  return ok;
}

// Verified tokens of this thread (a gateway worker), so that an agent's hot token is
// verified once and then costs a SHA-256: direct-mapped, kSlots entries, an entry
// replaced by the next token that maps to its slot. Thread-local: no lock, nothing
// shared between workers. Only verified tokens are kept, each until its exp (plus
// the leeway); a token without exp until it is replaced.
class VerifiedCache {
 public:
  static constexpr std::size_t kSlots = 1024;

  const std::string* find(std::uint64_t verifier, const Digest& digest, double now) {
    const Entry& e = slot(digest);
    if (e.verifier != verifier || e.digest != digest || now >= e.valid_until) return nullptr;
    ++hits_;
    return &e.claim;
  }
  void insert(std::uint64_t verifier, const Digest& digest, double valid_until, const std::string& claim) {
    Entry& e = slot(digest);
    e.verifier = verifier;
    e.digest = digest;
    e.valid_until = valid_until;
    e.claim.assign(claim);
  }
  std::uint64_t hits() const { return hits_; }

 private:
  struct Entry {
    std::uint64_t verifier = 0;  // 0: empty (ids start at 1)
    Digest digest{};
    double valid_until = 0;
    std::string claim;
  };
  Entry& slot(const Digest& digest) {
    if (entries_.empty()) entries_.resize(kSlots);  // on first use only: threads without tokens pay nothing
    const std::size_t index = (std::size_t{digest[0]} | (std::size_t{digest[1]} << 8)) % kSlots;
    return entries_[index];
  }
  std::vector<Entry> entries_;
  std::uint64_t hits_ = 0;
};

VerifiedCache& verified_cache() {
  thread_local VerifiedCache cache;
  return cache;
}

}  // namespace

std::string_view to_string(JwtError error) {
  switch (error) {
    case JwtError::none: return "none";
    case JwtError::malformed: return "malformed";
    case JwtError::bad_header: return "bad_header";
    case JwtError::alg_none: return "alg_none";
    case JwtError::wrong_alg: return "wrong_alg";
    case JwtError::unknown_kid: return "unknown_kid";
    case JwtError::bad_signature: return "bad_signature";
    case JwtError::bad_payload: return "bad_payload";
    case JwtError::expired: return "expired";
    case JwtError::not_yet_valid: return "not_yet_valid";
    case JwtError::bad_issuer: return "bad_issuer";
    case JwtError::bad_audience: return "bad_audience";
    case JwtError::missing_claim: return "missing_claim";
  }
  return "unknown";
}

JwtVerifier::JwtVerifier(const config::JwtSettings& settings, std::vector<Key> keys)
    : keys_(std::move(keys)),
      jwks_(!settings.jwks_file.empty()),
      issuer_(settings.issuer),
      audience_(settings.audience),
      leeway_seconds_(std::chrono::duration_cast<std::chrono::seconds>(settings.leeway).count()),
      id_(next_verifier_id.fetch_add(1, std::memory_order_relaxed)) {}

std::uint64_t JwtVerifier::thread_cache_hits() { return verified_cache().hits(); }

JwtVerifier::~JwtVerifier() = default;

std::size_t JwtVerifier::key_count() const { return keys_.size(); }

std::shared_ptr<const JwtVerifier> JwtVerifier::from_text(const config::JwtSettings& settings,
                                                          std::string_view key_text,
                                                          std::string& error) {
  std::vector<Key> keys;
  if (!settings.secret.empty()) {
    Key key;
    key.kind = KeyKind::hmac;
    key.secret = settings.secret;
    keys.push_back(std::move(key));
  } else if (!settings.public_key_file.empty()) {
    Key key;
    if (!pem_key(key_text, key, error)) return nullptr;
    keys.push_back(std::move(key));
  } else if (!settings.jwks_file.empty()) {
    if (!jwks_keys(key_text, keys, error)) return nullptr;
  } else {
    error = "no key configured";
    return nullptr;
  }
  return std::make_shared<const JwtVerifier>(settings, std::move(keys));
}

std::shared_ptr<const JwtVerifier> JwtVerifier::load(const config::JwtSettings& settings,
                                                     std::string& error) {
  const std::string& file = !settings.public_key_file.empty() ? settings.public_key_file
                                                               : settings.jwks_file;
  std::string text;
  if (settings.secret.empty() && !read_file(file, text, error)) return nullptr;
  auto verifier = from_text(settings, text, error);
  if (!verifier) error = file + ": " + error;
  return verifier;
}

const JwtVerifier::Key* JwtVerifier::select_key(std::string_view kid) const {
  // One key (a secret, a PEM key): the token's kid, if any, is only a hint.
  if (!jwks_) return keys_.empty() ? nullptr : &keys_.front();
  if (kid.empty()) return keys_.size() == 1 ? &keys_.front() : nullptr;
  for (const Key& key : keys_) {
    if (key.kid == kid) return &key;
  }
  return nullptr;
}

JwtError JwtVerifier::verify(std::string_view token, std::string_view claim, std::string& out) const {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return verify(token, claim, now.count(), out);
}

JwtError JwtVerifier::verify(std::string_view token, std::string_view claim, std::int64_t now_seconds,
                             std::string& out) const {
  if (token.size() > kMaxJwtBytes) return JwtError::malformed;
  Digest digest;
  const bool cacheable = token_digest(claim, token, digest);
  const auto now = static_cast<double>(now_seconds);
  if (cacheable) {
    if (const std::string* claim_value = verified_cache().find(id_, digest, now)) {
      out.assign(*claim_value);
      return JwtError::none;
    }
  }
  double valid_until = 0;
  const JwtError e = verify_uncached(token, claim, now, out, valid_until);
  if (e == JwtError::none && cacheable) verified_cache().insert(id_, digest, valid_until, out);
  return e;
}

JwtError JwtVerifier::verify_uncached(std::string_view token, std::string_view claim, double now,
                                      std::string& out, double& valid_until) const {
  std::array<std::string_view, 3> parts;
  if (token.size() > kMaxJwtBytes || !split_token(token, parts)) return JwtError::malformed;
  // Scratch space reused by this thread's later tokens (the verifier itself is shared).
  thread_local std::string decoded;
  if (!base64url_decode(parts[0], decoded)) return JwtError::malformed;
  const json header = json::parse(decoded, nullptr, /*allow_exceptions=*/false);
  if (!header.is_object()) return JwtError::bad_header;
  const auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) return JwtError::bad_header;
  // RFC 7515 section 4.1.11: extensions marked critical must be understood; none are.
  if (header.contains("crit")) return JwtError::bad_header;
  const std::string& alg_name = alg_it->get_ref<const std::string&>();
  if (alg_name == "none" || alg_name == "None" || alg_name == "NONE") return JwtError::alg_none;
  const Algorithm* alg = find_algorithm(alg_name);
  if (alg == nullptr) return JwtError::wrong_alg;

  std::string_view kid;
  if (const auto kid_it = header.find("kid"); kid_it != header.end()) {
    if (!kid_it->is_string()) return JwtError::bad_header;
    kid = kid_it->get_ref<const std::string&>();
  }
  const Key* key = select_key(kid);
  if (key == nullptr) return JwtError::unknown_kid;
  // The key decides the algorithm, never the token alone.
  if (alg->kind != key->kind || (!key->alg.empty() && key->alg != alg->name)) return JwtError::wrong_alg;

  if (!base64url_decode(parts[2], decoded)) return JwtError::malformed;
  const std::string_view signed_part = token.substr(0, parts[0].size() + 1 + parts[1].size());
  const bool signature_ok = key->kind == KeyKind::hmac
                                ? verify_hmac(*key, alg->digest(), signed_part, decoded)
                                : verify_pkey(*key, alg->digest(), signed_part, decoded);
  if (!signature_ok) return JwtError::bad_signature;

  if (!base64url_decode(parts[1], decoded)) return JwtError::malformed;
  const json payload = json::parse(decoded, nullptr, /*allow_exceptions=*/false);
  if (!payload.is_object()) return JwtError::bad_payload;
  bool has_exp = false, has_nbf = false;
  double exp = 0, nbf = 0;
  if (!numeric_date(payload, "exp", has_exp, exp) || !numeric_date(payload, "nbf", has_nbf, nbf)) {
    return JwtError::bad_payload;
  }
  const auto leeway = static_cast<double>(leeway_seconds_);
  // RFC 7519 section 4.1.4: valid only before exp; 4.1.5: not before nbf.
  if (has_exp && now >= exp + leeway) return JwtError::expired;
  valid_until = has_exp ? exp + leeway : std::numeric_limits<double>::infinity();
  if (has_nbf && now + leeway < nbf) return JwtError::not_yet_valid;
  if (!issuer_.empty()) {
    const auto iss = payload.find("iss");
    if (iss == payload.end() || !iss->is_string() || iss->get_ref<const std::string&>() != issuer_) {
      return JwtError::bad_issuer;
    }
  }
  if (const JwtError e = check_audience(payload, audience_); e != JwtError::none) return e;
  return claim_text(payload, claim, out) ? JwtError::none : JwtError::missing_claim;
}

bool unverified_jwt_claim(std::string_view token, std::string_view claim, std::string& out) {
  std::array<std::string_view, 3> parts;
  if (claim.empty() || !split_token(token, parts)) return false;
  thread_local std::string decoded;
  if (parts[1].size() > kMaxUnverifiedPayloadEncoded || !base64url_decode(parts[1], decoded)) {
    return false;
  }
  // No exceptions on the data path: a parse error yields a discarded value.
  const json payload = json::parse(decoded, nullptr, /*allow_exceptions=*/false);
  return payload.is_object() && claim_text(payload, claim, out);
}

}  // namespace phlow::gateway
