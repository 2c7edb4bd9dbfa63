#pragma once
// Plain TCP to a Redis node (redis://), and the TCP connect that TLS starts with.

#include <boost/asio/ip/tcp.hpp>
#include <functional>

#include "redis/stream.hpp"

namespace phlow::limiter::redis {

// Resolves `node` and connects `socket` before `deadline` (then closing it).
// `owner` keeps the socket alive for the watchdog that may outlive the call. Returns
// "" when connected (TCP_NODELAY set), else why not.
boost::asio::awaitable<std::string> connect_tcp(boost::asio::ip::tcp::socket& socket,
                                                std::shared_ptr<void> owner, const RedisNode& node,
                                                Stream::Clock::time_point deadline);

// Runs `on_fire` at `deadline` unless destroyed first: bounds a connect or a TLS
// handshake by closing its socket. `on_fire` must own what it touches: it may run
// after the watchdog's scope is gone.
class Watchdog {
 public:
  Watchdog(const boost::asio::any_io_executor& executor, Stream::Clock::time_point deadline,
           std::function<void()> on_fire);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  bool fired() const { return *fired_; }

 private:
  std::shared_ptr<bool> fired_;
  std::shared_ptr<void> timer_;  // a steady_timer, kept by its pending wait
};

class TcpStream final : public Stream, public std::enable_shared_from_this<TcpStream> {
 public:
  explicit TcpStream(boost::asio::any_io_executor executor) : socket_(std::move(executor)) {}

  boost::asio::awaitable<std::string> open(const RedisNode& node,
                                           Clock::time_point deadline) override;
  void async_read_some(boost::asio::mutable_buffer buffer, IoHandler handler) override;
  void async_write(boost::asio::const_buffer buffer, IoHandler handler) override;
  void close() override;
  bool is_open() const override { return socket_.is_open(); }

 private:
  boost::asio::ip::tcp::socket socket_;
};

}  // namespace phlow::limiter::redis
