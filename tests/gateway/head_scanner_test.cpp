// The raw request-head checks that run before Beast's parser, fed as the bytes arrive.
#include <catch2/catch.hpp>

#include <string>

#include "gateway/head_scanner.hpp"

using phlow::gateway::HeadScanner;
using Verdict = HeadScanner::Verdict;

namespace {

Verdict scan_all(std::string_view bytes, std::size_t max_fields = 100) {
  HeadScanner scanner(max_fields);
  return scanner.scan(bytes);
}

// Feeds `bytes` one byte more at a time, as a trickling client would.
Verdict scan_trickled(std::string_view bytes, std::size_t max_fields = 100) {
  HeadScanner scanner(max_fields);
  Verdict verdict = Verdict::need_more;
  for (std::size_t n = 1; n <= bytes.size() && verdict == Verdict::need_more; ++n) {
    verdict = scanner.scan(bytes.substr(0, n));
  }
  return verdict;
}

}  // namespace

TEST_CASE("head scanner: a well-formed head is complete with its length and request line") {
  const std::string head = "GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n";
  HeadScanner scanner(100);
  CHECK(scanner.scan(head + "GET /next") == Verdict::complete);
  CHECK(scanner.head_bytes() == head.size());
  CHECK(scanner.request_line_bytes() == 17);
  CHECK(scan_trickled(head) == Verdict::complete);
  CHECK(scan_all("GET /x HTTP/1.1\r\nHost: a\r\n") == Verdict::need_more);
  CHECK(scan_all("GET /x HTTP/1.1\r") == Verdict::need_more);
}

TEST_CASE("head scanner: bare LF or CR and folded lines are malformed") {
  for (const std::string bad : {"GET / HTTP/1.1\nHost: a\n\n", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
                                "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\n",
                                "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",
                                "GET / HTTP/1.1\r\n Host: a\r\n\r\n", "\r\nGET / HTTP/1.1\r\n\r\n",
                                " GET / HTTP/1.1\r\n\r\n", "\nGET / HTTP/1.1\r\n\r\n"}) {
    INFO(bad);
    CHECK(scan_all(bad) == Verdict::malformed);
    CHECK(scan_trickled(bad) == Verdict::malformed);
  }
  // Known as soon as the byte after a CR is there, before any line ends.
  CHECK(scan_all("GET / HTTP/1.1\rX") == Verdict::malformed);
}

TEST_CASE("head scanner: counts header fields against the limit") {
  std::string head = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 3; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
  CHECK(scan_all(head + "\r\n", 3) == Verdict::complete);
  CHECK(scan_all(head + "X-3: v\r\n\r\n", 3) == Verdict::too_many_fields);
  CHECK(scan_trickled(head + "X-3: v\r\n", 3) == Verdict::too_many_fields);
}

TEST_CASE("head scanner: a request line without its end has no length yet") {
  HeadScanner scanner(100);
  CHECK(scanner.scan("GET /" + std::string(5000, 'a')) == Verdict::need_more);
  CHECK(scanner.request_line_bytes() == 0);
}
