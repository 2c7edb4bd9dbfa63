#include "limiter/descriptor.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>

namespace phlow::limiter {

namespace {

// SHA-256 fetched once (OpenSSL 3 would look it up on every EVP_Digest) and one
// digest context per thread (EVP_Digest allocates one per call).
const EVP_MD* sha256_md() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
}

struct DigestContext {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~DigestContext() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

void sha256_hex(std::string_view data, std::string& out) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  thread_local DigestContext context;
  if (context.ctx == nullptr || EVP_DigestInit_ex(context.ctx, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(context.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.ctx, digest.data(), &length) != 1) {
    EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out.resize(static_cast<std::size_t>(length) * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0x0f];
  }
}

std::string sha256_hex(std::string_view data) {
  std::string out;
  sha256_hex(data, out);
  return out;
}

Sha256Memo::~Sha256Memo() { wipe(); }

void Sha256Memo::wipe() {
  if (!input_.empty()) OPENSSL_cleanse(input_.data(), input_.size());
  input_.clear();
  valid_ = false;
}

void Sha256Memo::hex(std::string_view data, std::string& out) {
  if (!valid_ || data != input_) {
    sha256_hex(data, digest_);  // before `out` changes: `data` may point into it
    wipe();
    input_.assign(data);
    valid_ = true;
  }
  out.assign(digest_);
}

namespace {

// Printable ASCII without space; '*', '?', '[' and ']' would confuse KEYS/SCAN
// patterns. Every byte is checked, without an early exit and with '[' and ']' (2
// apart) in one test, so that GCC checks 16 bytes at a time: a token's 64-hex-digit
// hash took about 900 instructions a byte at a time (callgrind, bench/instructions.sh
// LIMITS=2).
bool fits_in_key(std::string_view identifier) {
  if (identifier.size() > kMaxRawIdentifier) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(identifier.data());
  unsigned char bad = 0;
  for (std::size_t i = 0; i < identifier.size(); ++i) {
    const unsigned char c = p[i];
    bad |= static_cast<unsigned char>((static_cast<unsigned char>(c - 0x21) > 0x7e - 0x21) | (c == '*') |
                                      (c == '?') | (static_cast<unsigned char>((c - '[') & 0xfd) == 0));
  }
  return bad == 0 && !identifier.starts_with("sha256:");
}

}  // namespace

std::string key_identifier(std::string_view identifier) {
  if (fits_in_key(identifier)) return std::string(identifier);
  return "sha256:" + sha256_hex(identifier);
}

void build_key(std::string& out, std::string_view prefix, std::string_view limit_name,
               std::string_view identifier) {
  out.clear();
  out.append(prefix).append(limit_name).push_back(':');
  if (fits_in_key(identifier)) {
    out.append(identifier);
  } else {
    out.append("sha256:").append(sha256_hex(identifier));
  }
}

std::string build_key(std::string_view prefix, std::string_view limit_name,
                      std::string_view identifier) {
  std::string out;
  build_key(out, prefix, limit_name, identifier);
  return out;
}

}  // namespace phlow::limiter
