#include "gateway/tls_server.hpp"

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <cstring>

namespace phlow::gateway {

namespace ssl = boost::asio::ssl;

namespace {

// ALPN: the gateway speaks HTTP/1.1 only. A client that offers other protocols only
// (h2 alone) gets no ALPN answer and may fall back, rather than a failed handshake.
int select_http11(SSL*, const unsigned char** out, unsigned char* out_length,
                  const unsigned char* offered, unsigned int offered_length, void*) {
  static constexpr unsigned char kHttp11[] = "\x08http/1.1";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, kHttp11, sizeof kHttp11 - 1, offered,
                            offered_length) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::shared_ptr<ssl::context> make_tls_server_context(const config::ServerTls& tls, std::string& why) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  // No renegotiation (a client-driven CPU cost), no compression (CRIME).
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_alpn_select_cb(native, select_http11, nullptr);
  boost::system::error_code ec;
  // The key first: a certificate loaded after a key it does not match leaves the check
  // below to say so in those words (loaded the other way, OpenSSL's message is "key
  // values mismatch").
  if (context->use_private_key_file(tls.key_file, ssl::context::pem, ec); ec) {
    why = "key_file: cannot load \"" + tls.key_file + "\": " + ec.message();
    return nullptr;
  }
  if (context->use_certificate_chain_file(tls.cert_file, ec); ec) {
    why = "cert_file: cannot load \"" + tls.cert_file + "\": " + ec.message();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    why = "key_file: \"" + tls.key_file + "\" is not the key of \"" + tls.cert_file + "\"";
    return nullptr;
  }
  return context;
}

}  // namespace phlow::gateway
