#include "support/http_client.hpp"

#include <atomic>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <openssl/ssl.h>

#include "proxy_stream.hpp"  // the gateway's plain-or-TLS stream

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace phlow::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

bool CaseInsensitiveLess::operator()(std::string_view a, std::string_view b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](unsigned char x, unsigned char y) {
                                        return std::tolower(x) < std::tolower(y);
                                      });
}

std::string HttpResponse::header(std::string_view name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpConnection::Impl {
  net::io_context ioc;
  phlow::gateway::detail::ProxyStream stream{ioc.get_executor()};
  std::unique_ptr<net::ssl::context> tls_context;
  beast::flat_buffer buffer;
  std::string host;
  std::uint16_t port = 0;
  std::chrono::milliseconds timeout{};

  std::string where() const { return host + ":" + std::to_string(port); }

  // Runs one async operation to completion under the connection's deadline. Throws
  // when it times out or fails (`tolerated` errors are returned instead).
  template <class Start>
  error_code run(const std::string& what, Start&& start,
                 std::initializer_list<error_code> tolerated = {}) {
    error_code result = net::error::would_block;
    std::forward<Start>(start)([&](error_code ec, std::size_t = 0) { result = ec; });
    // Until the operation completes, not until the context runs out of work: the
    // stream's deadline timer may stay armed after it (it is armed lazily).
    ioc.restart();
    while (result == net::error::would_block && ioc.run_one() > 0) {
    }
    if (result == beast::error::timeout) {
      throw std::runtime_error(what + " to " + where() + " timed out after " +
                               std::to_string(timeout.count()) + " ms");
    }
    if (result && std::find(tolerated.begin(), tolerated.end(), result) == tolerated.end()) {
      throw std::runtime_error(what + " to " + where() + " failed: " + result.message());
    }
    return result;
  }

  void write(const std::string& what, auto buffers) {
    stream.expires_after(timeout);
    run(what, [&](auto handler) { net::async_write(stream, buffers, handler); });
  }
};

HttpConnection::HttpConnection(std::uint16_t port, std::string host,
                               std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->timeout = timeout;
  const net::ip::tcp::endpoint endpoint(net::ip::make_address(impl_->host), port);
  impl_->stream.expires_after(timeout);
  impl_->run("connect", [&](auto handler) {
    impl_->stream.next_layer().async_connect(endpoint, [handler](error_code ec) { handler(ec); });
  });
}

HttpConnection::HttpConnection(std::uint16_t port, const HttpsOptions& tls, std::string host,
                               std::chrono::milliseconds timeout)
    : HttpConnection(port, std::move(host), timeout) {
  impl_->tls_context = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  impl_->tls_context->load_verify_file(tls.ca_file);
  SSL* ssl = SSL_new(impl_->tls_context->native_handle());
  impl_->stream.start_tls(ssl);
  SSL_set_tlsext_host_name(ssl, tls.server_name.c_str());
  SSL_set1_host(ssl, tls.server_name.c_str());
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  if (!tls.alpn.empty()) {
    std::string wire(1, static_cast<char>(tls.alpn.size()));
    wire += tls.alpn;
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(wire.data()),
                        static_cast<unsigned>(wire.size()));
  }
  impl_->stream.expires_after(timeout);
  impl_->run("TLS handshake", [&](auto handler) {
    impl_->stream.tls().next_layer().async_handshake(net::ssl::stream_base::client,
                                                     [handler](error_code ec) { handler(ec); });
  });
}

std::string HttpConnection::alpn_selected() const {
  if (!impl_->stream.is_tls()) return {};
  const unsigned char* data = nullptr;
  unsigned length = 0;
  SSL_get0_alpn_selected(impl_->stream.native_tls(), &data, &length);
  return std::string(reinterpret_cast<const char*>(data), length);
}

HttpConnection::~HttpConnection() = default;

void HttpConnection::set_timeout(std::chrono::milliseconds timeout) { impl_->timeout = timeout; }

void HttpConnection::close() {
  error_code ec;
  impl_->stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  impl_->stream.socket().close(ec);
}

namespace {

bool wants_chunked(const HeaderList& headers) {
  return std::any_of(headers.begin(), headers.end(), [](const auto& h) {
    return beast::iequals(h.first, "transfer-encoding") && beast::iequals(h.second, "chunked");
  });
}

http::request<http::empty_body> make_head(std::string_view method, std::string_view target,
                                          const std::string& host_port, const HeaderList& headers,
                                          bool chunked, std::uint64_t body_length) {
  http::request<http::empty_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, host_port);
  for (const auto& [name, value] : headers) {
    if (beast::iequals(name, "host")) req.erase(http::field::host);
  }
  for (const auto& [name, value] : headers) req.insert(name, value);
  if (!chunked && (body_length > 0 || method == "POST" || method == "PUT" || method == "PATCH")) {
    req.content_length(body_length);
  }
  return req;
}

template <class Body>
HttpResponse to_response(http::response<Body>& res) {
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  out.reason = std::string(res.reason());
  out.keep_alive = res.keep_alive();
  for (const auto& field : res) {
    out.headers.emplace(std::string(field.name_string()), std::string(field.value()));
  }
  return out;
}

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

net::awaitable<error_code> send_streamed(phlow::gateway::detail::ProxyStream& stream,
                                         http::request<http::empty_body>& req, bool chunked,
                                         const HttpConnection::BodySource& source,
                                         std::chrono::milliseconds timeout) {
  http::request_serializer<http::empty_body> sr{req};
  stream.expires_after(timeout);
  auto [ec, n] = co_await http::async_write_header(stream, sr, use_tuple);
  if (ec) co_return ec;
  std::vector<char> piece(64 * 1024);
  for (;;) {
    const std::size_t got = source(piece.data(), piece.size());
    if (got == 0) break;
    stream.expires_after(timeout);
    error_code wec;
    if (chunked) {
      std::tie(wec, n) = co_await net::async_write(
          stream, http::make_chunk(net::buffer(piece.data(), got)), use_tuple);
    } else {
      std::tie(wec, n) = co_await net::async_write(stream, net::buffer(piece.data(), got), use_tuple);
    }
    if (wec) co_return wec;
  }
  if (chunked) {
    stream.expires_after(timeout);
    std::tie(ec, n) = co_await net::async_write(stream, http::make_chunk_last(), use_tuple);
  }
  co_return ec;
}

net::awaitable<error_code> receive_streamed(phlow::gateway::detail::ProxyStream& stream, beast::flat_buffer& buffer,
                                            http::response_parser<http::buffer_body>& parser,
                                            const HttpConnection::BodySink& sink,
                                            std::chrono::milliseconds timeout) {
  stream.expires_after(timeout);
  auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
  if (ec) co_return ec;
  std::vector<char> piece(64 * 1024);
  while (!parser.is_done()) {
    parser.get().body().data = piece.data();
    parser.get().body().size = piece.size();
    stream.expires_after(timeout);
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (rec == http::error::need_buffer) rec = {};
    if (rec) co_return rec;
    sink(std::string_view(piece.data(), piece.size() - parser.get().body().size));
  }
  co_return error_code{};
}

}  // namespace

HttpResponse HttpConnection::stream_request(std::string_view method, std::string_view target,
                                            const HeaderList& headers, std::uint64_t body_length,
                                            const BodySource& source, const BodySink& sink) {
  const bool chunked = wants_chunked(headers);
  auto req = make_head(method, target, impl_->host + ":" + std::to_string(impl_->port), headers,
                       chunked, body_length);
  http::response_parser<http::buffer_body> parser;
  parser.header_limit(1024 * 1024);
  parser.body_limit(boost::none);
  error_code sent = net::error::would_block;
  error_code received = net::error::would_block;
  net::co_spawn(impl_->ioc, send_streamed(impl_->stream, req, chunked, source, impl_->timeout),
                [&](std::exception_ptr, error_code ec) { sent = ec; });
  net::co_spawn(impl_->ioc,
                receive_streamed(impl_->stream, impl_->buffer, parser, sink, impl_->timeout),
                [&](std::exception_ptr, error_code ec) { received = ec; });
  impl_->ioc.restart();
  while ((sent == net::error::would_block || received == net::error::would_block) && impl_->ioc.run_one() > 0) {
  }
  if (sent || received) {
    throw std::runtime_error("streamed request to " + impl_->where() + " failed: sending: " +
                             sent.message() + ", receiving: " + received.message() +
                             (received ? "" : " (status " + std::to_string(parser.get().result_int()) + ")"));
  }
  return to_response(parser.get());
}

HttpResponse HttpConnection::request(std::string_view method, std::string_view target,
                                     const HeaderList& headers, std::string_view body) {
  const bool chunked = wants_chunked(headers);
  auto req = make_head(method, target, impl_->host + ":" + std::to_string(impl_->port), headers,
                       chunked, body.size());
  http::request_serializer<http::empty_body> sr{req};
  impl_->stream.expires_after(impl_->timeout);
  impl_->run("write request head",
             [&](auto handler) { http::async_write_header(impl_->stream, sr, handler); });
  constexpr std::size_t piece = 64 * 1024;
  for (std::size_t at = 0; at < body.size(); at += piece) {
    const auto part = net::buffer(body.substr(at, piece));
    if (chunked) {
      impl_->write("write request body chunk", http::make_chunk(part));
    } else {
      impl_->write("write request body", part);
    }
  }
  if (chunked) impl_->write("write last chunk", http::make_chunk_last());
  return read_response(method == "HEAD");
}

void HttpConnection::send_raw(std::string_view bytes) {
  impl_->write("send raw bytes", net::buffer(bytes));
}

HttpResponse HttpConnection::read_response(bool to_head) {
  http::response_parser<http::string_body> parser;
  parser.header_limit(1024 * 1024);
  parser.body_limit(boost::none);
  parser.skip(to_head);
  impl_->stream.expires_after(impl_->timeout);
  impl_->run("read response", [&](auto handler) {
    http::async_read(impl_->stream, impl_->buffer, parser, handler);
  });
  HttpResponse out = to_response(parser.get());
  out.body = std::move(parser.get().body());
  return out;
}

std::string HttpConnection::read_raw_until_close(std::chrono::milliseconds timeout) {
  const auto buffered = impl_->buffer.data();
  std::string out(static_cast<const char*>(buffered.data()), buffered.size());
  impl_->buffer.consume(impl_->buffer.size());
  const auto saved = impl_->timeout;
  impl_->timeout = timeout;
  impl_->stream.expires_after(timeout);
  char block[16 * 1024];
  for (;;) {
    std::size_t got = 0;
    const auto ec = impl_->run(
        "read until close",
        [&](auto handler) {
          impl_->stream.async_read_some(net::buffer(block),
                                        [&got, handler](error_code e, std::size_t n) {
                                          got = n;
                                          handler(e, n);
                                        });
        },
        {net::error::eof, net::error::connection_reset});
    out.append(block, got);
    if (ec) break;
  }
  impl_->timeout = saved;
  return out;
}

HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view target,
                          const HeaderList& headers, std::string_view body,
                          std::chrono::milliseconds timeout) {
  HttpConnection connection(port, "127.0.0.1", timeout);
  return connection.request(method, target, headers, body);
}

RaceResult race(const std::vector<std::uint16_t>& ports, int threads, int each,
                std::string_view target, const HeaderList& headers) {
  std::atomic<int> allowed{0};
  std::atomic<int> other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, port = ports[static_cast<std::size_t>(t) % ports.size()]] {
      for (int i = 0; i < each; ++i) {
        const int status = http_request(port, "GET", target, headers).status;
        if (status == 200) {
          ++allowed;
        } else if (status != 429) {
          ++other;
        }
      }
    });
  }
  for (auto& client : clients) client.join();
  return {allowed.load(), other.load()};
}

}  // namespace phlow::test
