#include "redis/tls_stream.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <atomic>
#include <stdexcept>

#include "limiter/tls_client.hpp"
#include "redis/tcp_stream.hpp"

namespace phlow::limiter::redis {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);


Transport make_transport(const RedisOptions& options) {
  Transport transport;
  if (!options.url.tls) return transport;
  std::string why;
  transport.tls = make_tls_client_context(options.tls, why);
  if (!transport.tls) throw std::invalid_argument("redis.tls: " + why);
  transport.server_name = options.tls.server_name;
  transport.verify = options.tls.verify;
  if (!transport.verify) {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
      spdlog::warn("redis.tls.verify is false: the certificate of Redis at {} is NOT checked; "
                   "anyone on the path can read and change rate-limit traffic",
                   options.url.endpoint());
    }
  }
  return transport;
}

TlsStream::TlsStream(asio::any_io_executor executor, const Transport& transport)
    : context_(transport.tls),
      stream_(std::move(executor), *context_),
      server_name_(transport.server_name),
      verify_(transport.verify) {}

asio::awaitable<std::string> TlsStream::open(const RedisNode& node, Clock::time_point deadline) {
  auto self = shared_from_this();
  auto& socket = stream_.next_layer();
  if (std::string why = co_await connect_tcp(socket, self, node, deadline); !why.empty()) co_return why;
  const std::string& name = server_name_.empty() ? node.host : server_name_;
  SSL* ssl = stream_.native_handle();
  if (!prepare_tls_client(ssl, name, verify_)) {
    co_return "TLS to " + node.endpoint() + ": cannot verify the name \"" + name + "\"";
  }
  Watchdog watchdog(socket.get_executor(), deadline, [self, &socket] {
    error_code ignored;
    socket.close(ignored);
  });
  auto [ec] = co_await stream_.async_handshake(ssl::stream_base::client, use_tuple);
  if (watchdog.fired()) co_return "TLS handshake with " + node.endpoint() + ": timed out";
  if (ec) co_return "TLS handshake with " + node.endpoint() + ": " + tls_handshake_failure(ec, ssl);
  co_return std::string{};
}

void TlsStream::async_read_some(asio::mutable_buffer buffer, IoHandler handler) {
  keep_alive_while(shared_from_this(), std::move(handler),
                   [&](auto h) { stream_.async_read_some(buffer, std::move(h)); });
}

void TlsStream::async_write(asio::const_buffer buffer, IoHandler handler) {
  keep_alive_while(shared_from_this(), std::move(handler),
                   [&](auto h) { asio::async_write(stream_, buffer, std::move(h)); });
}

void TlsStream::close() {
  error_code ignored;
  stream_.next_layer().close(ignored);
}

}  // namespace phlow::limiter::redis

namespace phlow::limiter {

std::string check_tls(const RedisTls& tls) {
  std::string why;
  make_tls_client_context(tls, why);
  return why;
}

}  // namespace phlow::limiter
