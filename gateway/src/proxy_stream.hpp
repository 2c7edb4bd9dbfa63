#pragma once
// One connection of the proxy, to a client or to an upstream: plain TCP, or TLS over
// the same TCP stream once start_tls() is called. The request path is written once
// against this type; each operation takes one branch on the kind.
//
// Both kinds give the same completion-token result (the return type of an initiation
// depends on the token and the signature only), so any Asio token works. The lowest
// layer (beast::get_lowest_layer) is the DeadlineStream in either case: deadlines set
// there cover TLS reads and writes as well.

#include <openssl/ssl.h>

#include <optional>
#include <utility>

#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_stream.hpp>

#include "deadline_stream.hpp"

namespace phlow::gateway::detail {

class ProxyStream {
 public:
  // flat_stream: a buffer sequence (head, chunk size, body piece, ...) becomes one TLS
  // record where possible, not one record and one write system call per piece.
  using Tls = boost::beast::flat_stream<boost::asio::ssl::stream<DeadlineStream>>;
  using executor_type = DeadlineStream::executor_type;

  explicit ProxyStream(boost::asio::ip::tcp::socket socket) : plain_(std::move(socket)) {}
  explicit ProxyStream(const executor_type& executor) : plain_(executor) {}

  // Layers TLS over the connection, with `ssl` (owned from here, made by SSL_new);
  // the handshake is the caller's.
  void start_tls(SSL* ssl) { tls_.emplace(std::move(plain_), ssl); }

  bool is_tls() const { return tls_.has_value(); }
  Tls& tls() { return *tls_; }
  SSL* native_tls() { return tls_->next_layer().native_handle(); }

  DeadlineStream& next_layer() { return tls_ ? tls_->next_layer().next_layer() : plain_; }
  boost::asio::ip::tcp::socket& socket() { return next_layer().socket(); }
  executor_type get_executor() { return next_layer().get_executor(); }

  void expires_after(std::chrono::steady_clock::duration timeout) { next_layer().expires_after(timeout); }
  void expires_never() { next_layer().expires_never(); }
  void cancel() { next_layer().cancel(); }
  void close() { next_layer().close(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Token>(token));
    return plain_.async_read_some(buffers, std::forward<Token>(token));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    if (tls_) return tls_->async_write_some(buffers, std::forward<Token>(token));
    return plain_.async_write_some(buffers, std::forward<Token>(token));
  }

 private:
  DeadlineStream plain_;  // moved into tls_ by start_tls()
  std::optional<Tls> tls_;
};

}  // namespace phlow::gateway::detail
