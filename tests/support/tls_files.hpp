#pragma once
// Throwaway certificates for TLS tests, made once per test process with the `openssl`
// command line in a temporary directory: a CA, a server certificate it signed (for
// "localhost" and 127.0.0.1), a client certificate it signed, and a second CA (a wrong
// trust anchor for the first's certificates) with a server certificate of its own (a
// rotated certificate). EC P-256 keys: quick to make.

#include <cstdint>
#include <string>
#include <vector>

namespace phlow::test {

struct TlsFiles {
  std::string dir;
  std::string ca_cert;
  std::string server_cert;  // SAN: DNS:localhost, IP:127.0.0.1
  std::string server_key;
  std::string client_cert;
  std::string client_key;
  std::string other_ca_cert;
  std::string other_server_cert;  // for localhost and 127.0.0.1, signed by the other CA
  std::string other_server_key;
};

// Made on first use; throws std::runtime_error when openssl fails.
const TlsFiles& tls_files();

// redis-server arguments for a TLS port `tls_port` beside its plain port (which the
// test's own commands keep using), serving tls_files()'s server certificate;
// `require_client_cert` makes it ask for (and verify) a client certificate.
std::vector<std::string> redis_tls_args(std::uint16_t tls_port, bool require_client_cert = false);

}  // namespace phlow::test
