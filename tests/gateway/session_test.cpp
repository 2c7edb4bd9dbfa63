// The request path in-process, without a gateway process: one Worker (the proxy's
// session on its own thread and io_context) on a loopback acceptor, with a fake shared
// store in place of Redis, in front of the real demo upstream. Fast enough to run on
// every change to the request path: allowed, limited by the store, store failures
// decided by the fallback, unrouted, malformed, and an upstream that is not there.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "config/loader.hpp"
#include "gateway/server.hpp"
#include "gateway/snapshot.hpp"
#include "gateway/worker.hpp"
#include "limiter/async_store.hpp"
#include "support/demo_upstream.hpp"
#include "support/http_client.hpp"
#include "support/redis_server.hpp"

namespace net = boost::asio;
using namespace phlow;
using namespace phlow::test;

namespace {

// What the fake store decides, set by the test (any thread) and read by the worker.
struct StoreScript {
  std::mutex mutex;
  std::set<std::string> over_limit;  // keys it rejects
  bool fail = false;                 // every check fails (as a Redis timeout would)
  std::atomic<int> checks{0};
  std::atomic<int> resets{0};
};

// A shared store that answers from StoreScript, asynchronously, like Redis would.
class FakeStore final : public limiter::AsyncStore {
 public:
  FakeStore(net::any_io_executor executor, StoreScript& script)
      : executor_(std::move(executor)), script_(script) {}

  void start() override {}
  void stop() override {}
  bool ready() const override { return true; }
  void async_check(std::span<const limiter::Descriptor> descriptors, limiter::CheckMode, CheckHandler handler) override {
    ++script_.checks;
    limiter::Decision d;
    boost::system::error_code ec;
    {
      std::lock_guard lock(script_.mutex);
      if (script_.fail) {
        ec = net::error::timed_out;
      } else {
        d.source = limiter::DecisionSource::redis;
        d.count = descriptors.size();
        for (std::size_t i = 0; i < descriptors.size(); ++i) {
          limiter::LimitResult& r = d.results[i];
          const limiter::Limit& limit = *descriptors[i].limit;
          r.shadow = limit.shadow;
          r.limit = limit.quota();
          r.allowed = !script_.over_limit.contains(descriptors[i].key);
          r.remaining = r.allowed ? limit.quota() - 1 : 0;
          r.retry_after_ms = r.allowed ? 0 : 7'000;
          r.reset_ms = 1'000;
        }
        limiter::summarize(d);
      }
    }
    net::post(executor_, [h = std::move(handler), ec, d]() mutable { std::move(h)(ec, d); });
  }
  void async_reset(std::string_view, ResetHandler handler) override {
    ++script_.resets;
    net::post(executor_, [h = std::move(handler)]() mutable { std::move(h)(boost::system::error_code{}); });
  }
  void async_release(std::string_view, std::string_view, ResetHandler handler) override {
    net::post(executor_, [h = std::move(handler)]() mutable { std::move(h)(boost::system::error_code{}); });
  }
  void async_renew(std::string_view, std::string_view, std::int64_t, ResetHandler handler) override {
    net::post(executor_, [h = std::move(handler)]() mutable { std::move(h)(boost::system::error_code{}); });
  }
  void start_presence(std::string, std::string) override {}
  const limiter::RedisHealth* health() const override { return nullptr; }

 private:
  net::any_io_executor executor_;
  StoreScript& script_;
};

// One worker serving `yaml` on a loopback port, its store the fake one.
struct InProcessGateway {
  InProcessGateway(const std::string& yaml, StoreScript& script) {
    auto loaded = config::load_config_string(yaml, config::Format::yaml, "session.yaml",
                                             [](const std::string&) { return std::optional<std::string>(); });
    INFO(config::format_errors(loaded.errors));
    REQUIRE(loaded.ok());
    server = std::make_unique<gateway::Server>(loaded.config, "");
    snapshot = std::make_shared<gateway::Snapshot>(loaded.config, 1, routes, limits);
    worker = std::make_unique<gateway::Worker>(
        *server, snapshot, std::make_shared<limiter::MemoryBackend>(), nullptr, nullptr,
        [&script](net::any_io_executor executor) { return std::make_unique<FakeStore>(executor, script); });
    net::ip::tcp::acceptor acceptor(worker->io(), {net::ip::make_address("127.0.0.1"), 0});
    port = acceptor.local_endpoint().port();
    worker->run();
    worker->start(std::move(acceptor));
  }
  ~InProcessGateway() {
    worker->stop();
    worker->join();
  }

  gateway::NameTable routes, limits;
  std::unique_ptr<gateway::Server> server;
  std::shared_ptr<const gateway::Snapshot> snapshot;
  std::unique_ptr<gateway::Worker> worker;
  std::uint16_t port = 0;
};

std::string session_yaml(const DemoUpstream& upstream) {
  return "threads: 1\naccess_log: \"off\"\n"
         "upstreams:\n  app: { url: \"" + upstream.url() + "\" }\n"
         "  gone: { url: \"http://127.0.0.1:" + std::to_string(free_port()) + "\" }\n"
         "limits:\n  auth: { requests: 10, window: 1m, key: token_hash }\n"
         "routes:\n"
         "  - match: { path_prefix: /api }\n    upstream: app\n    limits: [auth]\n"
         "  - match: { path_prefix: /gone }\n    upstream: gone\n    limits: []\n";
}

std::string code_of(const HttpResponse& r) { return nlohmann::json::parse(r.body).at("code"); }

}  // namespace

TEST_CASE("session: the request path in-process with a fake store") {
  DemoUpstream upstream;
  StoreScript script;
  InProcessGateway gw(session_yaml(upstream), script);
  const HeaderList token = {{"Authorization", "Bearer session-token"}};
  const std::string key = "phlow:ratelimit:auth:" + limiter::sha256_hex("session-token");

  // Allowed by the store: forwarded, with the store's numbers in the headers.
  HttpResponse r = http_request(gw.port, "GET", "/api/x", token);
  CHECK(r.status == 200);
  CHECK(r.header("X-Upstream") == "phlow-demo-upstream");
  CHECK(r.header("X-RateLimit-Limit") == "10");
  CHECK(r.header("X-RateLimit-Remaining") == "9");
  CHECK(script.checks == 1);

  // Rejected by the store: 429, its retry-after, nothing forwarded.
  {
    std::lock_guard lock(script.mutex);
    script.over_limit.insert(key);
  }
  r = http_request(gw.port, "GET", "/api/x", token);
  CHECK(r.status == 429);
  CHECK(r.header("Retry-After") == "7");
  CHECK(nlohmann::json::parse(r.body).at("limit") == "auth");
  CHECK(script.checks == 2);

  // The store fails: the in-memory fallback decides. A token the store was rejecting
  // stays rejected until the retry time the store gave - here answered by the
  // over-limit cache, without a store call; another is allowed. Each failed check is
  // counted.
  {
    std::lock_guard lock(script.mutex);
    script.over_limit.clear();
    script.fail = true;
  }
  r = http_request(gw.port, "GET", "/api/x", token);
  CHECK(r.status == 429);
  r = http_request(gw.port, "GET", "/api/x", {{"Authorization", "Bearer another-token"}});
  CHECK(r.status == 200);
  CHECK(r.header("X-Upstream") == "phlow-demo-upstream");
  const auto& errors = gw.worker->stats().redis_errors;
  CHECK(errors[static_cast<std::size_t>(limiter::StoreError::connection)] +
            errors[static_cast<std::size_t>(limiter::StoreError::timeout)] ==
        1);
  CHECK(gw.worker->stats().over_limit_cache_hits.load() == 1);

  // No route, no token needed: 404 without a store call.
  const int before = script.checks;
  r = http_request(gw.port, "GET", "/elsewhere");
  CHECK(r.status == 404);
  CHECK(code_of(r) == "NO_ROUTE");
  CHECK(script.checks == before);

  // A route without limits to an upstream that is not there: 502, counted.
  r = http_request(gw.port, "GET", "/gone");
  CHECK(r.status == 502);
  CHECK(code_of(r) == "UPSTREAM_UNREACHABLE");
  CHECK(gw.worker->stats().upstream_errors[static_cast<std::size_t>(gateway::UpstreamError::connect_refused)] == 1);

  // A malformed request: 400, and the connection closes.
  HttpConnection raw(gw.port);
  raw.send_raw("GET /api/x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n");
  const std::string answer = raw.read_raw_until_close(std::chrono::seconds(5));
  CHECK(answer.rfind("HTTP/1.1 400 ", 0) == 0);
  CHECK(answer.find("\"code\":\"BAD_REQUEST\"") != std::string::npos);
  CHECK(script.checks == before);
}
