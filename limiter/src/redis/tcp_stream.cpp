#include "redis/tcp_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace phlow::limiter::redis {

namespace asio = boost::asio;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

Watchdog::Watchdog(const asio::any_io_executor& executor, Stream::Clock::time_point deadline,
                   std::function<void()> on_fire)
    : fired_(std::make_shared<bool>(false)) {
  auto timer = std::make_shared<asio::steady_timer>(executor, deadline);
  timer->async_wait([timer, fired = fired_, on_fire = std::move(on_fire)](error_code ec) {
    if (ec) return;
    *fired = true;
    on_fire();
  });
  timer_ = std::move(timer);
}

Watchdog::~Watchdog() { static_cast<asio::steady_timer*>(timer_.get())->cancel(); }

asio::awaitable<std::string> connect_tcp(asio::ip::tcp::socket& socket, std::shared_ptr<void> owner,
                                         const RedisNode& node, Stream::Clock::time_point deadline) {
  auto resolver = std::make_shared<asio::ip::tcp::resolver>(socket.get_executor());
  Watchdog watchdog(socket.get_executor(), deadline, [owner, resolver, &socket] {
    resolver->cancel();
    error_code ignored;
    socket.close(ignored);
  });
  auto [rec, endpoints] =
      co_await resolver->async_resolve(node.host, std::to_string(node.port), use_tuple);
  if (rec || watchdog.fired()) {
    co_return watchdog.fired() ? "resolving " + node.host + " timed out" : rec.message();
  }
  auto [cec, endpoint] = co_await asio::async_connect(socket, endpoints, use_tuple);
  if (cec || watchdog.fired()) {
    co_return "connect to " + node.endpoint() + ": " + (watchdog.fired() ? "timed out" : cec.message());
  }
  error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  co_return std::string{};
}

asio::awaitable<std::string> TcpStream::open(const RedisNode& node, Clock::time_point deadline) {
  co_return co_await connect_tcp(socket_, shared_from_this(), node, deadline);
}

void TcpStream::async_read_some(asio::mutable_buffer buffer, IoHandler handler) {
  keep_alive_while(shared_from_this(), std::move(handler),
                   [&](auto h) { socket_.async_read_some(buffer, std::move(h)); });
}

void TcpStream::async_write(asio::const_buffer buffer, IoHandler handler) {
  keep_alive_while(shared_from_this(), std::move(handler),
                   [&](auto h) { asio::async_write(socket_, buffer, std::move(h)); });
}

void TcpStream::close() {
  error_code ignored;
  socket_.close(ignored);
}

}  // namespace phlow::limiter::redis
