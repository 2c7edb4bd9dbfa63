// TLS to a real redis-server (its --tls-port, certificates made by the fixture with
// openssl): checks decided over rediss://, and every way the handshake can fail
// turned into a connection failure whose cause is named.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <optional>

#include "limiter/distributed_rate_limiter.hpp"
#include "limiter/key_layout.hpp"
#include "limiter/store_factory.hpp"
#include "support/redis_server.hpp"
#include "support/tls_files.hpp"

using namespace phlow::limiter;
using phlow::test::RedisServer;
using phlow::test::redis_tls_args;
using phlow::test::tls_files;

namespace {

struct TlsRedis {
  explicit TlsRedis(bool require_client_cert = false)
      : tls_port(phlow::test::free_port()), server(redis_tls_args(tls_port, require_client_cert)) {}
  std::string url(const std::string& host = "localhost") const {
    return "rediss://" + host + ":" + std::to_string(tls_port);
  }
  std::uint16_t tls_port;
  RedisServer server;
};

RedisOptions options_for(const std::string& url, RedisTls tls) {
  RedisOptions o;
  o.url = std::get<RedisUrl>(parse_redis_url(url));
  o.tls = std::move(tls);
  o.timeout = std::chrono::milliseconds(500);
  return o;
}

struct Outcome {
  bool connected = false;
  std::string failure;  // the health's last failure
  std::optional<Decision> decision;
};

// Builds a store for `options`, waits for it to connect or fail (3 s at most), and
// when connected runs one check of limit "tls" (2 per minute) for `id`.
Outcome try_store(const RedisOptions& options, const std::string& id = "x") {
  boost::asio::io_context io;
  auto health = std::make_shared<RedisHealth>(options.url.endpoint(), false);
  auto store = make_store(io.get_executor(), options, health);
  store->start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!store->ready() && health->last_failure().empty() &&
         std::chrono::steady_clock::now() < deadline) {
    io.run_for(std::chrono::milliseconds(10));
  }
  Outcome out;
  out.connected = store->ready();
  out.failure = health->last_failure();
  if (out.connected) {
    static const Limit limit{.name = "tls", .requests = 2, .window_ms = 60'000};
    const Descriptor d{&limit, KeyLayout().key("tls", id)};
    store->async_check(std::span(&d, 1), phlow::limiter::CheckMode::consume, [&](boost::system::error_code ec, Decision got) {
      if (!ec) out.decision = got;
    });
    while (!out.decision && std::chrono::steady_clock::now() < deadline) {
      io.run_for(std::chrono::milliseconds(10));
    }
  }
  store->stop();
  io.run_for(std::chrono::milliseconds(20));
  return out;
}

}  // namespace

TEST_CASE("redis tls: checks are decided over rediss:// with the CA file, by name or by IP") {
  TlsRedis redis;
  const auto by_name = try_store(options_for(redis.url(), {.ca_file = tls_files().ca_cert}), "n");
  INFO(by_name.failure);
  REQUIRE(by_name.connected);
  REQUIRE(by_name.decision);
  CHECK(by_name.decision->source == DecisionSource::redis);
  CHECK(by_name.decision->results[0].remaining == 1);
  CHECK(log_units(redis.server, KeyLayout().key("tls", "n")) == "1");
  // 127.0.0.1 is verified against the certificate's IP entry.
  const auto by_ip = try_store(options_for(redis.url("127.0.0.1"), {.ca_file = tls_files().ca_cert}), "n");
  INFO(by_ip.failure);
  REQUIRE(by_ip.decision);
  CHECK(by_ip.decision->results[0].remaining == 0);
}

TEST_CASE("redis tls: a wrong CA, a wrong name or plain text fail as connections - with the cause") {
  TlsRedis redis;
  const auto wrong_ca = try_store(options_for(redis.url(), {.ca_file = tls_files().other_ca_cert}));
  CHECK_FALSE(wrong_ca.connected);
  CHECK(wrong_ca.failure.find("certificate verify failed") != std::string::npos);
  CHECK(wrong_ca.failure.find("localhost:" + std::to_string(redis.tls_port)) != std::string::npos);

  const auto wrong_name = try_store(
      options_for(redis.url(), {.ca_file = tls_files().ca_cert, .server_name = "redis.example"}));
  CHECK_FALSE(wrong_name.connected);
  CHECK(wrong_name.failure.find("hostname mismatch") != std::string::npos);

  // No trust store entry for the test CA: the system store does not know it.
  const auto system_store = try_store(options_for(redis.url(), {}));
  CHECK_FALSE(system_store.connected);
  CHECK(system_store.failure.find("certificate verify failed") != std::string::npos);

  // Plain RESP to the TLS port: the server never answers a handshake it cannot read;
  // the connect deadline ends it, nothing hangs.
  auto plain = options_for("redis://127.0.0.1:" + std::to_string(redis.tls_port), {});
  plain.connect_timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  const auto plain_outcome = try_store(plain);
  CHECK_FALSE(plain_outcome.connected);
  CHECK_FALSE(plain_outcome.failure.empty());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));

  // TLS to the plain port: the handshake fails at once.
  const auto tls_to_plain = try_store(options_for(
      "rediss://127.0.0.1:" + std::to_string(redis.server.port()), {.ca_file = tls_files().ca_cert}));
  CHECK_FALSE(tls_to_plain.connected);
  CHECK(tls_to_plain.failure.find("TLS handshake") != std::string::npos);
}

TEST_CASE("redis tls: verify false accepts any certificate") {
  TlsRedis redis;
  const auto any = try_store(
      options_for(redis.url(), {.ca_file = tls_files().other_ca_cert, .verify = false}));
  INFO(any.failure);
  CHECK(any.connected);
  REQUIRE(any.decision);
  CHECK(any.decision->source == DecisionSource::redis);
}

TEST_CASE("redis tls: a server that requires a client certificate gets one from cert_file") {
  TlsRedis redis(true);
  const auto without = try_store(options_for(redis.url(), {.ca_file = tls_files().ca_cert}));
  CHECK_FALSE(without.connected);
  CHECK_FALSE(without.failure.empty());
  const auto with = try_store(options_for(redis.url(), {.ca_file = tls_files().ca_cert,
                                                        .cert_file = tls_files().client_cert,
                                                        .key_file = tls_files().client_key}));
  INFO(with.failure);
  CHECK(with.connected);
  REQUIRE(with.decision);
  CHECK(with.decision->source == DecisionSource::redis);
}

TEST_CASE("redis tls: files that do not load are refused before anything connects") {
  CHECK(check_tls({.ca_file = "/nonexistent/ca.crt"}).starts_with("ca_file: cannot load"));
  CHECK(check_tls({.cert_file = tls_files().client_cert}) == "cert_file and key_file go together");
  const std::string mismatch =
      check_tls({.cert_file = tls_files().client_cert, .key_file = tls_files().server_key});
  INFO(mismatch);
  CHECK(mismatch.starts_with("key_file: "));  // OpenSSL: key values mismatch
  CHECK(check_tls({.ca_file = tls_files().ca_cert}).empty());
  boost::asio::io_context io;
  CHECK_THROWS_WITH(make_store(io.get_executor(),
                               options_for("rediss://h:1", {.ca_file = "/nonexistent/ca.crt"}),
                               std::make_shared<RedisHealth>("h:1", false)),
                    Catch::Contains("redis.tls: ca_file: cannot load"));
}

TEST_CASE("redis tls: the library takes rediss:// with its TLS settings") {
  TlsRedis redis;
  LimiterOptions options;
  options.name = "lib-tls";
  options.tls = {.ca_file = tls_files().ca_cert};
  DistributedRateLimiter limiter(2, 60'000, redis.url(), options);
  CHECK(limiter.is_allowed("u"));
  CHECK(limiter.is_allowed("u"));
  CHECK_FALSE(limiter.is_allowed("u"));
  CHECK(log_units(redis.server, KeyLayout().key("lib-tls", "u")) == "2");
}
