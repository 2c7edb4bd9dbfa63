#include "redis/tls_stream.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <atomic>
#include <stdexcept>

#include "redis/tcp_stream.hpp"

namespace phlow::limiter::redis {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

// The context for `tls`, or why not (names files, never their contents).
std::shared_ptr<ssl::context> build_context(const RedisTls& tls, std::string& why) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  error_code ec;
  if (tls.ca_file.empty()) {
    context->set_default_verify_paths(ec);
    if (ec) {
      why = "cannot load the system trust store: " + ec.message();
      return nullptr;
    }
  } else if (context->load_verify_file(tls.ca_file, ec); ec) {
    why = "ca_file: cannot load \"" + tls.ca_file + "\": " + ec.message();
    return nullptr;
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    why = "cert_file and key_file go together";
    return nullptr;
  }
  if (!tls.cert_file.empty()) {
    if (context->use_certificate_chain_file(tls.cert_file, ec); ec) {
      why = "cert_file: cannot load \"" + tls.cert_file + "\": " + ec.message();
      return nullptr;
    }
    if (context->use_private_key_file(tls.key_file, ssl::context::pem, ec); ec) {
      why = "key_file: cannot load \"" + tls.key_file + "\": " + ec.message();
      return nullptr;
    }
    if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
      why = "key_file: \"" + tls.key_file + "\" is not the key of \"" + tls.cert_file + "\"";
      return nullptr;
    }
  }
  return context;
}

// Why the handshake failed, with OpenSSL's verification result when that was the cause
// ("certificate verify failed (unable to get local issuer certificate)").
std::string handshake_failure(const error_code& ec, SSL* ssl) {
  std::string why = ec.message();
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
  return why;
}

}  // namespace

Transport make_transport(const RedisOptions& options) {
  Transport transport;
  if (!options.url.tls) return transport;
  std::string why;
  transport.tls = build_context(options.tls, why);
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
  error_code not_ip;
  asio::ip::make_address(name, not_ip);
  SSL* ssl = stream_.native_handle();
  if (not_ip) SSL_set_tlsext_host_name(ssl, name.c_str());  // no SNI for an address
  if (verify_) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = not_ip ? X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size())
                           : X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    if (set != 1) co_return "TLS to " + node.endpoint() + ": cannot verify the name \"" + name + "\"";
    stream_.set_verify_mode(ssl::verify_peer);
  } else {
    stream_.set_verify_mode(ssl::verify_none);
  }
  Watchdog watchdog(socket.get_executor(), deadline, [self, &socket] {
    error_code ignored;
    socket.close(ignored);
  });
  auto [ec] = co_await stream_.async_handshake(ssl::stream_base::client, use_tuple);
  if (watchdog.fired()) co_return "TLS handshake with " + node.endpoint() + ": timed out";
  if (ec) co_return "TLS handshake with " + node.endpoint() + ": " + handshake_failure(ec, ssl);
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
  redis::build_context(tls, why);
  return why;
}

}  // namespace phlow::limiter
