#pragma once
// A blocking HTTP/1.1 client for end-to-end tests. Every operation has a deadline and
// throws std::runtime_error naming the operation when it passes: a test never hangs.
// Beast stays inside http_client.cpp.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace phlow::test {

struct CaseInsensitiveLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const;
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::multimap<std::string, std::string, CaseInsensitiveLess> headers;
  std::string body;
  bool keep_alive = true;  // false when the server said it will close

  // The first value of header `name`, or "" when absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const { return headers.contains(name); }
};

constexpr std::chrono::milliseconds default_http_timeout{10'000};

// HTTPS: the server's certificate is verified against `ca_file` for `server_name`.
struct HttpsOptions {
  std::string ca_file;
  std::string server_name = "localhost";
  std::string alpn;  // offered when not empty ("http/1.1")
};

// One TCP connection to host:port, kept open across requests (keep-alive tests).
class HttpConnection {
 public:
  // Connects now; throws on failure or timeout.
  explicit HttpConnection(std::uint16_t port, std::string host = "127.0.0.1",
                          std::chrono::milliseconds timeout = default_http_timeout);
  // Connects and completes a TLS handshake; throws on failure (verification
  // included) or timeout.
  HttpConnection(std::uint16_t port, const HttpsOptions& tls, std::string host = "127.0.0.1",
                 std::chrono::milliseconds timeout = default_http_timeout);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Deadline of each later operation (a whole request, a read, a send).
  void set_timeout(std::chrono::milliseconds timeout);

  // Sends one request and reads its response. Adds Host unless given. A body is sent
  // with Content-Length, or in 64 KiB chunks when `headers` hold
  // "Transfer-Encoding: chunked". A HEAD response is read without a body.
  HttpResponse request(std::string_view method, std::string_view target,
                       const HeaderList& headers = {}, std::string_view body = {});

  // Fills `out` with up to `size` next body bytes and returns how many; 0 ends the body.
  using BodySource = std::function<std::size_t(char* out, std::size_t size)>;
  // Receives the response body piece by piece, in order.
  using BodySink = std::function<void(std::string_view piece)>;

  // Like request(), for bodies too large to hold: sends the body that `source` produces
  // (with Content-Length `body_length`, or chunked when `headers` ask for it) while it
  // reads the response concurrently and hands its body to `sink`, so that an echoing
  // peer never stalls on a full socket. Neither body is ever held whole. Returns the
  // response with an empty body; throws when either direction fails or times out.
  HttpResponse stream_request(std::string_view method, std::string_view target,
                              const HeaderList& headers, std::uint64_t body_length,
                              const BodySource& source, const BodySink& sink);

  // Writes bytes as they are (malformed, smuggling, pipelined requests).
  void send_raw(std::string_view bytes);
  // Reads one response; `to_head` when it answers a HEAD (no body follows).
  HttpResponse read_response(bool to_head = false);
  // Returns every byte (buffered ones first) until the peer closes or resets the
  // connection; throws when it is still open after `timeout`.
  std::string read_raw_until_close(std::chrono::milliseconds timeout);

  void close();

  // After an HTTPS connect: the ALPN protocol the server chose ("" for none).
  std::string alpn_selected() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One request on a fresh connection to 127.0.0.1:port.
HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view target,
                          const HeaderList& headers = {}, std::string_view body = {},
                          std::chrono::milliseconds timeout = default_http_timeout);

// Requests sent by `threads` clients at once, client t sending `each` GETs of `target`
// to ports[t % ports.size()]: how many got 200, and how many neither 200 nor 429.
struct RaceResult {
  int allowed = 0;
  int other = 0;
};
RaceResult race(const std::vector<std::uint16_t>& ports, int threads, int each,
                std::string_view target, const HeaderList& headers);

}  // namespace phlow::test
