// phlow-demo-upstream: a small HTTP/1.1 server that stands in for a Phlow agent
// service in the README demo and is the upstream of the end-to-end tests.
//
//   phlow-demo-upstream [--listen 127.0.0.1:PORT] [--threads N]
//
// Prints exactly one line "listening on ADDR:PORT" once bound (port 0 = any free
// port), so scripts and tests can read the port. Endpoints: see demo/README.md.

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using boost::system::error_code;

constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);
constexpr std::size_t chunk_size = 16 * 1024;
constexpr auto io_timeout = 60s;
constexpr std::uint64_t max_delay_ms = 600'000;

// Counters shared by every session of every thread.
struct Stats {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::int64_t> holding{0};      // /hold requests being held now
  std::atomic<std::int64_t> max_holding{0};  // the most held at once (since /held?reset=1)
  std::atomic<std::uint64_t> held_total{0};  // /hold requests answered or abandoned
};

using RequestParser = http::request_parser<http::buffer_body>;

// Everything one request's handler needs; lives in the session's coroutine frame.
struct Exchange {
  beast::tcp_stream& stream;
  beast::flat_buffer& buffer;
  RequestParser& parser;
  Stats& stats;
  std::uint64_t requests_before;  // requests received before this one
  std::string peer;

  const http::request<http::buffer_body>& request() const { return parser.get(); }
  bool head() const { return request().method() == http::verb::head; }
};

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// Returns the unsigned integer query parameter `name` of `target`, or `fallback` when
// absent or not a number.
std::uint64_t query_number(std::string_view target, std::string_view name,
                           std::uint64_t fallback) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return fallback;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos || pair.substr(0, eq) != name) continue;
    std::uint64_t value = 0;
    const auto value_text = pair.substr(eq + 1);
    const auto [end, ec] =
        std::from_chars(value_text.data(), value_text.data() + value_text.size(), value);
    if (ec == std::errc{} && end == value_text.data() + value_text.size()) return value;
    return fallback;
  }
  return fallback;
}

template <class Body>
void stamp(http::response<Body>& res, const Exchange& ex) {
  res.version(11);
  res.set("X-Upstream", "phlow-demo-upstream");
  res.keep_alive(ex.request().keep_alive());
}

// Reads and discards the rest of the request body. Returns false on a read error.
net::awaitable<bool> drain_body(Exchange& ex) {
  char scratch[chunk_size];
  while (!ex.parser.is_done()) {
    ex.parser.get().body().data = scratch;
    ex.parser.get().body().size = sizeof scratch;
    ex.stream.expires_after(io_timeout);
    auto [ec, n] = co_await http::async_read(ex.stream, ex.buffer, ex.parser, tuple_awaitable);
    if (ec == http::error::need_buffer) continue;
    if (ec) co_return false;
  }
  co_return true;
}

// Writes a header-only serialization of `res` (its body, if any, is left out).
template <class Body>
net::awaitable<bool> write_header(Exchange& ex, http::response<Body>& res) {
  http::response_serializer<Body> sr{res};
  ex.stream.expires_after(io_timeout);
  auto [ec, n] = co_await http::async_write_header(ex.stream, sr, tuple_awaitable);
  co_return !ec;
}

net::awaitable<bool> write_raw(Exchange& ex, auto buffers) {
  ex.stream.expires_after(io_timeout);
  auto [ec, n] = co_await net::async_write(ex.stream, buffers, tuple_awaitable);
  co_return !ec;
}

// Sends a complete response with `body` (headers only for HEAD). Returns whether the
// connection may serve another request.
net::awaitable<bool> send_text(Exchange& ex, http::status status, std::string body,
                               std::string_view content_type = "application/json",
                               std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (!co_await drain_body(ex)) co_return false;
  http::response<http::string_body> res{status, 11};
  stamp(res, ex);
  if (!extra_name.empty()) res.set(extra_name, extra_value);
  const auto code = static_cast<unsigned>(status);
  const bool bodiless = code < 200 || code == 204 || code == 304;
  if (!bodiless) {
    res.set(http::field::content_type, content_type);
    res.body() = std::move(body);
    res.prepare_payload();
  }
  if (ex.head() || bodiless) {
    if (!co_await write_header(ex, res)) co_return false;
  } else {
    ex.stream.expires_after(io_timeout);
    auto [ec, n] = co_await http::async_write(ex.stream, res, tuple_awaitable);
    if (ec) co_return false;
  }
  co_return res.keep_alive();
}

std::string describe(const Exchange& ex) {
  return nlohmann::json{{"service", "phlow-demo-upstream"},
                        {"path", std::string(ex.request().target())},
                        {"method", std::string(ex.request().method_string())}}
      .dump();
}

net::awaitable<bool> handle_headers(Exchange& ex) {
  // Names are lower-cased (HTTP names are case-insensitive) so lookups are stable.
  std::map<std::string, std::string> joined;
  for (const auto& field : ex.request()) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto& value = joined[name];
    if (!value.empty()) value += ", ";
    value += std::string(field.value());
  }
  nlohmann::json out(joined);
  out["_peer"] = ex.peer;
  co_return co_await send_text(ex, http::status::ok, out.dump());
}

// Returns N of "/status/N" when it is a status this server can send (200..599).
std::optional<unsigned> parse_status(std::string_view text) {
  unsigned code = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), code);
  if (ec != std::errc{} || end != text.data() + text.size() || code < 200 || code > 599) {
    return std::nullopt;
  }
  return code;
}

// The bodies are built outside the coroutines: GCC 12 miscompiles braced lists of
// string literals inside a coroutine body ("array used as initializer").
std::string status_json(unsigned code) { return nlohmann::json{{"status", code}}.dump(); }
std::string slept_json(std::uint64_t ms) { return nlohmann::json{{"slept_ms", ms}}.dump(); }
std::string count_json(std::uint64_t requests, std::uint64_t connections) {
  return nlohmann::json{{"requests", requests}, {"connections", connections}}.dump();
}
std::string error_json(std::string_view message) {
  return nlohmann::json{{"error", message}}.dump();
}

net::awaitable<bool> handle_status(Exchange& ex, std::string_view code_text) {
  const auto code = parse_status(code_text);
  if (!code) {
    co_return co_await send_text(ex, http::status::bad_request,
                                 error_json("status must be 200..599"));
  }
  co_return co_await send_text(ex, static_cast<http::status>(*code), status_json(*code));
}

net::awaitable<bool> handle_slow(Exchange& ex) {
  const auto ms = std::min(query_number(ex.request().target(), "ms", 0), max_delay_ms);
  net::steady_timer timer(ex.stream.get_executor(), std::chrono::milliseconds(ms));
  co_await timer.async_wait(tuple_awaitable);
  co_return co_await send_text(ex, http::status::ok, slept_json(ms));
}

// /hold?ms=N: holds the request N ms (an LLM call in progress), counting how many it
// holds at once; /held reports {"now":K,"max":M,"total":T} (&reset=1: max back to now).
net::awaitable<bool> handle_hold(Exchange& ex) {
  const auto ms = std::min(query_number(ex.request().target(), "ms", 0), max_delay_ms);
  const std::int64_t now = ++ex.stats.holding;
  std::int64_t seen = ex.stats.max_holding.load();
  while (now > seen && !ex.stats.max_holding.compare_exchange_weak(seen, now)) {
  }
  net::steady_timer timer(ex.stream.get_executor(), std::chrono::milliseconds(ms));
  co_await timer.async_wait(tuple_awaitable);
  --ex.stats.holding;
  ++ex.stats.held_total;
  co_return co_await send_text(ex, http::status::ok, slept_json(ms));
}

net::awaitable<bool> handle_held(Exchange& ex) {
  if (query_number(ex.request().target(), "reset", 0) != 0) ex.stats.max_holding = ex.stats.holding.load();
  nlohmann::json body;
  body["now"] = ex.stats.holding.load();
  body["max"] = ex.stats.max_holding.load();
  body["total"] = ex.stats.held_total.load();
  co_return co_await send_text(ex, http::status::ok, body.dump());
}

net::awaitable<bool> handle_count(Exchange& ex) {
  co_return co_await send_text(ex, http::status::ok,
                               count_json(ex.requests_before, ex.stats.connections.load()));
}

// Starts a response whose body the caller writes raw: with `length` it carries
// Content-Length, without it Transfer-Encoding: chunked.
net::awaitable<bool> start_streamed(Exchange& ex, std::optional<std::uint64_t> length,
                                    std::string_view content_type) {
  http::response<http::empty_body> res{http::status::ok, 11};
  stamp(res, ex);
  res.set(http::field::content_type, content_type);
  if (length) {
    res.content_length(*length);
  } else {
    res.chunked(true);
  }
  co_return co_await write_header(ex, res);
}

net::awaitable<bool> handle_big(Exchange& ex) {
  const auto total = query_number(ex.request().target(), "bytes", 0);
  if (!co_await drain_body(ex)) co_return false;
  if (!co_await start_streamed(ex, total, "application/octet-stream")) co_return false;
  if (ex.head()) co_return ex.request().keep_alive();
  std::string block(chunk_size, 'x');
  for (std::uint64_t sent = 0; sent < total;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_size, total - sent));
    for (std::size_t i = 0; i < n; ++i) block[i] = static_cast<char>('a' + (sent + i) % 26);
    if (!co_await write_raw(ex, net::buffer(block.data(), n))) co_return false;
    sent += n;
  }
  co_return ex.request().keep_alive();
}

net::awaitable<bool> handle_drip(Exchange& ex) {
  const auto total = query_number(ex.request().target(), "bytes", 10);
  const auto ms = std::min(query_number(ex.request().target(), "ms", 100), max_delay_ms);
  if (!co_await drain_body(ex)) co_return false;
  if (!co_await start_streamed(ex, total, "text/plain")) co_return false;
  if (ex.head()) co_return ex.request().keep_alive();
  net::steady_timer timer(ex.stream.get_executor());
  for (std::uint64_t i = 0; i < total; ++i) {
    timer.expires_after(std::chrono::milliseconds(ms));
    co_await timer.async_wait(tuple_awaitable);
    const char byte = static_cast<char>('a' + i % 26);
    if (!co_await write_raw(ex, net::buffer(&byte, 1))) co_return false;
  }
  co_return ex.request().keep_alive();
}

net::awaitable<bool> handle_chunked(Exchange& ex) {
  const auto parts = query_number(ex.request().target(), "parts", 3);
  if (!co_await drain_body(ex)) co_return false;
  if (!co_await start_streamed(ex, std::nullopt, "text/plain")) co_return false;
  if (ex.head()) co_return ex.request().keep_alive();
  for (std::uint64_t i = 0; i < parts; ++i) {
    const std::string part = "part " + std::to_string(i) + "\n";
    if (!co_await write_raw(ex, http::make_chunk(net::buffer(part)))) co_return false;
  }
  if (!co_await write_raw(ex, http::make_chunk_last())) co_return false;
  co_return ex.request().keep_alive();
}

// /usage?tokens=N: what an LLM service reports it used, in X-Usage-Tokens: N (with
// bad=1, a value that is not a number; with trailer=1, a chunked response that sends it
// as a trailer field after its body, as a streaming service knows it only then).
net::awaitable<bool> handle_usage(Exchange& ex) {
  const auto target = ex.request().target();
  const auto tokens = query_number(target, "tokens", 0);
  const std::string value = query_number(target, "bad", 0) != 0 ? "12abc" : std::to_string(tokens);
  if (query_number(target, "trailer", 0) != 0) {
    if (!co_await drain_body(ex)) co_return false;
    if (!co_await start_streamed(ex, std::nullopt, "text/plain")) co_return false;
    if (ex.head()) co_return ex.request().keep_alive();
    const std::string text = "streamed answer\n";
    if (!co_await write_raw(ex, http::make_chunk(net::buffer(text)))) co_return false;
    const std::string last = "0\r\nX-Usage-Tokens: " + value + "\r\n\r\n";
    if (!co_await write_raw(ex, net::buffer(last))) co_return false;
    co_return ex.request().keep_alive();
  }
  co_return co_await send_text(ex, http::status::ok, "{\"tokens\":\"" + value + "\"}", "application/json",
                               "X-Usage-Tokens", value);
}

// Promises 100 bytes, sends 10, closes.
net::awaitable<bool> handle_truncate(Exchange& ex) {
  if (!co_await drain_body(ex)) co_return false;
  if (!co_await start_streamed(ex, 100, "text/plain")) co_return false;
  if (!ex.head()) {
    const bool written = co_await write_raw(ex, net::buffer(std::string_view("0123456789")));
    (void)written;  // closing either way
  }
  co_return false;
}

// Closes with SO_LINGER 0, so the peer sees a reset and no response at all.
net::awaitable<bool> handle_reset(Exchange& ex) {
  error_code ec;
  ex.stream.socket().set_option(net::socket_base::linger(true, 0), ec);
  ex.stream.socket().close(ec);
  co_return false;
}

// (No co_await inside ?:, || or && in this file: GCC 12 resumes the wrong frame.)
// Streams the request body back as it arrives, chunk by chunk.
net::awaitable<bool> handle_echo(Exchange& ex) {
  std::optional<std::uint64_t> length;
  if (const auto declared = ex.parser.content_length()) length = *declared;
  std::string content_type(ex.request()[http::field::content_type]);
  if (content_type.empty()) content_type = "application/octet-stream";
  if (!co_await start_streamed(ex, length, content_type)) co_return false;
  const bool chunked = !length;
  const bool send_body = !ex.head();
  char block[chunk_size];
  while (!ex.parser.is_done()) {
    ex.parser.get().body().data = block;
    ex.parser.get().body().size = sizeof block;
    ex.stream.expires_after(io_timeout);
    auto [ec, n] = co_await http::async_read(ex.stream, ex.buffer, ex.parser, tuple_awaitable);
    if (ec && ec != http::error::need_buffer) co_return false;
    const std::size_t got = sizeof block - ex.parser.get().body().size;
    if (got == 0 || !send_body) continue;
    bool ok = false;
    if (chunked) {
      ok = co_await write_raw(ex, http::make_chunk(net::buffer(block, got)));
    } else {
      ok = co_await write_raw(ex, net::buffer(block, got));
    }
    if (!ok) co_return false;
  }
  if (chunked && send_body) {
    if (!co_await write_raw(ex, http::make_chunk_last())) co_return false;
  }
  co_return ex.request().keep_alive();
}

// /ws: a WebSocket echo (each message back as it came, text or binary) until the
// client closes. Other paths answer an upgrade request like any request.
net::awaitable<bool> handle_websocket(Exchange& ex) {
  namespace websocket = beast::websocket;
  if (!websocket::is_upgrade(ex.request())) co_return co_await send_text(ex, http::status::ok, describe(ex));
  ex.stream.expires_never();  // the WebSocket's own timeouts (none) from here
  websocket::stream<beast::tcp_stream&> ws(ex.stream);
  ws.read_message_max(64 * 1024 * 1024);
  auto [ec] = co_await ws.async_accept(ex.request(), tuple_awaitable);
  if (ec) co_return false;
  beast::flat_buffer message;
  for (;;) {
    auto [rec, n] = co_await ws.async_read(message, tuple_awaitable);
    if (rec) break;
    ws.text(ws.got_text());
    auto [wec, wn] = co_await ws.async_write(message.data(), tuple_awaitable);
    if (wec) break;
    message.consume(message.size());
  }
  co_return false;
}

// Answers one request whose head has been read. Returns whether the connection may
// serve another request.
net::awaitable<bool> dispatch(Exchange& ex) {
  const std::string_view path = path_of(ex.request().target());
  if (path == "/echo") co_return co_await handle_echo(ex);
  if (path == "/headers") co_return co_await handle_headers(ex);
  if (path == "/ws") co_return co_await handle_websocket(ex);
  if (path.starts_with("/status/")) co_return co_await handle_status(ex, path.substr(8));
  if (path == "/slow") co_return co_await handle_slow(ex);
  if (path == "/drip") co_return co_await handle_drip(ex);
  if (path == "/big") co_return co_await handle_big(ex);
  if (path == "/chunked") co_return co_await handle_chunked(ex);
  if (path == "/truncate") co_return co_await handle_truncate(ex);
  if (path == "/reset") co_return co_await handle_reset(ex);
  if (path == "/count") co_return co_await handle_count(ex);
  if (path == "/usage") co_return co_await handle_usage(ex);
  if (path == "/hold") co_return co_await handle_hold(ex);
  if (path == "/held") co_return co_await handle_held(ex);
  co_return co_await send_text(ex, http::status::ok, describe(ex));
}

net::awaitable<void> send_bad_request(beast::tcp_stream& stream) {
  http::response<http::string_body> res{http::status::bad_request, 11};
  res.set("X-Upstream", "phlow-demo-upstream");
  res.set(http::field::content_type, "application/json");
  res.keep_alive(false);
  res.body() = R"({"error":"bad request"})";
  res.prepare_payload();
  stream.expires_after(5s);
  co_await http::async_write(stream, res, tuple_awaitable);
}

// A 100-continue client waits for this before sending its body.
net::awaitable<bool> maybe_continue(beast::tcp_stream& stream, const RequestParser& parser) {
  if (!beast::iequals(parser.get()[http::field::expect], "100-continue")) co_return true;
  http::response<http::empty_body> res{http::status::continue_, 11};
  http::response_serializer<http::empty_body> sr{res};
  stream.expires_after(io_timeout);
  auto [ec, n] = co_await http::async_write_header(stream, sr, tuple_awaitable);
  co_return !ec;
}

net::awaitable<void> serve_connection(tcp::socket socket, Stats& stats) {
  stats.connections.fetch_add(1);
  error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  const std::string peer = ec ? "" : remote.address().to_string();
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    RequestParser parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(boost::none);
    stream.expires_after(io_timeout);
    auto [read_ec, n] = co_await http::async_read_header(stream, buffer, parser, tuple_awaitable);
    if (read_ec) {
      if (read_ec != http::error::end_of_stream && read_ec != beast::error::timeout &&
          read_ec != net::error::connection_reset && read_ec != net::error::eof) {
        co_await send_bad_request(stream);
      }
      break;
    }
    Exchange ex{stream, buffer, parser, stats, stats.requests.fetch_add(1), peer};
    if (!co_await maybe_continue(stream, parser)) break;
    if (!co_await dispatch(ex)) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, Stats& stats) {
  for (;;) {
    auto strand = net::make_strand(acceptor.get_executor());
    auto [ec, socket] = co_await acceptor.async_accept(strand, tuple_awaitable);
    if (ec == net::error::operation_aborted) co_return;
    if (ec) continue;  // e.g. EMFILE: keep serving the connections we have
    net::co_spawn(socket.get_executor(), serve_connection(std::move(socket), stats),
                  [](std::exception_ptr e) {
                    if (!e) return;
                    try {
                      std::rethrow_exception(e);
                    } catch (const std::exception& err) {
                      std::cerr << "session error: " << err.what() << '\n';
                    }
                  });
  }
}

struct Options {
  tcp::endpoint listen{net::ip::make_address("127.0.0.1"), 0};
  int threads = 1;
};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "phlow-demo-upstream: " << problem << "\n"
            << "usage: phlow-demo-upstream [--listen ADDR:PORT] [--threads N]\n";
  std::exit(2);
}

tcp::endpoint parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) usage("--listen wants ADDR:PORT, got '" + text + "'");
  std::string host = text.substr(0, colon);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  error_code ec;
  const auto address = net::ip::make_address(host, ec);
  unsigned port = 0;
  const auto port_text = std::string_view(text).substr(colon + 1);
  const auto [end, perr] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec || perr != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
    usage("--listen wants ADDR:PORT, got '" + text + "'");
  }
  return {address, static_cast<unsigned short>(port)};
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") usage("help");
    if (i + 1 >= argc) usage(arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--listen") {
      options.listen = parse_endpoint(value);
    } else if (arg == "--threads") {
      options.threads = std::atoi(value.c_str());
      if (options.threads < 1 || options.threads > 256) usage("--threads wants 1..256");
    } else {
      usage("unknown argument " + arg);
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  Stats stats;  // outlives the io_context and every session frame it owns
  net::io_context ioc(options.threads);
  tcp::acceptor acceptor(ioc);
  try {
    acceptor.open(options.listen.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(options.listen);
    acceptor.listen(net::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    std::cerr << "phlow-demo-upstream: cannot listen on " << options.listen << ": "
              << e.code().message() << '\n';
    return 1;
  }
  // The signal handler is installed before the "listening" line: a supervisor
  // that sends SIGTERM right after reading it must get a clean exit 0.
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](error_code, int) { ioc.stop(); });
  net::co_spawn(ioc, accept_loop(acceptor, stats), net::detached);

  const auto bound = acceptor.local_endpoint();
  std::cout << "listening on " << bound << std::endl;

  std::vector<std::thread> workers;
  for (int i = 1; i < options.threads; ++i) workers.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : workers) t.join();
  return 0;
}
