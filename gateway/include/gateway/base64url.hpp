#pragma once
// Unpadded base64url (RFC 7515 section 2), the only form JWS compact tokens and JWKs
// use. Shared by the unverified agent_id claim reader and the JWT verifier.

#include <string>
#include <string_view>

namespace phlow::gateway {

// Decodes `text` into `out` (cleared first, capacity reused). Padding, the '+' '/'
// alphabet, whitespace and a length of 1 mod 4 are rejected: returns false on any
// invalid input (`out` then holds garbage).
bool base64url_decode(std::string_view text, std::string& out);

}  // namespace phlow::gateway
