#include "http_head.hpp"

#include <algorithm>
#include <cstdint>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/status.hpp>

#include "gateway/append_number.hpp"

namespace phlow::gateway::detail {

namespace beast = boost::beast;
namespace http = beast::http;

namespace {

void append_framing(std::string& out, const Framing& framing) {
  if (framing.chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  } else if (framing.length) {
    out += "Content-Length: ";
    append_number(out, *framing.length);
    out += "\r\n";
  }
}

void append_connection(std::string& out, bool keep_alive, bool client_http10) {
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (client_http10) {
    out += "Connection: keep-alive\r\n";
  }
}

constexpr std::string_view kForwardedFor = "X-Forwarded-For";

bool names_match(std::string_view a, std::string_view b) { return FlatHead::same_name(a, b); }

}  // namespace

void FlatHead::clear() {
  for (std::string& text : text_) {
    if (text.capacity() > kKeepText) {
      std::string().swap(text);
    } else {
      text.clear();
    }
  }
  if (fields_.capacity() > kKeepFields) {
    std::vector<Field>().swap(fields_);
  } else {
    fields_.clear();
  }
  method_string_ = target_ = reason_ = {};
  method_ = http::verb::unknown;
  status_ = 0;
  version_ = 11;
  in_trailers_ = false;
}

// Makes room for `more` bytes in `text`, which moves it: the views into it move along.
void FlatHead::grow(std::string& text, std::size_t more) {
  const auto old_base = reinterpret_cast<std::uintptr_t>(text.data());
  text.reserve(std::max(text.size() + more, 2 * text.capacity()));
  const char* base = text.data();
  const auto moved = [&](std::string_view& view) {
    if (view.data() == nullptr) return;
    view = std::string_view(base + (reinterpret_cast<std::uintptr_t>(view.data()) - old_base), view.size());
  };
  const bool trailers = &text == &text_[1];
  if (!trailers) {
    moved(method_string_);
    moved(target_);
    moved(reason_);
  }
  for (Field& f : fields_) {
    if (f.trailer_ != trailers) continue;
    moved(f.name_);
    moved(f.value_);
  }
}

void FlatHead::set_request(http::verb method, std::string_view method_string, std::string_view target,
                           int version) {
  method_ = method;
  version_ = version;
  reserve(method_string.size() + target.size());
  method_string_ = store(method_string);
  target_ = store(target);
}

void FlatHead::set_response(int status, std::string_view reason, int version) {
  status_ = static_cast<unsigned>(status);
  version_ = version;
  reason_ = store(reason);
}

std::string_view FlatHead::operator[](http::field code) const {
  for (const Field& f : fields_) {
    if (f.name() == code) return f.value();
  }
  return {};
}

bool FlatHead::same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && beast::iequals(a, b);
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out += ": ";
  out.append(value);
  out += "\r\n";
}

ConnectionTokens::ConnectionTokens(const FlatHead& fields) {
  for (const auto field : fields) {
    if (field.name() != http::field::connection) continue;
    for (auto token : http::token_list(field.value())) {
      if (count_ == tokens_.size()) {
        overflow_ = &fields;  // more than fit: names() scans the fields again
        return;
      }
      tokens_[count_++] = token;
    }
  }
}

bool ConnectionTokens::names(std::string_view name) const {
  if (overflow_ != nullptr) {
    for (const auto field : *overflow_) {
      if (field.name() != http::field::connection) continue;
      for (auto token : http::token_list(field.value())) {
        if (names_match(token, name)) return true;
      }
    }
    return false;
  }
  return std::any_of(tokens_.begin(), tokens_.begin() + static_cast<std::ptrdiff_t>(count_),
                     [&](std::string_view token) { return names_match(token, name); });
}

bool is_hop_by_hop(const ConnectionTokens& connection, const FlatHead::Field& field) {
  switch (field.name()) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::proxy_authenticate:
    case http::field::proxy_authorization:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
      return true;
    default:
      break;
  }
  const std::string_view name = field.name_string();
  if (name.size() > 6 && beast::iequals(name.substr(0, 6), "proxy-")) return true;
  return connection.names(name);  // fields that Connection names are hop-by-hop too
}

void append_upstream_request_head(std::string& out, const FlatHead& req,
                                  const UpstreamRequestHead& how) {
  out.append(req.method_string());
  out += ' ';
  out.append(how.base_path);
  out.append(req.target());
  out += " HTTP/1.1\r\n";
  bool forwarded = false;  // an X-Forwarded-For arrived
  const ConnectionTokens connection(req);
  for (const auto field : req) {
    switch (field.name()) {
      case http::field::content_length:  // re-framed below
      case http::field::expect:
        continue;
      case http::field::unknown: {  // Beast has no codes for the X-Forwarded-* fields
        const std::string_view name = field.name_string();
        if (names_match(name, kForwardedFor)) {
          forwarded = true;
          continue;
        }
        if (names_match(name, "X-Forwarded-Proto")) continue;
        break;
      }
      default:
        break;
    }
    if (is_hop_by_hop(connection, field)) continue;
    append_field(out, field.name_string(), field.value());
  }
  out += "X-Forwarded-For: ";
  if (forwarded) {
    req.for_each_named(kForwardedFor, [&](std::string_view value) {
      out.append(value);
      out += ", ";
    });
  }
  out.append(how.peer_ip);
  out += how.client_tls ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n";
  if (!how.request_id.empty()) append_field(out, "X-Request-Id", how.request_id);
  append_framing(out, how.framing);
  if (!how.upgrade.empty()) {
    out += "Connection: Upgrade\r\n";
    append_field(out, "Upgrade", how.upgrade);
  }
  out += "\r\n";
}

bool is_websocket_upgrade(const FlatHead& req) {
  if (req.method() != http::verb::get) return false;
  bool upgrade_seen = false;     // the first Upgrade field decides, as req[upgrade] would
  bool websocket = false;
  bool connection_upgrade = false;
  for (const auto field : req) {
    if (field.name() == http::field::upgrade && !upgrade_seen) {
      upgrade_seen = true;
      websocket = beast::iequals(field.value(), "websocket");
    } else if (field.name() == http::field::connection && !connection_upgrade) {
      connection_upgrade = http::token_list(field.value()).exists("upgrade");
    }
  }
  return websocket && connection_upgrade;
}

void append_client_response_head(std::string& out, const FlatHead& res,
                                 const ClientResponseHead& how) {
  out += "HTTP/1.1 ";
  append_number(out, res.result_int());
  out += ' ';
  const std::string_view reason = res.reason();
  out.append(reason.empty() ? std::string_view(http::obsolete_reason(res.result())) : reason);
  out += "\r\n";
  const ConnectionTokens connection(res);
  for (const auto field : res) {
    if (field.name() == http::field::content_length) continue;  // re-framed below
    if (is_hop_by_hop(connection, field)) continue;
    const std::string_view name = field.name_string();
    if (std::any_of(how.extra_names.begin(), how.extra_names.end(),
                    [&](std::string_view extra) { return names_match(extra, name); })) {
      continue;  // the gateway's value replaces the upstream's
    }
    append_field(out, name, field.value());
  }
  out.append(how.extra_lines);
  if (how.upgrade) {
    out += "Connection: Upgrade\r\n";
    append_field(out, "Upgrade", res[http::field::upgrade]);
  } else {
    append_framing(out, how.framing);
    append_connection(out, how.keep_alive, how.client_http10);
  }
  out += "\r\n";
}

void append_own_response_head(std::string& out, unsigned status, std::string_view extra_lines,
                              std::size_t content_length, bool keep_alive, bool client_http10) {
  out += "HTTP/1.1 ";
  append_number(out, status);
  out += ' ';
  out.append(http::obsolete_reason(http::int_to_status(status)));
  out += "\r\nContent-Type: application/json\r\n";
  out.append(extra_lines);
  append_framing(out, Framing{false, content_length});
  append_connection(out, keep_alive, client_http10);
  out += "\r\n";
}

}  // namespace phlow::gateway::detail
