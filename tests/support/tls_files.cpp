#include "support/tls_files.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace phlow::test {

namespace {

void run(const std::string& command) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) {
    throw std::runtime_error("tls_files: failed: " + command);
  }
}

// A key and a certificate for `cn` signed by the CA `ca` in `dir` (ca.crt, ca.key),
// with `san` as subjectAltName.
void make_signed(const std::string& dir, const std::string& name, const std::string& cn,
                 const std::string& san, const std::string& usage, const std::string& ca = "ca") {
  const std::string ext = dir + "/" + name + ".ext";
  std::ofstream(ext) << "subjectAltName=" << san << "\nextendedKeyUsage=" << usage
                     << "\nbasicConstraints=CA:FALSE\n";
  run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + dir +
      "/" + name + ".key -subj '/CN=" + cn + "' -out " + dir + "/" + name + ".csr");
  run("openssl x509 -req -in " + dir + "/" + name + ".csr -CA " + dir + "/" + ca + ".crt -CAkey " + dir +
      "/" + ca + ".key -CAcreateserial -days 2 -sha256 -extfile " + ext + " -out " + dir + "/" + name + ".crt");
}

void make_ca(const std::string& dir, const std::string& name, const std::string& cn) {
  run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + dir +
      "/" + name + ".key -subj '/CN=" + cn + "' -days 2 -sha256 -addext basicConstraints=critical,CA:TRUE"
      " -addext keyUsage=critical,keyCertSign,cRLSign -out " + dir + "/" + name + ".crt");
}

TlsFiles make() {
  char pattern[] = "/tmp/phlow-tls-XXXXXX";
  const char* made = ::mkdtemp(pattern);
  if (made == nullptr) throw std::runtime_error("tls_files: mkdtemp failed");
  TlsFiles f;
  f.dir = made;
  make_ca(f.dir, "ca", "phlow test CA");
  make_ca(f.dir, "other-ca", "some other CA");
  make_signed(f.dir, "server", "localhost", "DNS:localhost,IP:127.0.0.1", "serverAuth");
  make_signed(f.dir, "client", "phlow-gateway", "DNS:phlow-gateway", "clientAuth");
  make_signed(f.dir, "other-server", "localhost", "DNS:localhost,IP:127.0.0.1", "serverAuth", "other-ca");
  f.ca_cert = f.dir + "/ca.crt";
  f.other_ca_cert = f.dir + "/other-ca.crt";
  f.server_cert = f.dir + "/server.crt";
  f.server_key = f.dir + "/server.key";
  f.client_cert = f.dir + "/client.crt";
  f.client_key = f.dir + "/client.key";
  f.other_server_cert = f.dir + "/other-server.crt";
  f.other_server_key = f.dir + "/other-server.key";
  return f;
}

struct Holder {
  TlsFiles files = make();
  ~Holder() {
    std::error_code ignored;
    std::filesystem::remove_all(files.dir, ignored);
  }
};

}  // namespace

const TlsFiles& tls_files() {
  static const Holder holder;
  return holder.files;
}

std::vector<std::string> redis_tls_args(std::uint16_t tls_port, bool require_client_cert) {
  const TlsFiles& f = tls_files();
  return {"--tls-port", std::to_string(tls_port), "--tls-cert-file", f.server_cert,
          "--tls-key-file", f.server_key, "--tls-ca-cert-file", f.ca_cert,
          "--tls-auth-clients", require_client_cert ? "yes" : "no"};
}

}  // namespace phlow::test
