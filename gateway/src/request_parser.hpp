#pragma once
// How the session parses a downstream request: the parser type, its limits from the
// config, and the headers and host the router and identifiers see. Here, not in
// session.cpp, so that the request-path fuzzer (fuzz/request_path_fuzzer.cpp) parses
// exactly as the gateway does.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <boost/beast/core/string.hpp>

#include "config/config.hpp"
#include "gateway/request_view.hpp"
#include "flat_parser.hpp"
#include "http_head.hpp"

namespace phlow::gateway {

using RequestParser = detail::FlatParser<true>;

// Applies the head and body size limits of `http` (past them: 431 and 413) and
// returns the head limit.
inline std::uint32_t configure_request_parser(RequestParser& parser, const config::HttpSettings& http) {
  const auto header_limit =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(http.max_header_bytes, UINT32_MAX));
  parser.header_limit(header_limit);
  parser.body_limit(http.max_body_bytes);
  return header_limit;
}

// Whether the request's body length is unambiguous (RFC 9112 6.1, 6.3): at most one
// Content-Length holding one number, and a Transfer-Encoding only on HTTP/1.1 and only
// "chunked". Beast rejects Content-Length with Transfer-Encoding and differing lengths
// itself, but accepts repeated equal lengths, other codings and a "chunked" that is not
// the final coding (then reading no body), which an upstream may frame differently.
inline bool has_unambiguous_framing(const detail::FlatHead& req) {
  namespace http = boost::beast::http;
  std::size_t lengths = 0;
  std::size_t codings = 0;
  for (const auto field : req) {  // one pass: a lookup per name costs more on short heads
    if (field.name() == http::field::content_length) {
      if (++lengths > 1 || field.value().find(',') != std::string_view::npos) return false;
    } else if (field.name() == http::field::transfer_encoding) {
      if (++codings > 1 || req.version() != 11 || !boost::beast::iequals(field.value(), "chunked")) {
        return false;
      }
    }
  }
  return true;
}

// The fields of the request being handled, for the identifier extractor.
class FieldsSource final : public HeaderSource {
 public:
  void reset(const detail::FlatHead& fields) { fields_ = &fields; }
  void for_each(std::string_view name,
                const std::function<void(std::string_view)>& fn) const override {
    fields_->for_each_named(name, fn);
  }

 private:
  const detail::FlatHead* fields_ = nullptr;
};

// The Host header without its port, lowercase, into `out` (its capacity is reused).
inline void lowercase_host(std::string_view host, std::string& out) {
  if (host.starts_with('[')) host = host.substr(0, host.find(']') + 1);
  else host = host.substr(0, host.find(':'));
  out.assign(host);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

}  // namespace phlow::gateway
