#pragma once
// The heads the gateway sends, written as bytes into a buffer the session reuses: the
// request head for the upstream and the response head for the client. Writing them
// directly (instead of editing the parsed fields and running Beast's serializer) costs
// no allocation once the buffers have grown, and gives one place that decides which
// fields cross the proxy (RFC 9110 7.6.1: hop-by-hop fields stop here).

#include <array>
#include <cstdint>
#include <memory_resource>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

namespace phlow::gateway::detail {

// The fields of the messages the proxy parses: allocated from the session's arena, which
// is reset per request (no malloc per field).
using Fields = boost::beast::http::basic_fields<std::pmr::polymorphic_allocator<char>>;

// How a message body is framed on the way out.
struct Framing {
  bool chunked = false;                 // Transfer-Encoding: chunked
  std::optional<std::uint64_t> length;  // else Content-Length, when known
};

// The tokens of a message's Connection fields, found in one pass over its fields (not
// one lookup per field): the field names they make hop-by-hop.
class ConnectionTokens {
 public:
  explicit ConnectionTokens(const Fields& fields);
  bool names(std::string_view name) const;  // case-insensitive

 private:
  std::array<std::string_view, 8> tokens_{};
  std::size_t count_ = 0;
  const Fields* overflow_ = nullptr;  // more tokens than tokens_ holds: scan these fields
};

// Whether a field never crosses a proxy: Connection and every field it names,
// Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding (re-framed), Upgrade.
bool is_hop_by_hop(const ConnectionTokens& connection, const Fields::value_type& field);

struct UpstreamRequestHead {
  std::string_view base_path;   // prefixed to the target
  std::string_view peer_ip;     // appended to X-Forwarded-For
  std::string_view request_id;  // written as X-Request-Id unless empty (the client sent one)
  Framing framing;
  bool client_tls = false;  // X-Forwarded-Proto: https (else http)
  // A WebSocket upgrade: "Upgrade: <this>" and "Connection: Upgrade" go upstream (they
  // are hop-by-hop, so the gateway asks for the upgrade itself). Empty: none.
  std::string_view upgrade;
};

// Appends the request head to send upstream for `req`: its fields minus the hop-by-hop
// ones and Expect (the gateway answers 100-continue itself), X-Forwarded-For with the
// peer appended (all incoming X-Forwarded-For fields joined), X-Forwarded-Proto (http or
// https, as the client came; the client's own is dropped),
// HTTP/1.1 with keep-alive.
void append_upstream_request_head(std::string& out,
                                  const boost::beast::http::request_header<Fields>& req,
                                  const UpstreamRequestHead& how);

struct ClientResponseHead {
  // Pre-rendered "Name: value\r\n" lines that replace the upstream's fields of the same
  // names (the rate-limit headers), and those names.
  std::string_view extra_lines;
  std::span<const std::string_view> extra_names;
  Framing framing;
  bool keep_alive = true;
  bool client_http10 = false;  // an HTTP/1.0 client needs keep-alive said explicitly
  // A 101 to a WebSocket upgrade: the upstream's Upgrade and "Connection: Upgrade" are
  // passed on, and no framing or keep-alive is said (the connection becomes a tunnel).
  bool upgrade = false;
};

// Appends the response head to send to the client for the upstream's `res`.
void append_client_response_head(std::string& out,
                                 const boost::beast::http::response_header<Fields>& res,
                                 const ClientResponseHead& how);

// Appends the head of one of the gateway's own responses, whose body is
// `content_length` bytes of JSON.
void append_own_response_head(std::string& out, unsigned status, std::string_view extra_lines,
                              std::size_t content_length, bool keep_alive, bool client_http10);

// Whether `req` asks to become a WebSocket (RFC 6455 4.1): GET, "Upgrade: websocket",
// "upgrade" among the Connection tokens.
bool is_websocket_upgrade(const boost::beast::http::request_header<Fields>& req);

// "Name: value\r\n"
void append_field(std::string& out, std::string_view name, std::string_view value);

}  // namespace phlow::gateway::detail
