// FlatParser and FlatHead (gateway/src): Beast's HTTP/1 grammar writing the head flat
// into storage the session reuses. The proxy's tests cover them end to end; these pin
// what the flat storage itself must keep: every field in arrival order with its exact
// name and value, views that stay valid while the storage grows and while trailers
// arrive, and body bytes delivered as Beast's buffer_body delivers them.
#include <boost/beast/http/error.hpp>
#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flat_parser.hpp"

namespace http = boost::beast::http;
using boost::system::error_code;
using phlow::gateway::detail::FlatHead;
using phlow::gateway::detail::FlatParser;

namespace {

// Puts all of `bytes` into `parser` (its body into `sink`); returns the last error.
template <bool isRequest>
error_code put_all(FlatParser<isRequest>& parser, std::string_view bytes, std::string& sink) {
  std::array<char, 7> piece;  // small: the body arrives in several pieces
  error_code ec;
  while (!parser.is_done()) {
    parser.body().data = piece.data();
    parser.body().size = piece.size();
    const std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    bytes.remove_prefix(used);
    sink.append(piece.data(), piece.size() - parser.body().size);
    if (ec == http::error::need_buffer) {
      ec = {};
      continue;
    }
    if (ec) return ec;
  }
  return ec;
}

std::vector<std::pair<std::string, std::string>> fields_of(const FlatHead& head) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto field : head) out.emplace_back(field.name_string(), field.value());
  return out;
}

}  // namespace

TEST_CASE("a request head keeps every field in order through the storage's growth") {
  std::string bytes = "POST /v1/chat?x=1 HTTP/1.1\r\nHost: api.example.com\r\n";
  std::vector<std::pair<std::string, std::string>> expected{{"Host", "api.example.com"}};
  // Forty fields with long values: the text outgrows its first capacity several times.
  for (int i = 0; i < 40; ++i) {
    std::string name = "X-Field-" + std::to_string(i);
    std::string value(static_cast<std::size_t>(20 + i * 7), static_cast<char>('a' + i % 26));
    bytes += name + ": " + value + "\r\n";
    expected.emplace_back(std::move(name), std::move(value));
  }
  bytes += "x-field-3: again\r\nContent-Length: 11\r\n\r\nhello world";
  expected.emplace_back("x-field-3", "again");
  expected.emplace_back("Content-Length", "11");

  FlatHead head;
  std::string body;
  {
    FlatParser<true> parser(head);
    REQUIRE_FALSE(put_all(parser, bytes, body));
  }
  CHECK(body == "hello world");
  CHECK(head.method() == http::verb::post);
  CHECK(head.method_string() == "POST");
  CHECK(head.target() == "/v1/chat?x=1");
  CHECK(head.version() == 11);
  CHECK(fields_of(head) == expected);
  CHECK(head[http::field::host] == "api.example.com");
  CHECK(head[http::field::content_length] == "11");
  CHECK(head[http::field::authorization].empty());
  std::vector<std::string> named;
  head.for_each_named("X-FIELD-3", [&](std::string_view v) { named.emplace_back(v); });
  CHECK(named == std::vector<std::string>{expected[4].second, "again"});

  // The next message reuses the storage: nothing of the first one is left.
  FlatParser<true> next(head);
  REQUIRE_FALSE(put_all(next, "GET / HTTP/1.0\r\nA: 1\r\n\r\n", body));
  CHECK(head.method() == http::verb::get);
  CHECK(head.target() == "/");
  CHECK(head.version() == 10);
  CHECK(fields_of(head) == std::vector<std::pair<std::string, std::string>>{{"A", "1"}});
}

TEST_CASE("a response's trailers leave the views of its head where they were") {
  FlatHead head;
  FlatParser<false> parser(head);
  std::string body;
  const std::string_view start =
      "HTTP/1.1 201 Made Here\r\nTransfer-Encoding: chunked\r\nX-Cost: 3\r\n\r\n";
  error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(start.data(), start.size()), ec);
  REQUIRE_FALSE(ec);
  REQUIRE(used == start.size());
  REQUIRE(parser.is_header_done());
  // Views taken once the head is complete, as the session takes them.
  const std::string_view reason = head.reason();
  const std::string_view cost = head[http::field::unknown];
  CHECK(head.result_int() == 201);
  CHECK(head.result() == http::status::created);
  CHECK(reason == "Made Here");
  CHECK(cost == "3");

  std::string trailers;
  for (int i = 0; i < 30; ++i) trailers += "X-Trailer-" + std::to_string(i) + ": " + std::string(50, 't') + "\r\n";
  const std::string rest = "5\r\nabcde\r\n0\r\n" + trailers + "\r\n";
  REQUIRE_FALSE(put_all(parser, rest, body));
  CHECK(body == "abcde");
  CHECK(reason == "Made Here");  // still valid: the head's text did not move
  CHECK(cost == "3");
  const auto fields = fields_of(head);
  REQUIRE(fields.size() == 32);
  CHECK(fields[1] == std::pair<std::string, std::string>{"X-Cost", "3"});
  CHECK(fields[31] == std::pair<std::string, std::string>{"X-Trailer-29", std::string(50, 't')});
}

TEST_CASE("without a body buffer the parser stops with need_buffer, as buffer_body does") {
  FlatHead head;
  FlatParser<false> parser(head);
  const std::string_view bytes = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
  error_code ec;
  std::size_t used = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
  REQUIRE_FALSE(ec);
  REQUIRE(parser.is_header_done());
  used += parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
  CHECK(ec == http::error::need_buffer);
  CHECK(used < bytes.size());
  CHECK_FALSE(parser.is_done());
}

TEST_CASE("a large head's storage is not kept for the next message") {
  FlatHead head;
  std::string body;
  const std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n";
  {
    FlatParser<true> parser(head);
    parser.header_limit(64 * 1024);
    REQUIRE_FALSE(put_all(parser, big, body));
  }
  CHECK(head[http::field::unknown].size() == 20000);
  CHECK(head.capacity_bytes() > 20000);
  FlatParser<true> next(head);  // clears it
  CHECK(head.capacity_bytes() < 8192);
  REQUIRE_FALSE(put_all(next, "GET /small HTTP/1.1\r\nHost: a\r\n\r\n", body));
  CHECK(head.target() == "/small");
  CHECK(head[http::field::host] == "a");
  // A small head's storage is kept: the next message allocates nothing.
  const std::size_t kept = head.capacity_bytes();
  FlatParser<true> third(head);
  CHECK(head.capacity_bytes() == kept);
}
