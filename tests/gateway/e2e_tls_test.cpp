// End-to-end TLS at the edge: the HTTPS listener (verifying clients, ALPN, limits,
// X-Forwarded-Proto, plain HTTP and broken handshakes counted and closed, certificate
// rotation by SIGHUP) and https:// upstreams (right CA, wrong CA, verify off, pooled
// connections). Real processes and certificates made by the fixture with openssl.
#include <catch2/catch.hpp>

#include <csignal>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "metrics_scrape.hpp"
#include "support/demo_upstream.hpp"
#include "support/e2e.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/tls_files.hpp"

using namespace phlow::test;
using namespace std::chrono_literals;

namespace {

std::string tls_section(const std::string& cert, const std::string& key) {
  return "tls:\n  cert_file: \"" + cert + "\"\n  key_file: \"" + key + "\"\n";
}

// An HTTPS gateway in front of `upstream`: 3 requests per minute per client IP.
std::string https_gateway_yaml(const DemoUpstream& upstream, const std::string& cert,
                               const std::string& key, const std::string& extra = "") {
  return "listen: \"127.0.0.1:0\"\nthreads: 2\naccess_log: \"off\"\n" + tls_section(cert, key) +
         "upstreams:\n  app: { url: \"" + upstream.url() +
         "\" }\nlimits:\n  per_ip: { requests: 3, window: 1m, key: ip }\n"
         "routes:\n  - match: { path_prefix: / }\n    upstream: app\n    limits: [per_ip]\n" + extra;
}

HttpsOptions trusting(const std::string& ca) { return HttpsOptions{ca, "localhost", "http/1.1"}; }

double tls_errors(std::uint16_t admin, const std::string& reason) {
  return metric(scrape(admin), "phlow_gateway_tls_handshake_errors_total{reason=\"" + reason + "\"}");
}

}  // namespace

TEST_CASE("e2e tls: the HTTPS listener serves a verifying client with exact limits") {
  DemoUpstream upstream;
  GatewayProcess gateway(https_gateway_yaml(upstream, tls_files().server_cert, tls_files().server_key));
  HttpConnection client(gateway.port(), trusting(tls_files().ca_cert));
  CHECK(client.alpn_selected() == "http/1.1");
  const HttpResponse first = client.request("GET", "/headers");
  REQUIRE(first.status == 200);
  const auto seen = nlohmann::json::parse(first.body);
  CHECK(seen.at("x-forwarded-proto") == "https");
  CHECK(client.request("GET", "/").status == 200);
  CHECK(client.request("GET", "/").status == 200);
  const HttpResponse limited = client.request("GET", "/");  // the 4th of 3 per minute
  CHECK(limited.status == 429);
  CHECK(limited.header("Retry-After") != "");
  // A client that trusts another CA refuses the certificate.
  CHECK_THROWS_WITH(HttpConnection(gateway.port(), trusting(tls_files().other_ca_cert)),
                    Catch::Contains("TLS handshake"));
  // The client gives up first; the gateway counts when the client's alert reaches it.
  CHECK(wait_until([&] { return tls_errors(gateway.admin_port(), "failed") == 1; }, 2s));
  CHECK(metric(scrape(gateway.admin_port()), "phlow_gateway_tls_handshakes_total{side=\"client\"}") == 1);
}

TEST_CASE("e2e tls: plain HTTP and broken handshakes are counted and closed and hurt nobody") {
  DemoUpstream upstream;
  GatewayProcess gateway(https_gateway_yaml(upstream, tls_files().server_cert, tls_files().server_key,
                                            "http: { header_timeout: 500ms }\n"));
  HttpConnection verified(gateway.port(), trusting(tls_files().ca_cert));
  REQUIRE(verified.request("GET", "/").status == 200);

  // A plain-HTTP request on the TLS port: closed without an HTTP answer.
  {
    HttpConnection plain(gateway.port());
    plain.send_raw("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    const std::string answer = plain.read_raw_until_close(3s);
    CHECK(answer.find("HTTP/1.1") == std::string::npos);
  }
  CHECK(wait_until([&] { return tls_errors(gateway.admin_port(), "plain_http") == 1; }, 2s));

  // Aborted handshakes and garbage from many clients while the verified client goes on.
  std::vector<std::thread> abusers;
  for (int t = 0; t < 4; ++t) {
    abusers.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        HttpConnection raw(gateway.port());
        static constexpr char kGarbage[] = "\x16\x03\x01\x00\x05garbage";  // a record header, then junk
        raw.send_raw(std::string(kGarbage, sizeof kGarbage - 1));
        raw.close();
      }
    });
  }
  for (int i = 0; i < 2; ++i) CHECK(verified.request("GET", "/headers").status == 200);
  for (auto& t : abusers) t.join();
  CHECK(wait_until([&] { return tls_errors(gateway.admin_port(), "failed") >= 1; }, 2s));

  // A client that connects and says nothing is cut at http.header_timeout.
  {
    HttpConnection silent(gateway.port());
    const auto start = std::chrono::steady_clock::now();
    CHECK(silent.read_raw_until_close(3s).empty());
    CHECK(std::chrono::steady_clock::now() - start >= 400ms);
  }
  CHECK(wait_until([&] { return tls_errors(gateway.admin_port(), "timeout") == 1; }, 2s));
  CHECK(gateway.process().running());
  HttpConnection after(gateway.port(), trusting(tls_files().ca_cert));
  CHECK(after.request("GET", "/").status == 429);  // the 4th request of this client IP
}

TEST_CASE("e2e tls: SIGHUP rotates the certificate for new connections and keeps a good one") {
  DemoUpstream upstream;
  const TlsFiles& f = tls_files();
  GatewayProcess gateway(https_gateway_yaml(upstream, f.server_cert, f.server_key));
  HttpConnection before(gateway.port(), trusting(f.ca_cert));
  REQUIRE(before.request("GET", "/").status == 200);

  gateway.rewrite_config(https_gateway_yaml(upstream, f.other_server_cert, f.other_server_key));
  gateway.process().signal(SIGHUP);
  REQUIRE(gateway.process().wait_for_output("config reloaded from", 5s));
  HttpConnection rotated(gateway.port(), trusting(f.other_ca_cert));
  CHECK(rotated.request("GET", "/").status == 200);
  CHECK_THROWS_WITH(HttpConnection(gateway.port(), trusting(f.ca_cert)), Catch::Contains("TLS handshake"));
  CHECK(before.request("GET", "/").status == 200);  // an open connection goes on

  // A certificate with somebody else's key: the reload fails, the rotated pair stays.
  gateway.rewrite_config(https_gateway_yaml(upstream, f.other_server_cert, f.server_key));
  gateway.process().signal(SIGHUP);
  REQUIRE(gateway.process().wait_for_output("failed; the running config stays in force", 5s));
  CHECK(gateway.process().output().find("is not the key of") != std::string::npos);
  HttpConnection still(gateway.port(), trusting(f.other_ca_cert));
  CHECK(still.request("GET", "/").status == 429);  // 4th request of this IP: limits kept too
  const Exposition e = scrape(gateway.admin_port());
  CHECK(metric(e, "phlow_gateway_config_reloads_total{result=\"failed\"}") == 1);
  // The admin API shows file names, never key material.
  const std::string shown = http_request(gateway.admin_port(), "GET", "/admin/config").body;
  CHECK(nlohmann::json::parse(shown).at("tls").at("cert_file") == f.other_server_cert);
  CHECK(shown.find("PRIVATE KEY") == std::string::npos);
}

TEST_CASE("e2e tls: --check refuses a certificate without its key") {
  DemoUpstream upstream;
  const std::string dir = temp_dir();
  const std::string path = write_file(
      dir, "gateway.yaml", https_gateway_yaml(upstream, tls_files().server_cert, tls_files().other_server_key));
  const RunResult bad = run_gateway({"--config", path, "--check"});
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("tls: key_file: \"" + tls_files().other_server_key + "\" is not the key of") !=
        std::string::npos);
  write_file(dir, "gateway.yaml", https_gateway_yaml(upstream, tls_files().server_cert, tls_files().server_key));
  const RunResult good = run_gateway({"--config", path, "--check"});
  CHECK(good.exit_code == 0);
  CHECK(good.out.find("tls        HTTPS with " + tls_files().server_cert) != std::string::npos);
  CHECK(good.out.find("PRIVATE KEY") == std::string::npos);
}

TEST_CASE("e2e tls: https upstreams verify the certificate and pool their connections") {
  DemoUpstream upstream;
  const TlsFiles& f = tls_files();
  // The https upstream: an HTTPS gateway with no limits in front of the demo upstream.
  GatewayProcess edge("listen: \"127.0.0.1:0\"\nthreads: 1\naccess_log: \"off\"\n" +
                      tls_section(f.server_cert, f.server_key) + "upstreams:\n  app: { url: \"" +
                      upstream.url() + "\" }\nroutes:\n  - { match: { path_prefix: / }, upstream: app, limits: [] }\n");
  const std::string https = "https://localhost:" + std::to_string(edge.port());
  GatewayProcess gateway(
      "listen: \"127.0.0.1:0\"\nthreads: 1\naccess_log: \"off\"\nupstreams:\n"
      "  right: { url: \"" + https + "\", tls: { ca_file: \"" + f.ca_cert + "\" } }\n"
      "  wrong: { url: \"" + https + "\", tls: { ca_file: \"" + f.other_ca_cert + "\" } }\n"
      "  unchecked: { url: \"" + https + "\", tls: { verify: false } }\n"
      "routes:\n"
      "  - { match: { path_prefix: /headers }, upstream: right, limits: [] }\n"
      "  - { match: { path_prefix: /wrong }, upstream: wrong, limits: [] }\n"
      "  - { match: { path_prefix: /unchecked }, upstream: unchecked, limits: [] }\n");
  CHECK(gateway.process().wait_for_output("upstreams.unchecked.tls.verify is false", 2s));
  for (int i = 0; i < 5; ++i) {
    const HttpResponse r = http_request(gateway.port(), "GET", "/headers");
    REQUIRE(r.status == 200);
    // The edge saw TLS from the gateway: it says https to the demo upstream.
    CHECK(nlohmann::json::parse(r.body).at("x-forwarded-proto") == "https");
  }
  const HttpResponse wrong = http_request(gateway.port(), "GET", "/wrong/");
  CHECK(wrong.status == 502);
  CHECK(nlohmann::json::parse(wrong.body).at("code") == "UPSTREAM_TLS_ERROR");
  CHECK(gateway.process().wait_for_output("certificate verify failed", 2s));
  CHECK(http_request(gateway.port(), "GET", "/unchecked/").status == 200);
  const Exposition e = scrape(gateway.admin_port());
  // Five requests to `right` over one pooled connection, one to `unchecked`.
  CHECK(metric(e, "phlow_gateway_tls_handshakes_total{side=\"upstream\"}") == 2);
  CHECK(metric(e, "phlow_gateway_upstream_errors_total{kind=\"tls\"}") == 1);
  CHECK(metric(scrape(edge.admin_port()), "phlow_gateway_tls_handshakes_total{side=\"client\"}") == 2);
}
