#pragma once
// TLS as a client: how a peer's certificate is checked and the client's own certificate
// when the peer asks for one. One way to load trust, certificates and names, shared by
// the Redis client (rediss://) and the gateway's https:// upstreams.

#include <memory>
#include <string>

#include <boost/system/error_code.hpp>

struct ssl_st;  // OpenSSL's SSL

namespace boost::asio::ssl {
class context;
}

namespace phlow::limiter {

struct TlsClientOptions {
  std::string ca_file;      // PEM CA certificates; empty: the system trust store
  std::string cert_file;    // client certificate chain (PEM), with key_file
  std::string key_file;     // its private key (PEM); never logged
  std::string server_name;  // the name verified and sent as SNI; empty: the peer's host
  bool verify = true;       // false: any certificate is accepted (the caller warns)
  bool operator==(const TlsClientOptions&) const = default;
};

// A TLS 1.2+ client context for `options`, or null with `why` set ("ca_file: cannot
// load ...", a certificate without its key). Names files, never their contents.
std::shared_ptr<boost::asio::ssl::context> make_tls_client_context(const TlsClientOptions& options,
                                                                   std::string& why);

// Prepares the connection `ssl` to a peer called `name` (a host name or an address):
// SNI for a host name, and, when `verify`, verification of the chain and of the name
// (no partial wildcards). False when the name cannot be set for verification.
bool prepare_tls_client(ssl_st* ssl, const std::string& name, bool verify);

// Why a handshake failed, with OpenSSL's verification result when that was the cause
// ("certificate verify failed (unable to get local issuer certificate)").
std::string tls_handshake_failure(const boost::system::error_code& ec, ssl_st* ssl);

}  // namespace phlow::limiter
