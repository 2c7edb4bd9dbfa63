#pragma once
// TLS to a Redis node (rediss://, rediss+sentinel://, rediss+cluster://): TCP, then a
// TLS 1.2+ handshake inside the same connect deadline, verifying the chain and the
// name (a host name, or the IP entry for an address) unless verification is off.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "redis/stream.hpp"

namespace phlow::limiter::redis {

class TlsStream final : public Stream, public std::enable_shared_from_this<TlsStream> {
 public:
  TlsStream(boost::asio::any_io_executor executor, const Transport& transport);

  boost::asio::awaitable<std::string> open(const RedisNode& node,
                                           Clock::time_point deadline) override;
  void async_read_some(boost::asio::mutable_buffer buffer, IoHandler handler) override;
  void async_write(boost::asio::const_buffer buffer, IoHandler handler) override;
  void close() override;
  bool is_open() const override { return stream_.next_layer().is_open(); }

 private:
  std::shared_ptr<boost::asio::ssl::context> context_;  // outlives stream_
  boost::asio::ssl::stream<boost::asio::ip::tcp::socket> stream_;
  std::string server_name_;
  bool verify_;
};

}  // namespace phlow::limiter::redis
