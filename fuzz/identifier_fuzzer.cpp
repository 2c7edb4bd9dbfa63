// The identifier extractors on arbitrary requests. Input, one item per line ('\n'):
//   peer address
//   target ("/path?query")
//   Name: value        (any number of header lines)
// Every identifier kind is extracted under three identifier settings (defaults with
// trusted proxies, everything trusted with odd header names, nothing trusted), and the
// invariants the limiter relies on are checked: identifiers that go into a Redis key
// never carry raw CR/LF/space/control bytes (limiter::build_key hashes them), hashes are
// 64 hex digits, the client IP comes from the peer or the forwarded header, and a
// redacted target never yields the raw API key.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/cidr.hpp"
#include "config/config.hpp"
#include "fuzz_assert.hpp"
#include "gateway/identifier_extractor.hpp"
#include "limiter/descriptor.hpp"

namespace {

using phlow::config::IdentifierKey;
using phlow::config::IdentifierKind;
using phlow::config::Identifiers;
using phlow::gateway::HeaderSource;
using phlow::gateway::IdentifierExtractor;
using phlow::gateway::RequestView;

class ListHeaders final : public HeaderSource {
 public:
  std::vector<std::pair<std::string_view, std::string_view>> fields;

  void for_each(std::string_view name,
                const std::function<void(std::string_view)>& fn) const override {
    for (const auto& [field, value] : fields) {
      if (iequals(field, name)) fn(value);
    }
  }

 private:
  static bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
      if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
  }
};

std::vector<phlow::config::Cidr> cidrs(std::initializer_list<const char*> texts) {
  std::vector<phlow::config::Cidr> out;
  for (const char* text : texts) {
    auto cidr = phlow::config::parse_cidr(text);
    FUZZ_ASSERT(cidr.has_value());
    out.push_back(*cidr);
  }
  return out;
}

std::vector<Identifiers> make_settings() {
  std::vector<Identifiers> all(3);
  all[0].ip.trusted_proxies = cidrs({"127.0.0.1/32", "::1/128", "10.0.0.0/8", "2001:db8::/32"});
  all[1].ip.trusted_proxies = cidrs({"0.0.0.0/0", "::/0"});
  all[1].ip.forwarded_header = "X-Real-Client";
  all[1].ip.ipv6_prefix = 128;
  all[1].agent_id = {"X-Agent", "sub"};
  all[1].api_key = {"Api-Key", "key"};
  all[2].ip.ipv6_prefix = 0;
  all[2].agent_id = {"", "agent_id"};  // JWT claim only
  all[2].api_key = {"", "api_key"};    // query only
  return all;
}

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The key as the session builds it, and what the limiter stores of the identifier.
void check_key(std::string_view identifier) {
  constexpr std::string_view prefix = "phlow:ratelimit:";
  constexpr std::string_view name = "limit";
  const std::string key = phlow::limiter::build_key(prefix, name, identifier);
  const std::string_view stored = std::string_view(key).substr(prefix.size() + name.size() + 1);
  FUZZ_ASSERT(stored == phlow::limiter::key_identifier(identifier));
  FUZZ_ASSERT(stored.size() <= std::max<std::size_t>(phlow::limiter::kMaxRawIdentifier, 7 + 64));
  for (unsigned char c : stored) FUZZ_ASSERT(c > 0x20 && c < 0x7f);
  if (stored.starts_with("sha256:")) {
    FUZZ_ASSERT(is_hex64(stored.substr(7)));
  } else {
    FUZZ_ASSERT(stored == identifier);
  }
}

void run(const Identifiers& settings, const RequestView& request, const ListHeaders& headers) {
  const IdentifierExtractor extractor(settings);
  std::string out;
  for (const IdentifierKey& key :
       {IdentifierKey{IdentifierKind::token_hash, ""}, IdentifierKey{IdentifierKind::agent_id, ""},
        IdentifierKey{IdentifierKind::ip, ""}, IdentifierKey{IdentifierKind::api_key, ""},
        IdentifierKey{IdentifierKind::header, "X-Tenant"}, IdentifierKey{IdentifierKind::header, ""}}) {
    out = "stale";
    const bool found = extractor.extract(key, request, out);
    if (key.kind == IdentifierKind::ip) FUZZ_ASSERT(found);
    if (!found) continue;
    FUZZ_ASSERT(!out.empty());
    if (key.kind == IdentifierKind::token_hash || key.kind == IdentifierKind::api_key) {
      FUZZ_ASSERT(is_hex64(out));
    }
    check_key(out);
  }

  const std::string ip = extractor.client_ip(request);
  FUZZ_ASSERT(!ip.empty());
  if (ip != request.peer_address) {
    // Only a trusted peer's forwarded header can name another client.
    bool in_header = false;
    headers.for_each(settings.ip.forwarded_header, [&](std::string_view value) {
      in_header = in_header || value.find(ip) != std::string_view::npos;
    });
    FUZZ_ASSERT(in_header || request.peer_address.empty());
  }

  // The access log's target: its API key query parameter reads back as "***" only.
  const std::string redacted = extractor.redact_target(request.target);
  const ListHeaders none;
  const RequestView logged{request.method, redacted, request.host, request.peer_address, none};
  std::string from_log;
  if (extractor.extract(IdentifierKey{IdentifierKind::api_key, ""}, logged, from_log)) {
    FUZZ_ASSERT(from_log == phlow::limiter::sha256_hex("***"));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<Identifiers> settings = make_settings();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines;
  while (!input.empty() && lines.size() < 64) {
    const auto nl = input.find('\n');
    lines.push_back(input.substr(0, nl));
    input.remove_prefix(nl == std::string_view::npos ? input.size() : nl + 1);
  }
  while (lines.size() < 2) lines.emplace_back();
  ListHeaders headers;
  for (std::size_t i = 2; i < lines.size(); ++i) {
    const auto colon = lines[i].find(':');
    std::string_view value = colon == std::string_view::npos ? std::string_view{} : lines[i].substr(colon + 1);
    while (value.starts_with(' ')) value.remove_prefix(1);
    headers.fields.emplace_back(lines[i].substr(0, colon), value);
  }
  const RequestView request{"GET", lines[1], "example.com", lines[0], headers};
  for (const Identifiers& s : settings) run(s, request, headers);
  return 0;
}
