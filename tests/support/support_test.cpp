// Proves the end-to-end harness (Process, HttpConnection) and phlow-demo-upstream,
// endpoint by endpoint, before the gateway's end-to-end tests rely on them.

#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "support/demo_upstream.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"

using namespace phlow::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string pattern_bytes(std::size_t n) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 7919 + i / 251) % 256);
  return out;
}

}  // namespace

TEST_CASE("Process captures output and exit codes", "[support][process]") {
  Process p("sh", {"-c", "echo out-$X; echo err >&2; exit 3"}, {{"X", "42"}});
  CHECK(p.wait_for_output("out-42", 5s));
  REQUIRE(p.wait_exit(5s) == 3);
  CHECK(p.read_stdout() == "out-42\n");
  CHECK(p.read_stderr() == "err\n");
  const auto match = p.wait_for_output(std::regex("out-(\\d+)"), 1s);
  REQUIRE(match);
  CHECK((*match)[1] == "42");
  CHECK_FALSE(p.wait_for_output("never printed", 1s));  // exited: returns at once
}

TEST_CASE("Process reports signals and times out waiting", "[support][process]") {
  Process p("sleep", {"30"});
  CHECK(p.running());
  CHECK_FALSE(p.wait_exit(50ms));
  p.signal(SIGTERM);
  CHECK(p.wait_exit(5s) == 128 + SIGTERM);
  CHECK_FALSE(p.running());
}

TEST_CASE("temp_dir and write_file", "[support][process]") {
  const std::string dir = temp_dir();
  const std::string path = write_file(dir, "a.yaml", "listen: x\n");
  Process cat("cat", {path});
  REQUIRE(cat.wait_exit(5s) == 0);
  CHECK(cat.read_stdout() == "listen: x\n");
}

TEST_CASE("Demo upstream answers unknown paths with a description", "[support][upstream]") {
  DemoUpstream upstream;
  const auto res = http_request(upstream.port(), "GET", "/anything?x=1");
  CHECK(res.status == 200);
  CHECK(res.header("x-upstream") == "phlow-demo-upstream");
  CHECK(res.header("Content-Type") == "application/json");
  const auto body = json::parse(res.body);
  CHECK(body["service"] == "phlow-demo-upstream");
  CHECK(body["path"] == "/anything?x=1");
  CHECK(body["method"] == "GET");
  CHECK(upstream.url() == "http://127.0.0.1:" + std::to_string(upstream.port()));
}

TEST_CASE("Demo upstream echoes a 5 MB chunked body in chunks", "[support][upstream]") {
  DemoUpstream upstream;
  const std::string body = pattern_bytes(5 * 1024 * 1024);
  const auto res = http_request(
      upstream.port(), "POST", "/echo",
      {{"Transfer-Encoding", "chunked"}, {"Content-Type", "application/x-test"}}, body);
  CHECK(res.status == 200);
  CHECK(res.header("Transfer-Encoding") == "chunked");
  CHECK(res.header("Content-Type") == "application/x-test");
  CHECK(res.body.size() == body.size());
  CHECK(res.body == body);
}

TEST_CASE("Demo upstream echoes a sized body with Content-Length", "[support][upstream]") {
  DemoUpstream upstream;
  const std::string body = pattern_bytes(300'000);
  const auto res = http_request(upstream.port(), "PUT", "/echo", {}, body);
  CHECK(res.status == 200);
  CHECK(res.header("Content-Length") == "300000");
  CHECK_FALSE(res.has_header("Transfer-Encoding"));
  CHECK(res.body == body);
}

TEST_CASE("Demo upstream answers HEAD without a body", "[support][upstream]") {
  DemoUpstream upstream;
  HttpConnection conn(upstream.port());
  const auto head = conn.request("HEAD", "/big?bytes=5000");
  CHECK(head.status == 200);
  CHECK(head.header("Content-Length") == "5000");
  CHECK(head.body.empty());
  // The connection is still in sync: the next response is read whole.
  const auto get = conn.request("GET", "/big?bytes=5000");
  CHECK(get.body.size() == 5000);
  CHECK(get.body.substr(0, 3) == "abc");
}

TEST_CASE("Demo upstream reports the request headers", "[support][upstream]") {
  DemoUpstream upstream;
  const auto res = http_request(upstream.port(), "GET", "/headers",
                                {{"X-Request-Id", "abc-123"},
                                 {"X-Forwarded-For", "10.0.0.1"},
                                 {"x-forwarded-for", "10.0.0.2"},
                                 {"Connection", "keep-alive"}});
  REQUIRE(res.status == 200);
  const auto headers = json::parse(res.body);
  CHECK(headers["x-request-id"] == "abc-123");
  CHECK(headers["x-forwarded-for"] == "10.0.0.1, 10.0.0.2");
  CHECK(headers["connection"] == "keep-alive");
  CHECK(headers["host"] == "127.0.0.1:" + std::to_string(upstream.port()));
  CHECK(headers["_peer"] == "127.0.0.1");
}

TEST_CASE("Demo upstream counts requests and connections over keep-alive",
          "[support][upstream]") {
  DemoUpstream upstream;
  HttpConnection conn(upstream.port());
  for (int i = 0; i < 3; ++i) CHECK(conn.request("GET", "/").status == 200);
  const auto count = json::parse(conn.request("GET", "/count").body);
  CHECK(count["requests"] == 3);
  CHECK(count["connections"] == 1);
  const auto again = json::parse(http_request(upstream.port(), "GET", "/count").body);
  CHECK(again["requests"] == 4);
  CHECK(again["connections"] == 2);
}

TEST_CASE("Demo upstream sends any status", "[support][upstream]") {
  DemoUpstream upstream;
  const auto teapot = http_request(upstream.port(), "GET", "/status/418");
  CHECK(teapot.status == 418);
  CHECK(json::parse(teapot.body)["status"] == 418);
  CHECK(http_request(upstream.port(), "GET", "/status/503").status == 503);
  const auto empty = http_request(upstream.port(), "GET", "/status/204");
  CHECK(empty.status == 204);
  CHECK(empty.body.empty());
  CHECK(http_request(upstream.port(), "GET", "/status/abc").status == 400);
}

TEST_CASE("Demo upstream /slow waits without blocking others", "[support][upstream]") {
  DemoUpstream upstream;
  HttpConnection slow(upstream.port());
  const auto start = std::chrono::steady_clock::now();
  slow.send_raw("GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
  // One thread: a blocking sleep would delay this request too.
  const auto quick = http_request(upstream.port(), "GET", "/");
  const auto quick_done = std::chrono::steady_clock::now() - start;
  const auto res = slow.read_response();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(quick.status == 200);
  CHECK(res.status == 200);
  CHECK(elapsed >= 300ms);
  CHECK(quick_done < 300ms);
}

TEST_CASE("Demo upstream drips a sized body", "[support][upstream]") {
  DemoUpstream upstream;
  const auto start = std::chrono::steady_clock::now();
  const auto res = http_request(upstream.port(), "GET", "/drip?bytes=5&ms=20");
  CHECK(std::chrono::steady_clock::now() - start >= 100ms);
  CHECK(res.header("Content-Length") == "5");
  CHECK(res.body == "abcde");
}

TEST_CASE("Demo upstream sends big and chunked bodies", "[support][upstream]") {
  DemoUpstream upstream;
  HttpConnection conn(upstream.port());
  const auto big = conn.request("GET", "/big?bytes=3000000");
  CHECK(big.header("Content-Length") == "3000000");
  CHECK(big.body.size() == 3'000'000);
  const auto chunked = conn.request("GET", "/chunked?parts=4");
  CHECK(chunked.header("Transfer-Encoding") == "chunked");
  CHECK(chunked.body == "part 0\npart 1\npart 2\npart 3\n");
}

TEST_CASE("Demo upstream truncates and resets on request", "[support][upstream]") {
  DemoUpstream upstream;
  {
    HttpConnection conn(upstream.port());
    conn.send_raw("GET /truncate HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string raw = conn.read_raw_until_close(5s);
    CHECK(raw.find("Content-Length: 100\r\n") != std::string::npos);
    CHECK(raw.substr(raw.find("\r\n\r\n") + 4) == "0123456789");
  }
  {
    HttpConnection conn(upstream.port());
    conn.send_raw("GET /reset HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(conn.read_raw_until_close(5s).empty());
  }
  {
    HttpConnection conn(upstream.port());
    conn.send_raw("GET /truncate HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_THROWS(conn.read_response());  // a short body is an error for the client
  }
}

TEST_CASE("Demo upstream answers garbage with 400 and survives", "[support][upstream]") {
  DemoUpstream upstream;
  HttpConnection conn(upstream.port());
  conn.send_raw("NOT HTTP AT ALL\r\n\r\n");
  const auto res = conn.read_response();
  CHECK(res.status == 400);
  CHECK_FALSE(res.keep_alive);
  CHECK(http_request(upstream.port(), "GET", "/").status == 200);
}

TEST_CASE("Pipelined requests are answered in order", "[support][upstream][http_client]") {
  DemoUpstream upstream;
  HttpConnection conn(upstream.port());
  conn.send_raw(
      "GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /status/202 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(conn.read_response().status == 201);
  CHECK(conn.read_response().status == 202);
}

TEST_CASE("HttpConnection times out instead of hanging", "[support][http_client]") {
  DemoUpstream upstream;
  HttpConnection conn(upstream.port(), "127.0.0.1", 200ms);
  CHECK_THROWS_WITH(conn.request("GET", "/slow?ms=2000"), Catch::Contains("timed out"));
  HttpConnection open(upstream.port());
  CHECK_THROWS_WITH(open.read_raw_until_close(100ms), Catch::Contains("timed out"));
}

TEST_CASE("Demo upstream exits 0 on SIGTERM", "[support][upstream]") {
  DemoUpstream upstream;
  upstream.process().signal(SIGTERM);
  CHECK(upstream.process().wait_exit(5s) == 0);
}
