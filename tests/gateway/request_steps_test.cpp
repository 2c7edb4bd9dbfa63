// The request path's steps that need no I/O, each alone: the error table
// (ProxyError), the rate-limit filter and the request record. The session strings
// them together over sockets (tests/gateway/e2e_*).
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <unistd.h>

#include "config/loader.hpp"
#include "fake_request.hpp"
#include "gateway/proxy_error.hpp"
#include "gateway/rate_limit_filter.hpp"
#include "gateway/request_record.hpp"
#include "gateway/snapshot.hpp"
#include "limiter/memory_backend.hpp"

using namespace phlow::gateway;
using phlow::gateway::test::FakeRequest;

TEST_CASE("proxy error: every error has one status, message and code, as SPEC.md's Responses say") {
  std::set<std::pair<int, std::string_view>> seen;
  for (std::size_t i = 0; i < kProxyErrors; ++i) {
    const auto error = static_cast<ProxyError>(i);
    const ProxyErrorInfo& info = describe(error);
    INFO(i << " " << info.message);
    CHECK(info.status >= 400);
    CHECK(info.status <= 599);
    CHECK(std::regex_match(std::string(info.code), std::regex("[A-Z][A-Z_]*[A-Z]")));
    // The body is the JSON the table names.
    const auto body = nlohmann::json::parse(proxy_error_body(error));
    CHECK(body.at("error") == info.message);
    CHECK(body.at("code") == info.code);
    // Upstream failures are 502/504 and counted; the client's own errors are 4xx, not counted.
    CHECK(info.counted_as.has_value() == (info.status >= 500));
    seen.insert({info.status, info.code});
  }
  CHECK(describe(ProxyError::upstream_unreachable).status == 502);
  CHECK(describe(ProxyError::upstream_timeout).status == 504);
  CHECK(describe(ProxyError::malformed_request).status == 400);
  CHECK(describe(ProxyError::headers_too_large).status == 431);
  CHECK(describe(ProxyError::body_too_large).status == 413);
  CHECK(describe(ProxyError::upstream_bad_response).counted_as == UpstreamError::bad_response);
  CHECK(describe(ProxyError::upstream_reset).counted_as == UpstreamError::reset);
  CHECK(describe(ProxyError::upstream_connect_timeout).counted_as == UpstreamError::connect_timeout);
}

TEST_CASE("proxy error: a head rejected before parsing gets 400, 431 or 414") {
  using V = HeadScanner::Verdict;
  CHECK(rejected_head_error(V::malformed, 10, 100) == ProxyError::malformed_request);
  CHECK(rejected_head_error(V::too_many_fields, 10, 100) == ProxyError::too_many_headers);
  CHECK(rejected_head_error(V::need_more, 10, 100) == ProxyError::headers_too_large);
  CHECK(rejected_head_error(V::need_more, 101, 100) == ProxyError::request_line_too_long);
  CHECK(rejected_head_error(V::need_more, 0, 100) == ProxyError::request_line_too_long);  // never ended
}

namespace {

// A snapshot of `yaml` plus a worker's in-memory limiter, as a worker holds them.
struct Harness {
  explicit Harness(const std::string& yaml) {
    auto loaded = phlow::config::load_config_string(yaml, phlow::config::Format::yaml, "test.yaml",
                                                    [](const std::string&) { return std::optional<std::string>(); });
    INFO(phlow::config::format_errors(loaded.errors));
    REQUIRE(loaded.ok());
    snapshot = std::make_shared<Snapshot>(loaded.config, 1, routes, limits);
    limiter = std::make_unique<phlow::limiter::FallbackBackend>(
        io.get_executor(), std::make_shared<phlow::limiter::MemoryBackend>(), nullptr,
        phlow::limiter::FailureMode::fallback);
  }
  const phlow::config::Route& route(std::size_t i) const { return snapshot->config->routes.at(i); }
  // The metric id of the limit `name`.
  std::size_t limit_id(const std::string& name) const {
    const auto& specs = snapshot->config->limits;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (specs[i].name() == name) return snapshot->limit_ids[i];
    }
    FAIL("no limit " << name);
    return 0;
  }

  boost::asio::io_context io;
  NameTable routes, limits;
  std::shared_ptr<const Snapshot> snapshot;
  std::unique_ptr<phlow::limiter::FallbackBackend> limiter;
  WorkerStats stats;
};

constexpr const char* kTwoLimits = R"(
upstreams: { app: { url: "http://127.0.0.1:9" } }
limits:
  per_token: { requests: 2, window: 1m, key: token_hash }
  per_agent: { requests: 5, window: 1m, key: agent_id }
routes:
  - match: { path_prefix: / }
    upstream: app
    limits: [per_agent, per_token]
response_headers: [x-ratelimit]
)";

std::uint64_t decisions(const WorkerStats& stats, std::size_t limit_id, Outcome outcome) {
  return stats.decisions[limit_id][static_cast<std::size_t>(outcome)].load();
}

}  // namespace

TEST_CASE("rate-limit filter: decides in memory, counts each limit, renders headers and the 429") {
  Harness h(kTwoLimits);
  RateLimitFilter filter;
  RequestRecord record;
  FakeRequest request;
  request.headers = {{"Authorization", "Bearer t0ken"}};  // no agent id: per_agent is skipped
  const std::size_t agent_id = h.limit_id("per_agent");
  const std::size_t token_id = h.limit_id("per_token");

  for (int i = 1; i <= 3; ++i) {
    INFO("request " << i);
    record.reset(std::chrono::steady_clock::now(), 0);
    REQUIRE(filter.start(*h.snapshot, h.route(0), request.view(), *h.limiter, h.stats, record, true));
    CHECK(filter.pending().size() == 1);  // in memory: decided at once
    CHECK(filter.allowed() == (i <= 2));
    CHECK(decisions(h.stats, agent_id, Outcome::skipped) == static_cast<std::uint64_t>(i));
    CHECK(std::string(filter.header_lines()).find("X-RateLimit-Limit: 2\r\n") != std::string::npos);
    CHECK(std::string(filter.header_lines())
              .find("X-RateLimit-Remaining: " + std::to_string(i <= 2 ? 2 - i : 0) + "\r\n") !=
          std::string::npos);
    CHECK(record.decision == (i <= 2 ? "allowed" : "limited"));
  }
  CHECK(decisions(h.stats, token_id, Outcome::allowed) == 2);
  CHECK(decisions(h.stats, token_id, Outcome::limited) == 1);
  // The last one was rejected: its 429 names the limit, the log its hashed identifier.
  const auto body = nlohmann::json::parse(filter.rejection_body());
  CHECK(body.at("limit") == "per_token");
  CHECK(body.at("retry_after").get<int>() >= 1);
  CHECK(record.limit == "per_token");
  CHECK(record.identifier == phlow::limiter::sha256_hex("t0ken"));
  CHECK(std::string(filter.header_lines()).find("Retry-After: ") != std::string::npos);
  CHECK(filter.header_names().size() == 4);  // Limit, Remaining, Reset, Retry-After
  CHECK(h.stats.top_limited(1).at(0).first == "per_token:" + phlow::limiter::sha256_hex("t0ken"));
}

TEST_CASE("rate-limit filter: a route whose identifiers are all missing checks nothing") {
  Harness h(kTwoLimits);
  RateLimitFilter filter;
  RequestRecord record;
  record.reset(std::chrono::steady_clock::now(), 0);
  FakeRequest anonymous;
  REQUIRE(filter.start(*h.snapshot, h.route(0), anonymous.view(), *h.limiter, h.stats, record, false));
  CHECK(filter.pending().empty());
  CHECK(filter.allowed());
  CHECK(filter.header_lines().empty());
  CHECK(record.decision == "none");
  CHECK(decisions(h.stats, h.limit_id("per_agent"), Outcome::skipped) == 1);
  CHECK(decisions(h.stats, h.limit_id("per_token"), Outcome::skipped) == 1);
}

TEST_CASE("request record: reset clears every field and one access-log line is written per response") {
  RequestRecord record;
  record.reset(std::chrono::steady_clock::now(), 7);
  record.status = 200;
  record.identifier = "abc";
  record.client_ip = "198.51.100.1";
  record.decision = "allowed";
  record.reset(std::chrono::steady_clock::now(), 3);
  CHECK(record.status == 0);
  CHECK(record.route_id == 3);
  CHECK(record.identifier.empty());
  CHECK(record.client_ip.empty());
  CHECK(record.decision == "none");
  CHECK_FALSE(record.upstream_start.has_value());

  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  {
    AccessLogBuffer log(AccessLogSink::from_fd(fds[1], true));
    record.append_to(log, "req-1", "203.0.113.9", "GET");  // no response: no line
    record.status = 429;
    record.limit = "auth";
    record.append_to(log, "req-2", "203.0.113.9", "POST");
    log.flush();
  }
  std::string text(4096, '\0');
  const auto n = ::read(fds[0], text.data(), text.size());
  ::close(fds[0]);
  REQUIRE(n > 0);
  text.resize(static_cast<std::size_t>(n));
  REQUIRE(std::count(text.begin(), text.end(), '\n') == 1);
  const auto line = nlohmann::json::parse(text);
  CHECK(line.at("request_id") == "req-2");
  CHECK(line.at("client_ip") == "203.0.113.9");  // the peer stands in for a missing client IP
  CHECK(line.at("status") == 429);
  CHECK(line.at("limit") == "auth");
}
