#pragma once
// A store made by make_store() on a URL, run on the test's own io_context: connects in
// the constructor (5 s at most), checks one request or many from one loop turn.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "limiter/store_factory.hpp"

namespace phlow::test {

struct StoreRunner {
  explicit StoreRunner(const std::string& url, std::chrono::milliseconds timeout = std::chrono::seconds(1)) {
    limiter::RedisOptions options;
    options.url = std::get<limiter::RedisUrl>(limiter::parse_redis_url(url));
    options.timeout = timeout;
    health = std::make_shared<limiter::RedisHealth>(options.url.endpoint(), false);
    store = limiter::make_store(io.get_executor(), options, health);
    store->start();
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!store->ready() && std::chrono::steady_clock::now() < end) io.run_for(std::chrono::milliseconds(10));
  }
  ~StoreRunner() {
    store->stop();
    io.run_for(std::chrono::milliseconds(20));
  }
  // One check; nullopt when it failed (or took over 5 s).
  std::optional<limiter::Decision> check(std::span<const limiter::Descriptor> d, bool consume = true) {
    return run(d, consume ? limiter::CheckMode::consume : limiter::CheckMode::peek);
  }
  // Consumes each descriptor's cost unconditionally (cost_from_response).
  std::optional<limiter::Decision> debit(std::span<const limiter::Descriptor> d) {
    return run(d, limiter::CheckMode::debit);
  }
  std::optional<limiter::Decision> run(std::span<const limiter::Descriptor> d, limiter::CheckMode mode) {
    std::optional<limiter::Decision> out;
    bool done = false;
    store->async_check(d, mode, [&](boost::system::error_code ec, limiter::Decision got) {
      done = true;
      if (!ec) out = got;
    });
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done && std::chrono::steady_clock::now() < end) io.run_for(std::chrono::milliseconds(1));
    return out;
  }
  // Every check of `checks` issued from one handler (one loop turn), run until all are
  // answered (10 s at most); nullopt for a check that failed.
  std::vector<std::optional<limiter::Decision>> check_all(
      const std::vector<std::vector<limiter::Descriptor>>& checks) {
    std::vector<std::optional<limiter::Decision>> out(checks.size());
    std::size_t done = 0;
    boost::asio::post(io, [&] {
      for (std::size_t i = 0; i < checks.size(); ++i) {
        store->async_check(checks[i], limiter::CheckMode::consume, [&, i](boost::system::error_code ec, limiter::Decision d) {
          ++done;
          if (!ec) out[i] = d;
        });
      }
    });
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (done < checks.size() && std::chrono::steady_clock::now() < end) io.run_for(std::chrono::milliseconds(1));
    return out;
  }

  boost::asio::io_context io;
  std::shared_ptr<limiter::RedisHealth> health;
  std::unique_ptr<limiter::AsyncStore> store;
};

}  // namespace phlow::test
