#pragma once
// The byte stream under one Redis connection. A transport (plain TCP, TLS) is a class
// implementing Stream in its own file plus a line in make_stream(). A stream serves
// one connection attempt: a reconnect opens a new one. Its asynchronous operations
// keep the stream alive until they complete, so the connection can drop an old
// stream while a read is still pending.

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "limiter/redis_options.hpp"
#include "limiter/redis_url.hpp"

namespace boost::asio::ssl {
class context;
}

namespace phlow::limiter::redis {

class Stream {
 public:
  using Clock = std::chrono::steady_clock;
  using IoHandler =
      boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;

  virtual ~Stream() = default;

  // Connects to `node` (and completes whatever handshake the transport has) before
  // `deadline`. Returns "" when open, else why not (names no secret).
  virtual boost::asio::awaitable<std::string> open(const RedisNode& node,
                                                   Clock::time_point deadline) = 0;
  virtual void async_read_some(boost::asio::mutable_buffer buffer, IoHandler handler) = 0;
  // Writes all of `buffer`.
  virtual void async_write(boost::asio::const_buffer buffer, IoHandler handler) = 0;
  // Cancels pending operations and closes; idempotent.
  virtual void close() = 0;
  virtual bool is_open() const = 0;
};

// Stream's operations for any completion token (use_awaitable, a callback, ...).
template <class Token>
auto async_read_some(Stream& stream, boost::asio::mutable_buffer buffer, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      [&stream, buffer](auto handler) { stream.async_read_some(buffer, std::move(handler)); },
      token);
}
template <class Token>
auto async_write(Stream& stream, boost::asio::const_buffer buffer, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      [&stream, buffer](auto handler) { stream.async_write(buffer, std::move(handler)); }, token);
}

// For Stream implementations: starts `operation(h)` with a handler `h` that keeps
// `self` (the stream) alive until it has run `handler`.
template <class Self, class Operation>
void keep_alive_while(std::shared_ptr<Self> self, Stream::IoHandler handler, Operation operation) {
  operation([self = std::move(self), h = std::move(handler)](boost::system::error_code ec,
                                                             std::size_t n) mutable {
    std::move(h)(ec, n);
  });
}

// How the connections of one store reach their nodes: plain TCP, or TLS with one
// OpenSSL context shared by all of them (built once from the settings).
struct Transport {
  std::shared_ptr<boost::asio::ssl::context> tls;  // null: plain TCP
  std::string server_name;                         // empty: each node's host
  bool verify = true;
};

// The transport `options` ask for. Throws std::invalid_argument (check_tls's message)
// when its TLS files do not load; warns once when verification is off.
Transport make_transport(const RedisOptions& options);

// A new, unopened stream of `transport`.
std::shared_ptr<Stream> make_stream(boost::asio::any_io_executor executor, const Transport& transport);

}  // namespace phlow::limiter::redis
