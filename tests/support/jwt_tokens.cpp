#include "support/jwt_tokens.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <chrono>
#include <stdexcept>
#include <vector>

#include "support/base64url.hpp"

namespace phlow::test {
namespace {

using json = nlohmann::json;

const EVP_MD* digest_of(std::string_view alg) {
  if (alg.ends_with("256")) return EVP_sha256();
  if (alg.ends_with("384")) return EVP_sha384();
  if (alg.ends_with("512")) return EVP_sha512();
  throw std::runtime_error("test: no digest for " + std::string(alg));
}

std::string bn_bytes(EVP_PKEY* key, const char* name, int pad) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) throw std::runtime_error("test: no key param");
  std::string out(pad > 0 ? static_cast<std::size_t>(pad) : static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size()));
  BN_free(bn);
  return out;
}

}  // namespace

void JwtKey::Free::operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }

JwtKey JwtKey::rsa(int bits) {
  JwtKey key;
  key.key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(bits)));
  if (!key.key_) throw std::runtime_error("test: RSA keygen failed");
  return key;
}

JwtKey JwtKey::ec(std::string_view curve) {
  JwtKey key;
  key.curve_ = curve;
  key.key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", key.curve_.c_str()));
  if (!key.key_) throw std::runtime_error("test: EC keygen failed");
  return key;
}

JwtKey JwtKey::from_private_pem_file(const std::string& path, std::string_view curve) {
  JwtKey key;
  key.curve_ = curve;
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio != nullptr) key.key_.reset(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  if (!key.key_) throw std::runtime_error("test: cannot read private key " + path);
  return key;
}

std::string JwtKey::public_pem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key_.get());
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return pem;
}

json JwtKey::jwk(std::string_view kid, std::string_view alg) const {
  json out;
  if (curve_.empty()) {
    out = {{"kty", "RSA"},
           {"n", base64url(bn_bytes(key_.get(), OSSL_PKEY_PARAM_RSA_N, 0))},
           {"e", base64url(bn_bytes(key_.get(), OSSL_PKEY_PARAM_RSA_E, 0))}};
  } else {
    const int size = curve_ == "P-256" ? 32 : 48;
    out = {{"kty", "EC"},
           {"crv", curve_},
           {"x", base64url(bn_bytes(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X, size))},
           {"y", base64url(bn_bytes(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, size))}};
  }
  if (!kid.empty()) out["kid"] = kid;
  if (!alg.empty()) out["alg"] = alg;
  return out;
}

std::string JwtKey::sign(std::string_view alg, std::string_view signing_input) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::size_t size = 0;
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
  if (EVP_DigestSignInit(ctx, nullptr, digest_of(alg), nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx, nullptr, &size, data, signing_input.size()) != 1) {
    EVP_MD_CTX_free(ctx);
    throw std::runtime_error("test: sign failed");
  }
  std::vector<unsigned char> signature(size);
  EVP_DigestSign(ctx, signature.data(), &size, data, signing_input.size());
  EVP_MD_CTX_free(ctx);
  signature.resize(size);
  if (curve_.empty()) return base64url(std::string(signature.begin(), signature.end()));
  // ECDSA: DER from OpenSSL, r || s (each the curve's size) in a JWS.
  const unsigned char* p = signature.data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(size));
  const int n = curve_ == "P-256" ? 32 : 48;
  std::string raw(static_cast<std::size_t>(2 * n), '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(raw.data()), n);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(raw.data()) + n, n);
  ECDSA_SIG_free(sig);
  return base64url(raw);
}

std::string jwt_signing_input(const json& header, const json& payload) {
  return base64url(header.dump()) + "." + base64url(payload.dump());
}

std::string hs_jwt(std::string_view alg, std::string_view secret, const json& payload, json header) {
  header["alg"] = alg;
  const std::string input = jwt_signing_input(header, payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(digest_of(alg), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &size);
  return input + "." + base64url(std::string(reinterpret_cast<const char*>(mac), size));
}

std::string pk_jwt(std::string_view alg, const JwtKey& key, const json& payload, json header) {
  header["alg"] = alg;
  const std::string input = jwt_signing_input(header, payload);
  return input + "." + key.sign(alg, input);
}

std::string jwks(std::initializer_list<json> keys) {
  return json{{"keys", json::array_t(keys)}}.dump();
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace phlow::test
