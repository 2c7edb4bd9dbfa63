#pragma once
// The listener's TLS context (top-level `tls`): TLS 1.2+, the certificate chain and key
// of the config, ALPN http/1.1. Built with each config snapshot, so a SIGHUP rereads
// the files (certificate rotation) and a bad pair fails the reload, not the listener.

#include <memory>
#include <string>

#include "config/config.hpp"

namespace boost::asio::ssl {
class context;
}

namespace phlow::gateway {

// The context, or null with `why` set ("cert_file: cannot load ...", "key_file: ... is
// not the key of ..."). Names files, never their contents.
std::shared_ptr<boost::asio::ssl::context> make_tls_server_context(const config::ServerTls& tls,
                                                                   std::string& why);

}  // namespace phlow::gateway
