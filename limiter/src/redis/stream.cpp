#include "redis/stream.hpp"

#include "redis/tcp_stream.hpp"
#include "redis/tls_stream.hpp"

namespace phlow::limiter::redis {

std::shared_ptr<Stream> make_stream(boost::asio::any_io_executor executor, const Transport& transport) {
  if (transport.tls) return std::make_shared<TlsStream>(std::move(executor), transport);
  return std::make_shared<TcpStream>(std::move(executor));
}

}  // namespace phlow::limiter::redis
