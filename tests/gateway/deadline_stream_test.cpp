// DeadlineStream, the lowest layer of every proxy connection, over a real loopback TCP
// connection: reads and writes time out as beast::tcp_stream's do, with one lazily
// armed timer per connection.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "deadline_stream.hpp"

namespace net = boost::asio;
using boost::system::error_code;
using phlow::gateway::detail::DeadlineStream;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A connected pair over loopback: `stream` (the side under test) and `peer`.
struct Pair {
  net::io_context io;
  tcp::socket peer{io};
  std::optional<DeadlineStream> stream;

  Pair() {
    tcp::acceptor acceptor(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    peer.connect(acceptor.local_endpoint());
    stream.emplace(acceptor.accept());
  }

  // Runs until `done` (never until the context runs out of work: the stream's timer may
  // stay armed after an operation); false when `limit` passed first.
  template <class Done>
  bool run_until(Done done, std::chrono::milliseconds limit = 5s) {
    io.restart();
    const auto until = Clock::now() + limit;
    while (!done()) {
      if (io.run_one_until(until) == 0) return done();
    }
    return true;
  }

  // One read on the stream, run until it completes.
  struct Result read();
};

struct Result {
  std::optional<error_code> ec;
  std::size_t n = 0;
  Clock::time_point at;
};

auto into(Result& r) {
  return [&r](error_code ec, std::size_t n) {
    r.ec = ec;
    r.n = n;
    r.at = Clock::now();
  };
}

std::array<char, 64> buffer;

Result Pair::read() {
  Result r;
  stream->async_read_some(net::buffer(buffer), into(r));
  REQUIRE(run_until([&] { return r.ec.has_value(); }));
  return r;
}

// A read that started at `start` timed out after `deadline`, not much later.
void check_timed_out(const Result& r, Clock::time_point start, std::chrono::milliseconds deadline) {
  CHECK(*r.ec == boost::beast::error::timeout);
  CHECK(r.at - start >= deadline);
  CHECK(r.at - start < deadline + 2s);
}

}  // namespace

TEST_CASE("deadline stream: a read times out at its deadline and the socket closes") {
  Pair p;
  const auto start = Clock::now();
  p.stream->expires_after(100ms);
  check_timed_out(p.read(), start, 100ms);
  CHECK_FALSE(p.stream->socket().is_open());
}

TEST_CASE("deadline stream: reads and writes under a deadline complete when data comes in time") {
  Pair p;
  for (int i = 0; i < 50; ++i) {
    p.stream->expires_after(1s);
    Result w;
    const std::string ping = "ping " + std::to_string(i);
    p.stream->async_write_some(net::buffer(ping), into(w));
    REQUIRE(p.run_until([&] { return w.ec.has_value(); }));
    CHECK_FALSE(*w.ec);
    std::array<char, 64> got{};
    CHECK(p.peer.read_some(net::buffer(got)) == ping.size());
    net::write(p.peer, net::buffer(ping));
    const Result r = p.read();
    CHECK_FALSE(*r.ec);
    CHECK(r.n == ping.size());
  }
}

TEST_CASE("deadline stream: a deadline pushed later is kept - the timer armed for the earlier one re-arms") {
  Pair p;
  // The first read arms the timer for +100 ms and completes at once.
  p.stream->expires_after(100ms);
  net::write(p.peer, net::buffer(std::string("a")));
  CHECK_FALSE(*p.read().ec);
  // The next read has 600 ms; its data comes at +300 ms, after the first deadline.
  const auto start = Clock::now();
  p.stream->expires_after(600ms);
  Result second;
  p.stream->async_read_some(net::buffer(buffer), into(second));
  net::steady_timer later(p.io, 300ms);
  later.async_wait([&](error_code) { net::write(p.peer, net::buffer(std::string("b"))); });
  REQUIRE(p.run_until([&] { return second.ec.has_value(); }));
  CHECK_FALSE(*second.ec);
  CHECK(second.at - start >= 300ms);
  // And that later deadline still holds: nothing more comes, the read times out.
  p.stream->expires_after(150ms);
  const auto third_start = Clock::now();
  check_timed_out(p.read(), third_start, 150ms);
}

TEST_CASE("deadline stream: an operation started after its deadline passed times out at once") {
  Pair p;
  p.stream->expires_after(10ms);
  net::steady_timer wait(p.io, 50ms);
  bool waited = false;
  wait.async_wait([&](error_code) { waited = true; });
  REQUIRE(p.run_until([&] { return waited; }));
  const auto start = Clock::now();
  const Result r = p.read();
  CHECK(*r.ec == boost::beast::error::timeout);
  CHECK(r.at - start < 1s);
}

TEST_CASE("deadline stream: a deadline set while a read is pending is the next write's only") {
  Pair p;
  const auto start = Clock::now();
  p.stream->expires_after(150ms);
  Result r;
  p.stream->async_read_some(net::buffer(buffer), into(r));
  p.stream->expires_never();  // the read keeps its 150 ms
  REQUIRE(p.run_until([&] { return r.ec.has_value(); }));
  check_timed_out(r, start, 150ms);
}

TEST_CASE("deadline stream: without a deadline nothing times out - and destroying it frees its timer") {
  Pair p;
  p.stream->expires_after(100ms);
  net::write(p.peer, net::buffer(std::string("x")));
  CHECK_FALSE(*p.read().ec);  // armed the timer for +100 ms
  p.stream->expires_never();
  Result r;
  p.stream->async_read_some(net::buffer(buffer), into(r));
  // The timer armed for +100 ms fires and finds no deadline: the read stays pending.
  CHECK_FALSE(p.run_until([&] { return r.ec.has_value(); }, 400ms));
  net::write(p.peer, net::buffer(std::string("y")));
  REQUIRE(p.run_until([&] { return r.ec.has_value(); }));
  CHECK_FALSE(*r.ec);
  // A timer armed far ahead does not outlive the stream: once it is destroyed the
  // context runs out of work at once (ASan would report the state if it leaked).
  p.stream->expires_after(1h);
  net::write(p.peer, net::buffer(std::string("z")));
  CHECK_FALSE(*p.read().ec);
  p.stream.reset();
  p.io.restart();
  const auto start = Clock::now();
  p.io.run_for(5s);
  CHECK(Clock::now() - start < 1s);
}
