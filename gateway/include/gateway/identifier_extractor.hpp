#pragma once
// Turns a request into the identifiers its limits count by (SPEC.md, "Limit keys").
// Raw tokens and API keys never leave this class (and the session's Sha256Memo, which
// remembers the last one to skip hashing it again): only their SHA-256.

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "gateway/jwt_verifier.hpp"
#include "gateway/request_view.hpp"
#include "limiter/descriptor.hpp"

namespace phlow::gateway {

// What a request has for an identifier. `invalid` only for agent_id with
// identifiers.agent_id.jwt set: a bearer token is there but does not verify.
enum class Identified : std::uint8_t { found, missing, invalid };

class IdentifierExtractor {
 public:
  // `jwt` verifies agent_id tokens when settings.agent_id.jwt is set (owned by the
  // snapshot, like `settings`); without it every such token is invalid.
  explicit IdentifierExtractor(const config::Identifiers& settings,
                               const JwtVerifier* jwt = nullptr);

  // Writes the identifier of `key` for `request` into `out` (reusing its capacity)
  // and returns true; returns false when the request has none (the limit is skipped).
  //   token_hash  SHA-256 hex of the whole bearer token in Authorization
  //   agent_id    the agent header, else the (unverified) JWT claim; with
  //               agent_id.jwt set, only the claim of a verified JWT
  //   ip          client_ip(), IPv6 grouped by ipv6_prefix ("2001:db8:1:2::/64")
  //   api_key     SHA-256 hex of the api-key header, else of the query parameter
  //   header:NAME that header's first value
  // An invalid token counts as missing here; identify() tells them apart.
  bool extract(const config::IdentifierKey& key, const RequestView& request,
               std::string& out) const;
  // The same with the three outcomes; on `invalid`, `why` (if given) says why.
  // `digests` (if given) remembers the last token or API key hashed (a session's).
  Identified identify(const config::IdentifierKey& key, const RequestView& request,
                      std::string& out, JwtError* why = nullptr,
                      limiter::Sha256Memo* digests = nullptr) const;

  // The client address: the peer, or, when the peer is a trusted proxy, the
  // right-most address of the forwarded header that is not a trusted proxy.
  // Never empty. Entries that are not IP addresses end the walk (the peer is used).
  std::string client_ip(const RequestView& request) const;

  // `target` fit for logs: the value of every api_key query parameter is replaced by
  // "***", so that a raw API key never reaches the access log.
  std::string redact_target(std::string_view target) const;

 private:
  Identified agent_id(const HeaderSource& headers, std::string& out, JwtError* why) const;

  const config::Identifiers& settings_;  // owned by the config snapshot
  const JwtVerifier* jwt_;               // likewise; nullptr without agent_id.jwt
};

}  // namespace phlow::gateway
