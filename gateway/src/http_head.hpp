#pragma once
// The heads the gateway sends, written as bytes into a buffer the session reuses: the
// request head for the upstream and the response head for the client. Writing them
// directly (instead of editing the parsed fields and running Beast's serializer) costs
// no allocation once the buffers have grown, and gives one place that decides which
// fields cross the proxy (RFC 9110 7.6.1: hop-by-hop fields stop here).

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

namespace phlow::gateway::detail {

// One parsed message head (request line or status line, fields, then trailers if any),
// kept flat: the strings in one buffer and one small record per field, in arrival
// order, both reused by the next message of the connection (up to a few KiB: a larger
// head's storage is given back). Beast's basic_fields keeps a sorted set of separately
// allocated fields instead: a node and an insert per field (bench/README.md, fifth
// session). Lookups by name are linear, which is what a head of a few fields wants.
// Filled by FlatParser (flat_parser.hpp).
class FlatHead {
 public:
  class Field {
   public:
    boost::beast::http::field name() const { return code_; }
    std::string_view name_string() const { return name_; }
    std::string_view value() const { return value_; }

   private:
    friend class FlatHead;
    Field(boost::beast::http::field code, std::string_view name, std::string_view value, bool trailer)
        : code_(code), trailer_(trailer), name_(name), value_(value) {}
    boost::beast::http::field code_;
    bool trailer_;
    std::string_view name_;
    std::string_view value_;
  };
  using const_iterator = std::vector<Field>::const_iterator;

  FlatHead() = default;
  FlatHead(const FlatHead&) = delete;  // its fields point into itself
  FlatHead& operator=(const FlatHead&) = delete;

  // The parser's side. clear() starts a message; fields added after end_head() are
  // trailers, whose strings are kept apart: the head's never move once it is complete.
  void clear();
  void set_request(boost::beast::http::verb method, std::string_view method_string,
                   std::string_view target, int version);
  void set_response(int status, std::string_view reason, int version);
  void add(boost::beast::http::field code, std::string_view name, std::string_view value) {
    reserve(name.size() + value.size());  // the name's copy must not move for the value's
    const std::string_view stored_name = store(name);
    fields_.push_back(Field(code, stored_name, store(value), in_trailers_));
  }
  void end_head() { in_trailers_ = true; }

  boost::beast::http::verb method() const { return method_; }
  std::string_view method_string() const { return method_string_; }
  std::string_view target() const { return target_; }
  int version() const { return version_; }
  unsigned result_int() const { return status_; }
  boost::beast::http::status result() const { return boost::beast::http::int_to_status(status_); }
  std::string_view reason() const { return reason_; }

  const_iterator begin() const { return fields_.begin(); }
  const_iterator end() const { return fields_.end(); }
  // The first field named `code` (a known name), or "".
  std::string_view operator[](boost::beast::http::field code) const;
  // Calls `fn(value)` for each field named `name` (case-insensitive), in order.
  template <class Fn>
  void for_each_named(std::string_view name, Fn&& fn) const {
    for (const Field& f : fields_) {
      if (same_name(f.name_string(), name)) fn(f.value());
    }
  }

  static bool same_name(std::string_view a, std::string_view b);
  // Bytes of storage held, whatever the message in it.
  std::size_t capacity_bytes() const {
    return text_[0].capacity() + text_[1].capacity() + fields_.capacity() * sizeof(Field);
  }

 private:
  // A copy of `s` in the text of the head (or of the trailers), which does not move
  // while the message is parsed, except when it grows (then grow() moves the views).
  std::string_view store(std::string_view s) {
    reserve(s.size());
    std::string& text = text_[in_trailers_ ? 1 : 0];
    const std::size_t at = text.size();
    text.append(s);
    return std::string_view(text).substr(at, s.size());
  }
  void reserve(std::size_t more) {
    std::string& text = text_[in_trailers_ ? 1 : 0];
    if (text.capacity() - text.size() < more) grow(text, more);
  }
  void grow(std::string& text, std::size_t more);

  // What clear() keeps of the storage for the next message: a connection that once
  // sent a large head does not hold its size for the rest of its life.
  static constexpr std::size_t kKeepText = 4096;
  static constexpr std::size_t kKeepFields = 64;

  std::array<std::string, 2> text_;  // the head's strings, the trailers'
  std::vector<Field> fields_;
  std::string_view method_string_;
  std::string_view target_;
  std::string_view reason_;
  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
  unsigned status_ = 0;
  int version_ = 11;
  bool in_trailers_ = false;
};

// How a message body is framed on the way out.
struct Framing {
  bool chunked = false;                 // Transfer-Encoding: chunked
  std::optional<std::uint64_t> length;  // else Content-Length, when known
};

// The tokens of a message's Connection fields, found in one pass over its fields (not
// one lookup per field): the field names they make hop-by-hop.
class ConnectionTokens {
 public:
  explicit ConnectionTokens(const FlatHead& fields);
  bool names(std::string_view name) const;  // case-insensitive

 private:
  std::array<std::string_view, 8> tokens_{};
  std::size_t count_ = 0;
  const FlatHead* overflow_ = nullptr;  // more tokens than tokens_ holds: scan these fields
};

// Whether a field never crosses a proxy: Connection and every field it names,
// Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding (re-framed), Upgrade.
bool is_hop_by_hop(const ConnectionTokens& connection, const FlatHead::Field& field);

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
                                  const FlatHead& req,
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
                                 const FlatHead& res,
                                 const ClientResponseHead& how);

// Appends the head of one of the gateway's own responses, whose body is
// `content_length` bytes of JSON.
void append_own_response_head(std::string& out, unsigned status, std::string_view extra_lines,
                              std::size_t content_length, bool keep_alive, bool client_http10);

// Whether `req` asks to become a WebSocket (RFC 6455 4.1): GET, "Upgrade: websocket",
// "upgrade" among the Connection tokens.
bool is_websocket_upgrade(const FlatHead& req);

// "Name: value\r\n"
void append_field(std::string& out, std::string_view name, std::string_view value);

}  // namespace phlow::gateway::detail
