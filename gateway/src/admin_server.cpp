// The admin listener. The second (and last) translation unit with Beast's HTTP parser.
#include "gateway/admin_server.hpp"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "config/summary.hpp"
#include "gateway/build_info.hpp"
#include "gateway/rate_limit_response.hpp"
#include "gateway/snapshot.hpp"
#include "gateway/status_page.hpp"
#include "limiter/percent_decode.hpp"
#include "limiter/store_factory.hpp"
#include "limiter/descriptor.hpp"

namespace phlow::gateway {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

namespace {

struct Reply {
  http::status status = http::status::ok;
  std::string body;
  std::string content_type = "application/json";
};

Reply json_reply(http::status status, const nlohmann::json& body) {
  return {status, body.dump(), "application/json"};
}

Reply error_reply(http::status status, std::string_view message, std::string_view code) {
  return {status, error_body(message, code), "application/json"};
}

// An identifier as it appears in keys: printable ASCII, no space, bounded.
bool valid_identifier(std::string_view id) {
  if (id.empty() || id.size() > 512) return false;
  for (unsigned char c : id) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

// Compares bearer tokens in constant time (over their digests, so that not even the
// length leaks).
bool token_matches(std::string_view header, const std::string& token) {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() < kBearer.size() || !beast::iequals(header.substr(0, kBearer.size()), kBearer)) {
    return false;
  }
  const std::string given = limiter::sha256_hex(header.substr(kBearer.size()));
  const std::string wanted = limiter::sha256_hex(token);
  return CRYPTO_memcmp(given.data(), wanted.data(), given.size()) == 0;
}

// What /readyz says Redis is: standalone, sentinel or cluster; none without Redis.
std::string redis_topology(const config::Config& config) {
  if (config.redis.url.empty()) return "none";
  return std::string(limiter::to_string(config.redis.target.topology));
}

}  // namespace

class AdminServer::Connection {
 public:
  Connection(AdminServer& admin, tcp::socket socket) : admin_(admin), stream_(std::move(socket)) {}

  net::awaitable<void> run() {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(8 * 1024);
      parser.body_limit(64 * 1024);
      stream_.expires_after(std::chrono::seconds(30));
      auto [ec, n] = co_await http::async_read(stream_, buffer, parser, use_tuple);
      if (ec) break;
      const auto& req = parser.get();
      Reply reply = co_await handle(req);
      http::response<http::string_body> res{reply.status, req.version()};
      res.set(http::field::content_type, reply.content_type);
      res.set(http::field::cache_control, "no-store");
      res.body() = req.method() == http::verb::head ? std::string() : std::move(reply.body);
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream_, res, use_tuple);
      if (wec || !req.keep_alive()) break;
    }
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

 private:
  net::awaitable<Reply> handle(const http::request<http::string_body>& req);
  net::awaitable<Reply> limits(http::verb method, std::string_view rest);
  net::awaitable<Reply> inspect(const Snapshot& snap, std::size_t index, const std::string& id);
  net::awaitable<Reply> reset(const Snapshot& snap, std::size_t index, const std::string& id);

  AdminServer& admin_;
  beast::tcp_stream stream_;
};

net::awaitable<Reply> AdminServer::Connection::handle(const http::request<http::string_body>& req) {
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const bool read = req.method() == http::verb::get || req.method() == http::verb::head;
  const AdminSources& src = admin_.sources_;
  if (!path.starts_with("/admin/")) {
    if (!read) co_return error_reply(http::status::method_not_allowed, "Use GET", "METHOD_NOT_ALLOWED");
    if (path == "/healthz") co_return json_reply(http::status::ok, {{"status", "ok"}});
    if (path == "/readyz") {
      const auto snap = src.snapshot();
      co_return json_reply(http::status::ok, {{"status", "ready"},
                                              {"redis", src.redis_state()},
                                              {"redis_topology", redis_topology(*snap->config)},
                                              {"config_generation", snap->generation},
                                              {"uptime_seconds", src.uptime_seconds()},
                                              {"version", version()}});
    }
    if (path == "/metrics") {
      co_return Reply{http::status::ok, src.metrics_text(), "text/plain; version=0.0.4; charset=utf-8"};
    }
    if (path == "/status.json") co_return Reply{http::status::ok, src.status_json(), "application/json"};
    if (path == "/") co_return Reply{http::status::ok, std::string(kStatusPageHtml), "text/html; charset=utf-8"};
    co_return error_reply(http::status::not_found, "Not found", "NOT_FOUND");
  }
  const auto snap = src.snapshot();
  const std::string& token = snap->config->admin.token;
  if (!token.empty() && !token_matches(req[http::field::authorization], token)) {
    co_return error_reply(http::status::unauthorized, "Missing or wrong admin token", "UNAUTHORIZED");
  }
  if (path == "/admin/config") {
    if (!read) co_return error_reply(http::status::method_not_allowed, "Use GET", "METHOD_NOT_ALLOWED");
    co_return Reply{http::status::ok, config::to_redacted_json(*snap->config).dump(2), "application/json"};
  }
  constexpr std::string_view kLimits = "/admin/limits/";
  if (path.starts_with(kLimits)) co_return co_await limits(req.method(), path.substr(kLimits.size()));
  co_return error_reply(http::status::not_found, "Not found", "NOT_FOUND");
}

net::awaitable<Reply> AdminServer::Connection::limits(http::verb method, std::string_view rest) {
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos) {
    co_return error_reply(http::status::bad_request, "Use /admin/limits/<limit>/<identifier>", "BAD_PATH");
  }
  const auto name = limiter::percent_decode(rest.substr(0, slash), limiter::BadEscape::reject);
  const auto id = limiter::percent_decode(rest.substr(slash + 1), limiter::BadEscape::reject);
  if (!name || !id || !valid_identifier(*id)) {
    co_return error_reply(http::status::bad_request, "Invalid limit name or identifier", "BAD_IDENTIFIER");
  }
  const auto snap = admin_.sources_.snapshot();
  const auto index = snap->config->find_limit(*name);
  if (!index) co_return error_reply(http::status::not_found, "No such limit", "UNKNOWN_LIMIT");
  if (method == http::verb::get || method == http::verb::head) {
    co_return co_await inspect(*snap, *index, *id);
  }
  if (method == http::verb::delete_) co_return co_await reset(*snap, *index, *id);
  co_return error_reply(http::status::method_not_allowed, "Use GET or DELETE", "METHOD_NOT_ALLOWED");
}

net::awaitable<Reply> AdminServer::Connection::inspect(const Snapshot& snap, std::size_t index,
                                                       const std::string& id) {
  const limiter::Limit& limit = snap.limits[index];
  const limiter::Descriptor d{&limit, snap.keys.key_of_stored(limit.name, id)};
  limiter::LimitResult r;
  std::string store = "memory";
  limiter::AsyncStore* redis = admin_.redis_.get();
  if (redis != nullptr && redis->ready()) {
    auto [ec, decision] = co_await net::async_initiate<decltype(use_tuple),
                                                       void(error_code, limiter::Decision)>(
        [&](auto handler) { redis->async_check(std::span(&d, 1), limiter::CheckMode::peek, std::move(handler)); },
        use_tuple);
    if (!ec) {
      r = decision.results[0];
      store = "redis";
    } else {
      r = admin_.sources_.memory->peek(d);
    }
  } else {
    r = admin_.sources_.memory->peek(d);
  }
  // peek() describes the state after one more request; report the state now.
  const std::int64_t remaining = r.allowed ? r.remaining + 1 : 0;
  co_return json_reply(http::status::ok, {{"limit", limit.name},
                                          {"identifier", id},
                                          {"key", d.key},
                                          {"store", store},
                                          {"quota", limit.quota()},
                                          {"window_ms", limit.window_ms},
                                          {"used", limit.quota() - remaining},
                                          {"remaining", remaining},
                                          {"reset", (r.reset_ms + 999) / 1000}});
}

net::awaitable<Reply> AdminServer::Connection::reset(const Snapshot& snap, std::size_t index,
                                                     const std::string& id) {
  const std::string key = snap.keys.key_of_stored(snap.limits[index].name, id);
  admin_.sources_.memory->reset(key);
  if (admin_.sources_.forget_rejection) admin_.sources_.forget_rejection(key);
  limiter::AsyncStore* redis = admin_.redis_.get();
  if (redis != nullptr) {
    auto [ec] = co_await net::async_initiate<decltype(use_tuple), void(error_code)>(
        [&](auto handler) { redis->async_reset(key, std::move(handler)); }, use_tuple);
    if (ec) {
      co_return error_reply(http::status::service_unavailable,
                            "Reset in memory only: Redis is unavailable", "REDIS_UNAVAILABLE");
    }
  }
  spdlog::info("admin: reset {}", key);
  co_return json_reply(http::status::ok, {{"reset", true}, {"key", key}});
}

AdminServer::AdminServer(const config::Config& config, AdminSources sources)
    : sources_(std::move(sources)) {
  if (sources_.redis_health && !config.redis.url.empty()) {
    redis_ = limiter::make_store(io_.get_executor(), config.redis.store_options(),
                                 std::make_shared<limiter::RedisHealth>(config.redis.target.endpoint(), false));
  }
}

AdminServer::~AdminServer() { stop(); }

bool AdminServer::start(const config::ListenAddress& listen) {
  try {
    acceptor_ = std::make_unique<tcp::acceptor>(
        io_, tcp::endpoint(net::ip::make_address(listen.host), listen.port));
  } catch (const boost::system::system_error& e) {
    spdlog::error("admin: cannot listen on {}: {}", listen.to_string(), e.code().message());
    return false;
  }
  port_ = acceptor_->local_endpoint().port();
  if (redis_) redis_->start();
  net::co_spawn(io_, [this]() -> net::awaitable<void> {
    for (;;) {
      auto [ec, socket] = co_await acceptor_->async_accept(use_tuple);
      if (ec == net::error::operation_aborted) co_return;
      if (ec) continue;
      net::co_spawn(io_, [this, s = std::move(socket)]() mutable -> net::awaitable<void> {
        Connection connection(*this, std::move(s));
        co_await connection.run();
      }, net::detached);
    }
  }, net::detached);
  thread_ = std::thread([this] { io_.run(); });
  // As the proxy does: usage read right after startup comes from Redis, not from an
  // empty in-memory view, unless Redis is slow to answer (bounded).
  if (redis_) redis_->health()->wait_settled(limiter::kStartupWait);
  spdlog::info("admin listening on {}:{}", listen.host, port_);
  return true;
}

void AdminServer::stop() {
  if (!thread_.joinable()) return;
  net::post(io_, [this] {
    error_code ignored;
    if (acceptor_) acceptor_->close(ignored);
    if (redis_) redis_->stop();
  });
  io_.stop();
  thread_.join();
}

}  // namespace phlow::gateway
