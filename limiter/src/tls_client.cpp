#include "limiter/tls_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

namespace phlow::limiter {

namespace ssl = boost::asio::ssl;
using boost::system::error_code;

std::shared_ptr<ssl::context> make_tls_client_context(const TlsClientOptions& tls, std::string& why) {
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

bool prepare_tls_client(SSL* ssl, const std::string& name, bool verify) {
  error_code not_ip;
  boost::asio::ip::make_address(name, not_ip);
  if (not_ip) SSL_set_tlsext_host_name(ssl, name.c_str());  // no SNI for an address
  if (!verify) {
    SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
    return true;
  }
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const int set = not_ip ? X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size())
                         : X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
  if (set != 1) return false;
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  return true;
}

std::string tls_handshake_failure(const error_code& ec, SSL* ssl) {
  std::string why = ec.message();
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
  return why;
}

}  // namespace phlow::limiter
