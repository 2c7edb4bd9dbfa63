// Hostile input against the real gateway binary, from raw sockets: request smuggling,
// oversized and slow requests, thousands of idle connections, bytes that are not text,
// and identifiers built to escape a limit or to inject into Redis keys and logs. Every
// case prints one "FIGURE" line with what it measured (quoted by the reliability docs).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "limiter/descriptor.hpp"
#include "support/base64url.hpp"
#include "support/e2e.hpp"
#include "support/demo_upstream.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"

using namespace phlow::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {


// One upstream `app` at `url`, one catch-all route; `http` lines are indented by two.
std::string proxy_config(const std::string& url, const std::string& http = "") {
  return "listen: \"127.0.0.1:0\"\nthreads: 1\naccess_log: \"off\"\n" +
         (http.empty() ? "" : "http:\n" + http) + "upstreams:\n  app: { url: \"" + url +
         "\" }\nroutes:\n  - match: { path_prefix: / }\n    upstream: app\n";
}

long long ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// A blocking TCP client on 127.0.0.1 that writes any bytes and reads until the peer
// closes, each with a deadline: malformed input needs no HTTP client.
class RawSocket {
 public:
  explicit RawSocket(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect failed");
    }
  }
  ~RawSocket() { ::close(fd_); }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  // Writes all of `bytes`; returns false when the peer closed or reset first.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Every byte until the peer closes (or resets) the connection, or until `timeout`;
  // closed() says which.
  std::string read_until_close(std::chrono::milliseconds timeout) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    char block[16 * 1024];
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return out;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return out;
      const ssize_t n = ::recv(fd_, block, sizeof block, 0);
      if (n <= 0) {
        closed_ = true;
        return out;
      }
      out.append(block, static_cast<std::size_t>(n));
    }
  }
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  bool closed_ = false;
};

// What a raw exchange got back.
struct Reply {
  int status = 0;
  int responses = 0;  // status lines seen
  std::string content_type;
  std::string body;
  bool closed = false;
  bool json_error() const {
    const json parsed = json::parse(body, nullptr, false);
    return content_type == "application/json" && parsed.is_object() && parsed.contains("error") &&
           parsed.contains("code");
  }
  std::string code() const {
    const json parsed = json::parse(body, nullptr, false);
    return parsed.is_object() && parsed.contains("code") ? parsed["code"].get<std::string>() : "";
  }
};

Reply parse_reply(const std::string& raw, bool closed) {
  Reply r;
  r.closed = closed;
  if (raw.starts_with("HTTP/1.1 ") && raw.size() >= 12) r.status = std::stoi(raw.substr(9, 3));
  for (auto at = raw.find("HTTP/1."); at != std::string::npos; at = raw.find("HTTP/1.", at + 1)) {
    if (at == 0 || raw.compare(at - 2, 2, "\r\n") == 0) ++r.responses;
  }
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return r;
  const std::string head = raw.substr(0, head_end);
  std::smatch m;
  if (std::regex_search(head, m, std::regex("\r\nContent-Type: ([^\r]*)", std::regex::icase))) {
    r.content_type = m[1];
  }
  std::size_t length = raw.size() - head_end - 4;
  if (std::regex_search(head, m, std::regex("\r\nContent-Length: ([0-9]+)", std::regex::icase))) {
    length = std::min<std::size_t>(length, std::stoul(m[1]));
  }
  r.body = raw.substr(head_end + 4, length);
  return r;
}

// Sends `bytes` on a fresh connection and reads until the gateway closes it.
Reply round_trip(std::uint16_t port, std::string_view bytes, std::chrono::milliseconds timeout = 3s) {
  RawSocket socket(port);
  socket.send(bytes);
  const std::string raw = socket.read_until_close(timeout);
  return parse_reply(raw, socket.closed());
}

// Requests the demo upstream has received so far (asked directly, not through the
// gateway; the asking request itself is not included).
std::uint64_t upstream_requests(const DemoUpstream& upstream) {
  return json::parse(http_request(upstream.port(), "GET", "/count").body).at("requests");
}

// The number of requests the upstream got between two upstream_requests() calls.
std::uint64_t forwarded_since(const DemoUpstream& upstream, std::uint64_t before) {
  return upstream_requests(upstream) - before - 1;
}

constexpr std::string_view kPipelined = "GET /pipelined HTTP/1.1\r\nHost: a\r\n\r\n";

struct HostileCase {
  std::string name;
  std::string bytes;
};

// Runs each case with a valid request pipelined behind it; each must get exactly one
// answer, `status` with a JSON error body, the connection closed, and nothing may
// reach the upstream. Returns how many did.
int expect_rejected_unforwarded(std::uint16_t port, const DemoUpstream& upstream,
                                const std::vector<HostileCase>& cases, int status) {
  int ok = 0;
  for (const auto& c : cases) {
    INFO("case: " << c.name);
    const std::uint64_t before = upstream_requests(upstream);
    const Reply r = round_trip(port, c.bytes + std::string(kPipelined));
    CHECK(r.status == status);
    CHECK(r.json_error());
    CHECK(r.closed);
    CHECK(r.responses == 1);
    const std::uint64_t forwarded = forwarded_since(upstream, before);
    CHECK(forwarded == 0);
    if (r.status == status && r.json_error() && r.closed && r.responses == 1 && forwarded == 0) ++ok;
  }
  return ok;
}

std::string post_head(std::string_view framing, std::string_view version = "HTTP/1.1") {
  return "POST /echo " + std::string(version) + "\r\nHost: a\r\n" + std::string(framing) + "\r\n";
}

std::string chunked(std::string_view body) {
  return post_head("Transfer-Encoding: chunked\r\n") + std::string(body);
}

// Accepts connections, records each request head byte for byte, answers 200 "ok" and
// closes: shows what exactly the gateway forwarded.
class RecordingUpstream {
 public:
  RecordingUpstream() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 64) != 0) {
      throw std::runtime_error("recording upstream: cannot listen");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~RecordingUpstream() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> heads() const {
    std::lock_guard lock(mutex_);
    return heads_;
  }

 private:
  void serve() {
    for (;;) {
      const int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      std::string head;
      char block[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(client, block, sizeof block, 0);
        if (n <= 0) break;
        head.append(block, static_cast<std::size_t>(n));
      }
      if (!head.empty()) {
        std::lock_guard lock(mutex_);
        heads_.push_back(head.substr(0, head.find("\r\n\r\n") + 4));
      }
      static constexpr std::string_view kOk =
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      [[maybe_unused]] const ssize_t sent = ::send(client, kOk.data(), kOk.size(), MSG_NOSIGNAL);
      ::close(client);
    }
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  mutable std::mutex mutex_;
  std::vector<std::string> heads_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("hostile: request smuggling and malformed framing get 400 and reach no upstream") {
  DemoUpstream upstream;
  GatewayProcess gateway(proxy_config(upstream.url()), kNoRedis);
  INFO(gateway.process().output());
  const std::string body5 = "hello";
  const std::vector<HostileCase> cases = {
      {"Content-Length then Transfer-Encoding", post_head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n"},
      {"Transfer-Encoding then Content-Length", post_head("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") + "0\r\n\r\n"},
      {"duplicate Content-Length same value", post_head("Content-Length: 5\r\nContent-Length: 5\r\n") + body5},
      {"duplicate Content-Length different values", post_head("Content-Length: 5\r\nContent-Length: 6\r\n") + body5 + "!"},
      {"Content-Length list", post_head("Content-Length: 5, 5\r\n") + body5},
      {"Content-Length with sign", post_head("Content-Length: +5\r\n") + body5},
      {"Content-Length negative", post_head("Content-Length: -1\r\n") + body5},
      {"Content-Length overflowing", post_head("Content-Length: 99999999999999999999999\r\n") + body5},
      {"Transfer-Encoding gzip", post_head("Transfer-Encoding: gzip\r\n") + body5},
      {"Transfer-Encoding chunked not last", post_head("Transfer-Encoding: chunked, gzip\r\n") + "0\r\n\r\n"},
      {"Transfer-Encoding chunked twice", post_head("Transfer-Encoding: chunked, chunked\r\n") + "0\r\n\r\n"},
      {"Transfer-Encoding gzip then chunked", post_head("Transfer-Encoding: gzip, chunked\r\n") + "0\r\n\r\n"},
      {"two Transfer-Encoding fields", post_head("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n"},
      {"Transfer-Encoding xchunked", post_head("Transfer-Encoding: xchunked\r\n") + "0\r\n\r\n"},
      {"Transfer-Encoding in HTTP/1.0", post_head("Transfer-Encoding: chunked\r\n", "HTTP/1.0") + "0\r\n\r\n"},
      {"obs-fold with a space", "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n"},
      {"obs-fold with a tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n\ttwo\r\n\r\n"},
      {"obs-fold of Content-Length", post_head("Content-Length:\r\n 5\r\n") + body5},
      {"white space before the first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n"},
      {"bare LF everywhere", "GET / HTTP/1.1\nHost: a\n\n"},
      {"bare LF after a field", "GET / HTTP/1.1\r\nHost: a\nX-B: b\r\n\r\n"},
      {"bare CR after a field", "GET / HTTP/1.1\r\nHost: a\rX-B: b\r\n\r\n"},
      {"space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"},
      {"tab before the colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"},
      {"space before the colon of Transfer-Encoding", post_head("Transfer-Encoding : chunked\r\n") + "0\r\n\r\n"},
      {"chunk size not hex", chunked("zz\r\nhello\r\n0\r\n\r\n")},
      {"chunk size overflowing", chunked("ffffffffffffffffff1\r\nhello\r\n0\r\n\r\n")},
      {"chunk size negative", chunked("-5\r\nhello\r\n0\r\n\r\n")},
      {"chunk size with 0x", chunked("0x5\r\nhello\r\n0\r\n\r\n")},
      {"chunk size with a space", chunked("5 \r\nhello\r\n0\r\n\r\n")},
      {"chunk size ended by a bare LF", chunked("5\nhello\r\n0\r\n\r\n")},
      {"chunk data without its CRLF", chunked("5\r\nhelloX0\r\n\r\n")},
      {"chunk size empty", chunked("\r\nhello\r\n0\r\n\r\n")},
  };
  const int ok = expect_rejected_unforwarded(gateway.port(), upstream, cases, 400);
  // A bare-LF head alone never holds the CRLF CRLF that Beast waits for: it is
  // answered at once, not left to header_timeout.
  const auto start = Clock::now();
  const Reply bare_lf = round_trip(gateway.port(), "GET / HTTP/1.1\nHost: a\n\n");
  const long long bare_lf_ms = ms_since(start);
  CHECK(bare_lf.status == 400);
  CHECK(bare_lf_ms < 1000);
  // The gateway serves on.
  CHECK(http_request(gateway.port(), "GET", "/").status == 200);
  std::cout << "FIGURE smuggling: " << cases.size() << " cases, " << ok
            << " x 400 closed with nothing forwarded (pipelined request included); a lone bare-LF head -> "
            << bare_lf.status << " in " << bare_lf_ms << " ms\n";
}

TEST_CASE("hostile: an oversized request line gets 414 and an oversized head 431") {
  DemoUpstream upstream;
  GatewayProcess gateway(proxy_config(upstream.url(), "  max_header_bytes: 4KiB\n"), kNoRedis);
  INFO(gateway.process().output());
  const std::string long_target = "/" + std::string(20'000, 'a');
  const std::vector<HostileCase> line_cases = {
      {"long target", "GET " + long_target + " HTTP/1.1\r\nHost: a\r\n\r\n"},
      {"long target never ended", "GET " + long_target},
      {"long method", std::string(8000, 'G') + " / HTTP/1.1\r\nHost: a\r\n\r\n"},
  };
  const int line_ok = expect_rejected_unforwarded(gateway.port(), upstream, line_cases, 414);
  for (const auto& c : line_cases) CHECK(round_trip(gateway.port(), c.bytes).code() == "URI_TOO_LONG");
  // A request line just under the limit is served; long fields are 431, not 414.
  CHECK(http_request(gateway.port(), "GET", "/" + std::string(3800, 'b')).status == 200);
  const std::vector<HostileCase> head_cases = {
      {"long field", "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(8000, 'p') + "\r\n\r\n"},
      {"long field never ended", "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + std::string(8000, 'p')},
  };
  const int head_ok = expect_rejected_unforwarded(gateway.port(), upstream, head_cases, 431);
  std::cout << "FIGURE oversized request line: " << line_cases.size() << " cases, " << line_ok
            << " x 414; oversized head: " << head_cases.size() << " cases, " << head_ok
            << " x 431; upstream saw 0\n";
}

TEST_CASE("hostile: more header fields than max_headers get 431") {
  DemoUpstream upstream;
  GatewayProcess gateway(proxy_config(upstream.url()), kNoRedis);  // default max_headers: 100
  INFO(gateway.process().output());
  auto head_with_fields = [](int fields) {
    std::string head = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (int i = 1; i < fields; ++i) head += "X-F" + std::to_string(i) + ": v\r\n";
    return head + "Connection: close\r\n\r\n";
  };
  // Host, 98 others and Connection: 100 fields.
  const Reply at_limit = round_trip(gateway.port(), head_with_fields(99));
  CHECK(at_limit.status == 200);
  const std::vector<HostileCase> cases = {
      {"101 fields", head_with_fields(100)},
      {"1000 fields", head_with_fields(1000)},
  };
  const int ok = expect_rejected_unforwarded(gateway.port(), upstream, cases, 431);
  CHECK(round_trip(gateway.port(), head_with_fields(100)).code() == "TOO_MANY_HEADERS");
  std::cout << "FIGURE header count: 100 fields -> " << at_limit.status << ", " << cases.size()
            << " cases over 100, " << ok << " x 431, upstream saw 0\n";
}

TEST_CASE("hostile: bodies over max_body_bytes get 413 with Content-Length and chunked") {
  DemoUpstream upstream;
  GatewayProcess gateway(proxy_config(upstream.url(), "  max_body_bytes: 1KiB\n"), kNoRedis);
  INFO(gateway.process().output());
  const std::string chunk512 = "200\r\n" + std::string(512, 'c') + "\r\n";
  const std::vector<HostileCase> cases = {
      {"Content-Length over the limit", post_head("Content-Length: 5000\r\n") + std::string(5000, 'x')},
      {"Content-Length over the limit and no body", post_head("Content-Length: 5000\r\n")},
      {"one chunk over the limit", chunked("1400\r\n" + std::string(5120, 'c') + "\r\n0\r\n\r\n")},
      {"a chunk size near 2^64", chunked("ffffffffffffffff\r\nhello\r\n0\r\n\r\n")},
      {"small chunks adding up over the limit", chunked(chunk512 + chunk512 + chunk512 + "0\r\n\r\n")},
  };
  const int ok = expect_rejected_unforwarded(gateway.port(), upstream, cases, 413);
  // Exactly the limit is forwarded.
  CHECK(http_request(gateway.port(), "POST", "/echo", {}, std::string(1024, 'k')).status == 200);
  CHECK(http_request(gateway.port(), "POST", "/echo", {{"Transfer-Encoding", "chunked"}},
                     std::string(1024, 'k'))
            .status == 200);
  std::cout << "FIGURE oversized body: " << cases.size() << " cases, " << ok
            << " x 413, upstream saw 0\n";
}

TEST_CASE("hostile: a stalled or trickling request body is cut by body_timeout") {
  DemoUpstream upstream;
  GatewayProcess gateway(R"(
listen: "127.0.0.1:0"
threads: 1
access_log: "off"
http: { header_timeout: 5s, idle_timeout: 10s, body_timeout: 500ms }
upstreams:
  app: { url: ")" + upstream.url() + R"(" }
routes:
  - match: { path_prefix: /app }
    upstream: app
)", kNoRedis);
  INFO(gateway.process().output());
  struct SlowCase {
    std::string name;
    std::string head;
    std::string trickle;  // sent one byte every 100 ms after the head
  };
  const std::vector<SlowCase> cases = {
      {"stalled Content-Length body", post_head("Content-Length: 100\r\n").replace(5, 5, "/app") + "0123456789", ""},
      {"stalled chunked body", chunked("a\r\n01234").replace(5, 5, "/app"), ""},
      {"trickling body", post_head("Content-Length: 100\r\n").replace(5, 5, "/app"), std::string(40, 't')},
      {"stalled body of an unrouted request", post_head("Content-Length: 100\r\n").replace(5, 5, "/nop") + "0123", ""},
  };
  long long slowest = 0;
  int cut = 0;
  for (const auto& c : cases) {
    INFO("case: " << c.name);
    RawSocket socket(gateway.port());
    const auto start = Clock::now();
    REQUIRE(socket.send(c.head));
    std::string raw;
    for (char byte : c.trickle) {
      raw += socket.read_until_close(100ms);
      if (socket.closed() || !socket.send(std::string_view(&byte, 1))) break;
    }
    if (!socket.closed()) raw += socket.read_until_close(3s);
    const long long took = ms_since(start);
    // The deadline closes the connection: there is no answer to a half-sent request.
    CHECK(socket.closed());
    CHECK(raw.empty());
    CHECK(took >= 400);
    CHECK(took < 1500);
    slowest = std::max(slowest, took);
    if (socket.closed() && raw.empty() && took >= 400 && took < 1500) ++cut;
  }
  // The head: a trickle does not extend header_timeout (a deadline for the whole head).
  GatewayProcess strict(proxy_config(upstream.url(), "  header_timeout: 500ms\n"), kNoRedis);
  RawSocket socket(strict.port());
  const auto start = Clock::now();
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + std::string(100, 's');
  for (char byte : head) {
    if (!socket.send(std::string_view(&byte, 1))) break;
    socket.read_until_close(50ms);
    if (socket.closed()) break;
  }
  if (!socket.closed()) socket.read_until_close(3s);
  const long long head_took = ms_since(start);
  CHECK(socket.closed());
  CHECK(head_took >= 400);
  CHECK(head_took < 1500);
  CHECK(http_request(gateway.port(), "GET", "/app").status == 200);
  std::cout << "FIGURE slow body: " << cases.size() << " cases with body_timeout 500ms, " << cut
            << " cut, slowest after " << slowest << " ms; trickled head cut after " << head_took
            << " ms with header_timeout 500ms\n";
}

TEST_CASE("hostile: thousands of idle connections starve no active client and the next one gets 503") {
  // Each idle connection holds a descriptor here and one in the gateway.
  int idle = kSanitized ? 2000 : 10'000;
  if (const char* env = std::getenv("PHLOW_HOSTILE_IDLE_CONNECTIONS")) idle = std::atoi(env);
  rlimit files{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &files) == 0);
  files.rlim_cur = files.rlim_max;  // inherited by the gateway started below
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &files) == 0);
  const auto room = static_cast<int>(std::min<rlim_t>(files.rlim_cur, 1'000'000)) - 200;
  if (idle > room) {
    std::cout << "RLIMIT_NOFILE " << files.rlim_cur << " holds only " << room << " idle connections\n";
    idle = room;
  }
  DemoUpstream upstream;
  GatewayProcess gateway(proxy_config(upstream.url(), "  max_connections: " +
                                                          std::to_string(idle + 1) + "\n"),
                         kNoRedis);
  INFO(gateway.process().output());
  const auto open_start = Clock::now();
  std::vector<std::unique_ptr<RawSocket>> sockets;
  sockets.reserve(static_cast<std::size_t>(idle));
  for (int i = 0; i < idle; ++i) sockets.push_back(std::make_unique<RawSocket>(gateway.port()));
  // Wait until the gateway has accepted them all (its open-connection gauge).
  const std::regex gauge(R"(phlow_gateway_open_connections\{side="client"\} (\d+))");
  long accepted = 0;
  for (auto until = Clock::now() + 20s; Clock::now() < until && accepted < idle;) {
    const std::string metrics = http_request(gateway.admin_port(), "GET", "/metrics").body;
    std::smatch m;
    if (std::regex_search(metrics, m, gauge)) accepted = std::stol(m[1]);
    if (accepted < idle) std::this_thread::sleep_for(50ms);
  }
  const long long open_ms = ms_since(open_start);
  REQUIRE(accepted == idle);

  HttpConnection active(gateway.port(), "127.0.0.1", 5s);
  constexpr int kRequests = 200;
  long long worst_us = 0;
  int ok = 0;
  for (int i = 0; i < kRequests; ++i) {
    const auto start = Clock::now();
    const HttpResponse r = active.request("GET", "/");
    worst_us = std::max<long long>(
        worst_us, std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
    if (r.status == 200) ++ok;
  }
  CHECK(ok == kRequests);
  CHECK(worst_us < 500'000);

  HttpConnection over(gateway.port(), "127.0.0.1", 5s);
  const HttpResponse refused = over.read_response();
  CHECK(refused.status == 503);
  CHECK(refused.header("Content-Type") == "application/json");
  CHECK(json::parse(refused.body).at("code") == "OVER_CAPACITY");
  CHECK_FALSE(refused.keep_alive);
  // The idle connections are still open and still served.
  RawSocket& first = *sockets.front();
  REQUIRE(first.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  CHECK(parse_reply(first.read_until_close(5s), true).status == 200);
  std::cout << "FIGURE idle connections: " << idle << " idle (accepted in " << open_ms
            << " ms), active client " << ok << "/" << kRequests << " x 200, worst "
            << worst_us / 1000.0 << " ms; connection " << idle + 2 << " got " << refused.status
            << " " << refused.body << "\n";
}

TEST_CASE("hostile: NUL bytes and control characters get 400 while obs-text is forwarded byte for byte") {
  RecordingUpstream upstream;
  GatewayProcess gateway(proxy_config(upstream.url()), kNoRedis);
  INFO(gateway.process().output());
  using namespace std::string_literals;
  const std::vector<HostileCase> rejected = {
      {"NUL in the path", "GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n"s},
      {"control character in the path", "GET /a\x01z HTTP/1.1\r\nHost: a\r\n\r\n"s},
      {"DEL in the path", "GET /a\x7fz HTTP/1.1\r\nHost: a\r\n\r\n"s},
      {"escape in the path", "GET /a\x1b[31m HTTP/1.1\r\nHost: a\r\n\r\n"s},
      {"NUL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX-V: a\0b\r\n\r\n"s},
      {"control character in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX-V: a\x01z\r\n\r\n"s},
      {"DEL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX-V: a\x7fz\r\n\r\n"s},
      {"NUL in a header name", "GET / HTTP/1.1\r\nHost: a\r\nX\0V: ab\r\n\r\n"s},
      {"UTF-8 in a header name", "GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: ab\r\n\r\n"s},
      {"empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: ab\r\n\r\n"s},
      {"NUL in the Host", "GET / HTTP/1.1\r\nHost: a\0.example\r\n\r\n"s},
  };
  int ok = 0;
  for (const auto& c : rejected) {
    INFO("case: " << c.name);
    const Reply r = round_trip(gateway.port(), c.bytes + std::string(kPipelined));
    CHECK(r.status == 400);
    CHECK(r.json_error());
    CHECK(r.closed);
    CHECK(r.responses == 1);
    if (r.status == 400 && r.json_error() && r.closed && r.responses == 1) ++ok;
  }
  CHECK(upstream.heads().empty());

  // Bytes 0x80-0xFF (obs-text, here invalid UTF-8) are legal in a path and a value.
  const std::string path = "/caf\xc3\xa9/\xff\xfe/%00%ff";
  const std::string value = "\xff\xc3(\x80 tail \xe2\x82";
  const Reply r = round_trip(gateway.port(), "GET " + path + " HTTP/1.1\r\nHost: a\r\nX-Bytes: " +
                                               value + "\r\nConnection: close\r\n\r\n");
  CHECK(r.status == 200);
  const auto heads = upstream.heads();
  REQUIRE(heads.size() == 1);
  CHECK(heads[0].starts_with("GET " + path + " HTTP/1.1\r\n"));
  CHECK(heads[0].find("\r\nX-Bytes: " + value + "\r\n") != std::string::npos);
  CHECK(http_request(gateway.port(), "GET", "/after").status == 200);
  CHECK(gateway.process().running());
  std::cout << "FIGURE bytes: " << rejected.size() << " NUL/control cases, " << ok
            << " x 400, upstream saw 0; obs-text path and value forwarded byte for byte: "
            << (r.status == 200 && heads[0].find(value) != std::string::npos ? "yes" : "no") << "\n";
}

namespace {

// A gateway in front of the demo upstream deciding in a real redis-server, with one
// route per identifier and the access log on stdout.
struct IdentifierRig {
  RedisServer redis;
  DemoUpstream upstream;
  std::unique_ptr<GatewayProcess> gateway;

  explicit IdentifierRig(const std::string& extra = "") {
    gateway = std::make_unique<GatewayProcess>(R"(
listen: "127.0.0.1:0"
threads: 2
access_log: stdout
upstreams:
  app: { url: ")" + upstream.url() + R"(" }
)" + exact_redis_yaml(redis.url()) + R"(limits:
  per_token: { requests: 3, window: 1m, key: token_hash }
  per_agent: { requests: 3, window: 1m, key: agent_id }
  per_key: { requests: 3, window: 1m, key: api_key }
  per_ip: { requests: 5, window: 1m, key: ip }
identifiers:
  agent_id: { header: X-Phlow-Agent-Id, jwt_claim: agent_id }
  api_key: { header: X-API-Key, query: api_key }
)" + extra + R"(routes:
  - match: { path_prefix: /token }
    upstream: app
    limits: [per_token, per_agent]
  - match: { path_prefix: /key }
    upstream: app
    limits: [per_key]
  - match: { path_prefix: /ip }
    upstream: app
    limits: [per_ip]
)", kNoRedis);
    REQUIRE(gateway->process().wait_for_output("Connected to Redis", 5s));
  }

  std::uint16_t port() const { return gateway->port(); }

  // Every key in Redis, exactly (binary-safe: KEYS' reply is joined with spaces).
  std::set<std::string> keys_matching(const std::set<std::string>& expected) const {
    std::set<std::string> present;
    for (const auto& key : expected) {
      if (redis.command({"EXISTS", key}) == "1") present.insert(key);
    }
    return present;
  }
  // Keys in Redis, but the gateways' presence set (phlow:ratelimit:gateways).
  long dbsize() const {
    return std::stol(redis.command({"DBSIZE"})) -
           std::stol(redis.command({"EXISTS", "phlow:ratelimit:gateways"}));
  }

  // The gateway's stdout (access log) and stderr, once the access log is flushed.
  std::string output() const {
    std::this_thread::sleep_for(400ms);  // the access log is flushed every 200 ms
    return gateway->process().read_stdout() + gateway->process().read_stderr();
  }
};

struct Tally {
  int allowed = 0;
  int limited = 0;
  int other = 0;
};

Tally send_many(std::uint16_t port, int n, std::string_view target, const HeaderList& headers) {
  Tally t;
  for (int i = 0; i < n; ++i) {
    const int status = http_request(port, "GET", target, headers).status;
    if (status == 200) {
      ++t.allowed;
    } else if (status == 429) {
      ++t.limited;
    } else {
      ++t.other;
    }
  }
  return t;
}

std::string hash_key(const std::string& limit, std::string_view raw) {
  return "phlow:ratelimit:" + limit + ":" + phlow::limiter::sha256_hex(raw);
}

}  // namespace

TEST_CASE("hostile: bearer tokens and JWTs built to escape or inject stay within their limit") {
  IdentifierRig rig;
  INFO(rig.gateway->process().output());
  constexpr int kExtra = 4;  // requests past each budget of 3
  struct TokenCase {
    std::string name;
    std::string token;
  };
  const std::string huge_claim(10'000, 'g');
  const std::vector<TokenCase> cases = {
      {"12 KB opaque token", "TOKEN-LONG-" + std::string(12'000, 'x')},
      {"token with Redis pattern characters", "TOKEN-*?[a-z]{x}\\"},
      {"JWT with bad base64", "eyJhbGciOiJub25lIn0.!!!not*base64!!!.sig"},
      {"JWT with padding", base64url(R"({"alg":"none"})") + ".eyJhZ2VudF9pZCI6ImEifQ==.x"},
      {"JWT with a giant claim", base64url(R"({"alg":"none"})") + "." +
                                     base64url(R"({"agent_id":")" + huge_claim + R"("})") + "."},
      {"JWT with an array payload", base64url(R"({"alg":"none"})") + "." + base64url("[1,2,3]") + "."},
      {"JWT with a string payload", base64url(R"({"alg":"none"})") + "." + base64url("\"agent\"") + "."},
      {"JWT with a null payload", base64url(R"({"alg":"none"})") + "." + base64url("null") + "."},
      {"JWT with a nested claim", base64url(R"({"alg":"none"})") + "." +
                                      base64url(R"({"agent_id":{"agent_id":"inner"}})") + "."},
      {"JWT with deep nesting", base64url(R"({"alg":"none"})") + "." +
                                    base64url(std::string(3000, '[') + std::string(3000, ']')) + "."},
      {"JWT with four parts", "a.b.c.d"},
  };
  std::set<std::string> expected;
  int exact = 0;
  for (const auto& c : cases) {
    INFO("case: " << c.name);
    const Tally t = send_many(rig.port(), 3 + kExtra, "/token", {{"Authorization", "Bearer " + c.token}});
    CHECK(t.allowed == 3);
    CHECK(t.limited == kExtra);
    CHECK(t.other == 0);
    if (t.allowed == 3 && t.limited == kExtra && t.other == 0) ++exact;
    expected.insert(hash_key("per_token", c.token));
  }
  // A JWT naming a legitimate agent: both limits, the agent's key is its claim (SPEC).
  const std::string agent = "agent-with-*?[]{}-chars";
  const std::string jwt = base64url(R"({"alg":"none"})") + "." +
                          base64url(json{{"agent_id", agent}}.dump()) + ".";
  const Tally agent_tally = send_many(rig.port(), 3 + kExtra, "/token", {{"Authorization", "Bearer " + jwt}});
  CHECK(agent_tally.allowed == 3);
  CHECK(agent_tally.limited == kExtra);
  expected.insert(hash_key("per_token", jwt));
  // Pattern characters in an agent ID: the key holds its hash (limiter::key_identifier).
  expected.insert("phlow:ratelimit:per_agent:" + phlow::limiter::key_identifier(agent));

  // A 1 MB token is refused before anything is counted.
  RawSocket huge(rig.port());
  huge.send("GET /token HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + std::string(1 << 20, 'h') +
            "\r\n\r\n");
  const Reply huge_reply = parse_reply(huge.read_until_close(5s), huge.closed());
  CHECK(huge_reply.status == 431);
  // Empty tokens carry no identity: the token limit is skipped (SPEC: "limit skipped").
  int empty_allowed = 0;
  for (const char* value : {"Bearer", "Bearer ", "Bearer    ", "bearer \t"}) {
    empty_allowed += send_many(rig.port(), 2, "/token", {{"Authorization", value}}).allowed;
  }
  CHECK(empty_allowed == 8);

  INFO("keys: " << rig.redis.command({"KEYS", "*"}));
  CHECK(rig.keys_matching(expected) == expected);
  CHECK(rig.dbsize() == static_cast<long>(expected.size()));
  const std::regex layout(R"(phlow:ratelimit:(per_token:[0-9a-f]{64}|per_agent:sha256:[0-9a-f]{64}))");
  std::size_t hashed = 0;
  for (const auto& key : expected) {
    CHECK(std::regex_match(key, layout));
    ++hashed;
  }
  const std::string log = rig.output();
  int leaked = 0;
  for (const auto& c : cases) {
    if (log.find(c.token.substr(0, 24)) != std::string::npos) ++leaked;
  }
  CHECK(leaked == 0);
  CHECK(log.find("\"status\":429") != std::string::npos);  // the log was there to search
  CHECK(rig.gateway->process().running());
  std::cout << "FIGURE tokens: " << cases.size() << " hostile tokens x " << 3 + kExtra
            << " requests, " << exact << " with exactly 3 allowed and " << kExtra
            << " x 429; 1 MB token -> " << huge_reply.status << "; empty tokens " << empty_allowed
            << "/8 allowed (limit skipped); Redis keys " << rig.dbsize() << " (" << hashed
            << " matching <prefix><limit>:<sha256>); raw tokens in logs: " << leaked << "\n";
}

TEST_CASE("hostile: API keys with Redis-special characters and CRLF stay hashed and limited") {
  IdentifierRig rig;
  INFO(rig.gateway->process().output());
  constexpr int kExtra = 4;
  struct KeyCase {
    std::string name;
    std::string raw;        // the key as the gateway decodes it
    std::string header;     // sent as X-API-Key when not empty
    std::string query;      // else as ?api_key=<query>
  };
  using namespace std::string_literals;
  const std::vector<KeyCase> cases = {
      {"star", "RAWKEY*", "RAWKEY*", ""},
      {"question mark", "RAWKEY?", "", "RAWKEY%3F"},
      {"brackets", "RAWKEY[a-z]", "RAWKEY[a-z]", ""},
      {"braces (cluster hash tag)", "RAWKEY{tag}", "", "RAWKEY%7Btag%7D"},
      {"spaces", "RAWKEY with spaces", "RAWKEY with spaces", ""},
      {"CRLF and a Redis command", "RAWKEY\r\nFLUSHALL\r\n", "", "RAWKEY%0D%0AFLUSHALL%0D%0A"},
      {"NUL", "RAWKEY\0tail"s, "", "RAWKEY%00tail"},
      {"RESP framing", "RAWKEY*3\r\n$3\r\nSET", "", "RAWKEY%2A3%0D%0A%243%0D%0ASET"},
      {"colon, the key separator", "RAWKEY:per_key:other", "RAWKEY:per_key:other", ""},
      {"raw percent", "RAWKEY%zz", "", "RAWKEY%zz"},
  };
  std::set<std::string> expected;
  int exact = 0;
  for (const auto& c : cases) {
    INFO("case: " << c.name);
    HeaderList headers;
    std::string target = "/key";
    if (!c.header.empty()) {
      headers.emplace_back("X-API-Key", c.header);
    } else {
      target += "?api_key=" + c.query;
    }
    const Tally t = send_many(rig.port(), 3 + kExtra, target, headers);
    CHECK(t.allowed == 3);
    CHECK(t.limited == kExtra);
    CHECK(t.other == 0);
    if (t.allowed == 3 && t.limited == kExtra && t.other == 0) ++exact;
    expected.insert(hash_key("per_key", c.raw));
  }
  // The header and the query name the same key: one budget, already spent.
  CHECK(http_request(rig.port(), "GET", "/key?api_key=RAWKEY%2A", {}).status == 429);
  // A raw CR or LF in a header value never gets that far.
  const Reply crlf = round_trip(rig.port(), "GET /key HTTP/1.1\r\nHost: a\r\nX-API-Key: RAWKEY\rINJECT\r\n\r\n");
  CHECK(crlf.status == 400);

  CHECK(rig.keys_matching(expected) == expected);
  CHECK(rig.dbsize() == static_cast<long>(expected.size()));
  CHECK(rig.redis.command({"DBSIZE"}) != "0");  // FLUSHALL was never run
  for (const auto& key : expected) {
    CHECK(std::regex_match(key, std::regex("phlow:ratelimit:per_key:[0-9a-f]{64}")));
  }
  const std::string log = rig.output();
  const auto leaked = std::count_if(cases.begin(), cases.end(), [&](const KeyCase& c) {
    return log.find(c.raw.substr(0, 10)) != std::string::npos ||
           (!c.query.empty() && log.find(c.query) != std::string::npos);
  });
  CHECK(leaked == 0);
  CHECK(log.find("RAWKEY") == std::string::npos);
  CHECK(log.find("api_key=***") != std::string::npos);  // the log was there to search
  CHECK(rig.gateway->process().running());
  std::cout << "FIGURE api keys: " << cases.size() << " hostile keys x " << 3 + kExtra
            << " requests, " << exact << " with exactly 3 allowed and " << kExtra
            << " x 429; Redis keys " << rig.dbsize() << ", all per_key:<sha256>; raw keys in logs: "
            << leaked << "\n";
}

TEST_CASE("hostile: forged X-Forwarded-For chains do not escape the ip limit from any peer") {
  std::string many_hops;
  for (int i = 0; i < 1000; ++i) many_hops += "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1) + ", ";
  const std::vector<std::string> forged = {
      many_hops + "198.51.100.7",
      "garbage, <script>alert(1)</script>",
      "::::::1, [::1]:80, fe80::1%eth0, 2001:db8::zz",
      std::string(12'000, '1'),
      ", , ,",
      "unknown",
      "198.51.100.7;for=evil",
      "203.0.113.9, 127.0.0.1, 127.0.0.1",
      "2001:db8:0:1::" + std::to_string(7),
      "1.1.1.1 , 2.2.2.2 ,3.3.3.3",
  };
  SECTION("from an untrusted peer every chain is the peer itself") {
    IdentifierRig rig;
    INFO(rig.gateway->process().output());
    Tally t;
    for (int round = 0; round < 2; ++round) {
      for (const auto& chain : forged) {
        const int status = http_request(rig.port(), "GET", "/ip", {{"X-Forwarded-For", chain}}).status;
        (status == 200 ? t.allowed : status == 429 ? t.limited : t.other)++;
      }
    }
    CHECK(t.allowed == 5);
    CHECK(t.limited == static_cast<int>(2 * forged.size()) - 5);
    CHECK(t.other == 0);
    CHECK(rig.dbsize() == 1);
    CHECK(rig.redis.command({"EXISTS", "phlow:ratelimit:per_ip:127.0.0.1"}) == "1");
    std::cout << "FIGURE xff untrusted peer: " << 2 * forged.size() << " forged chains, "
              << t.allowed << " x 200, " << t.limited << " x 429, " << t.other
              << " other; Redis keys " << rig.dbsize() << "\n";
  }
  SECTION("behind a trusted proxy only a parseable right-most untrusted address counts") {
    IdentifierRig rig("  ip: { trusted_proxies: [127.0.0.1/32] }\n");
    INFO(rig.gateway->process().output());
    // Garbage anywhere falls back to the peer; chains ending in one client are one.
    struct Group {
      std::string identity;
      std::vector<std::string> chains;
    };
    const std::vector<Group> groups = {
        {"127.0.0.1", {forged[1], forged[2], forged[3], forged[4], forged[5], forged[6], forged[9] + ", junk"}},
        {"198.51.100.7", {forged[0], "1.2.3.4, 198.51.100.7", "198.51.100.7, 127.0.0.1"}},
        {"203.0.113.9", {forged[7], "garbage, 203.0.113.9"}},
        {"2001:db8:0:1::/64", {forged[8], "2001:db8:0:1:ffff::1", "2001:db8:0:1::abcd, 127.0.0.1"}},
    };
    int exact = 0;
    std::set<std::string> expected;
    for (const auto& g : groups) {
      INFO("identity " << g.identity);
      Tally t;
      for (int i = 0; i < 9; ++i) {
        const auto& chain = g.chains[static_cast<std::size_t>(i) % g.chains.size()];
        const int status = http_request(rig.port(), "GET", "/ip", {{"X-Forwarded-For", chain}}).status;
        (status == 200 ? t.allowed : status == 429 ? t.limited : t.other)++;
      }
      CHECK(t.allowed == 5);
      CHECK(t.limited == 4);
      if (t.allowed == 5 && t.limited == 4 && t.other == 0) ++exact;
      expected.insert("phlow:ratelimit:per_ip:" + g.identity);
    }
    CHECK(rig.keys_matching(expected) == expected);
    CHECK(rig.dbsize() == static_cast<long>(expected.size()));
    CHECK(rig.gateway->process().running());
    std::cout << "FIGURE xff trusted peer: " << groups.size() << " identities x 9 requests from "
              << forged.size() << "+ forged chains, " << exact
              << " with exactly 5 x 200 and 4 x 429; Redis keys " << rig.dbsize()
              << " (one per identity)\n";
  }
}
