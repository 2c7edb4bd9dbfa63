#include "support/ws_client.hpp"

#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <openssl/ssl.h>

#include "proxy_stream.hpp"  // the gateway's plain-or-TLS stream, as the WebSocket's next layer

// What Beast's WebSocket needs of its next layer to close it (found by ADL).
namespace phlow::gateway::detail {

void teardown(boost::beast::role_type, ProxyStream& stream, boost::system::error_code& ec) {
  stream.socket().close(ec);
}

template <class Handler>
void async_teardown(boost::beast::role_type, ProxyStream& stream, Handler&& handler) {
  boost::system::error_code ec;
  stream.socket().close(ec);
  boost::asio::post(stream.get_executor(),
                    [h = std::forward<Handler>(handler), ec]() mutable { std::move(h)(ec); });
}

}  // namespace phlow::gateway::detail

namespace phlow::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using boost::system::error_code;

struct WsClient::Impl {
  net::io_context ioc;
  websocket::stream<phlow::gateway::detail::ProxyStream> ws{ioc.get_executor()};
  std::unique_ptr<net::ssl::context> tls_context;
  websocket::response_type answer;
  std::chrono::milliseconds timeout{};

  // Runs one async operation to completion within `limit`; returns its error. On
  // timeout the connection is closed and this throws.
  template <class Start>
  error_code run(const std::string& what, std::chrono::milliseconds limit, Start&& start) {
    error_code result = net::error::would_block;
    bool done = false;
    std::forward<Start>(start)([&](error_code ec, std::size_t = 0) {
      result = ec;
      done = true;
    });
    // Until the operation completes (the stream's deadline timer may stay armed).
    ioc.restart();
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done && ioc.run_one_until(until) > 0) {
    }
    if (!done) {
      ws.next_layer().socket().close();
      ioc.restart();
      while (!done && ioc.run_one() > 0) {
      }
      throw std::runtime_error("websocket " + what + " timed out after " + std::to_string(limit.count()) + " ms");
    }
    return result;
  }
};

WsClient::WsClient(std::uint16_t port, std::string target, const HeaderList& headers,
                   std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
  connect(port);
  upgrade(target, headers);
}

WsClient::WsClient(std::uint16_t port, const HttpsOptions& tls, std::string target,
                   std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
  connect(port);
  impl_->tls_context = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  impl_->tls_context->load_verify_file(tls.ca_file);
  SSL* ssl = SSL_new(impl_->tls_context->native_handle());
  auto& stream = impl_->ws.next_layer();
  stream.start_tls(ssl);
  SSL_set_tlsext_host_name(ssl, tls.server_name.c_str());
  SSL_set1_host(ssl, tls.server_name.c_str());
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  if (auto ec = impl_->run("TLS handshake", timeout, [&](auto handler) {
        stream.tls().next_layer().async_handshake(net::ssl::stream_base::client,
                                                  [handler](error_code e) { handler(e); });
      })) {
    throw std::runtime_error("websocket TLS handshake failed: " + ec.message());
  }
  upgrade(target, {});
}

void WsClient::connect(std::uint16_t port) {
  impl_->ws.read_message_max(64 * 1024 * 1024);
  const net::ip::tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  if (auto ec = impl_->run("connect", impl_->timeout, [&](auto handler) {
        impl_->ws.next_layer().next_layer().async_connect(endpoint, [handler](error_code e) { handler(e); });
      })) {
    throw std::runtime_error("websocket connect failed: " + ec.message());
  }
}

void WsClient::upgrade(const std::string& target, const HeaderList& headers) {
  impl_->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [name, value] : headers) req.set(name, value);
  }));
  const error_code ec = impl_->run("handshake", impl_->timeout, [&](auto handler) {
    impl_->ws.async_handshake(impl_->answer, "localhost", target, [handler](error_code e) { handler(e); });
  });
  if (ec && impl_->answer.result_int() == 0) throw std::runtime_error("websocket handshake failed: " + ec.message());
}

WsClient::~WsClient() = default;

int WsClient::status() const { return static_cast<int>(impl_->answer.result_int()); }

std::string WsClient::header(std::string_view name) const {
  return std::string(impl_->answer[beast::string_view(name.data(), name.size())]);
}

void WsClient::send(std::string_view text) {
  impl_->ws.text(true);
  if (auto ec = impl_->run("send", impl_->timeout, [&](auto handler) {
        impl_->ws.async_write(net::buffer(text.data(), text.size()), handler);
      })) {
    throw std::runtime_error("websocket send failed: " + ec.message());
  }
}

std::string WsClient::receive() {
  beast::flat_buffer message;
  if (auto ec = impl_->run("receive", impl_->timeout,
                           [&](auto handler) { impl_->ws.async_read(message, handler); })) {
    throw std::runtime_error("websocket receive failed: " + ec.message());
  }
  return beast::buffers_to_string(message.data());
}

bool WsClient::wait_closed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    beast::flat_buffer message;
    try {
      if (impl_->run("read", left, [&](auto handler) { impl_->ws.async_read(message, handler); })) return true;
    } catch (const std::runtime_error&) {
      return false;  // timed out: still open (now closed by us)
    }
  }
}

void WsClient::close() {
  impl_->run("close", impl_->timeout, [&](auto handler) {
    impl_->ws.async_close(websocket::close_code::normal, [handler](error_code e) { handler(e); });
  });
}

}  // namespace phlow::test
