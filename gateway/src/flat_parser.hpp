#pragma once
// Beast's HTTP/1 parser (basic_parser: the grammar, the limits, the framing) writing
// its head into a FlatHead the session reuses, and its body into a caller's buffer as
// Beast's buffer_body does: the request and response parser of the proxy. One per
// message, as Beast's parsers are; the FlatHead outlives it.

#include <algorithm>
#include <cstring>

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>

#include "http_head.hpp"

namespace phlow::gateway::detail {

template <bool isRequest>
class FlatParser final : public boost::beast::http::basic_parser<isRequest> {
 public:
  using Body = boost::beast::http::buffer_body::value_type;

  // Starts a message in `head` (which it clears).
  explicit FlatParser(FlatHead& head) : head_(head) { head_.clear(); }

  const FlatHead& get() const { return head_; }
  // Where the next body bytes go: `data` advances and `size` shrinks as they land; a
  // null `data` makes the parser stop with need_buffer.
  Body& body() { return body_; }

 private:
  using error_code = boost::system::error_code;
  using string_view = boost::beast::string_view;

  void on_request_impl(boost::beast::http::verb method, string_view method_string, string_view target,
                       int version, error_code&) override {
    head_.set_request(method, method_string, target, version);
  }
  void on_response_impl(int status, string_view reason, int version, error_code&) override {
    head_.set_response(status, reason, version);
  }
  void on_field_impl(boost::beast::http::field code, string_view name, string_view value,
                     error_code&) override {
    head_.add(code, name, value);
  }
  void on_header_impl(error_code&) override { head_.end_head(); }
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(string_view bytes, error_code& ec) override { return take(bytes, ec); }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view bytes, error_code& ec) override {
    return take(bytes, ec);
  }
  void on_finish_impl(error_code&) override {}

  // Copies what fits of `bytes` into body_; need_buffer when not all of it did.
  std::size_t take(string_view bytes, error_code& ec) {
    if (body_.data == nullptr) {
      ec = boost::beast::http::error::need_buffer;
      return 0;
    }
    const std::size_t n = std::min(bytes.size(), body_.size);
    if (n > 0) std::memcpy(body_.data, bytes.data(), n);
    body_.data = static_cast<char*>(body_.data) + n;
    body_.size -= n;
    if (n < bytes.size()) ec = boost::beast::http::error::need_buffer;
    return n;
  }

  FlatHead& head_;
  Body body_;
};

}  // namespace phlow::gateway::detail
