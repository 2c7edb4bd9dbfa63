#pragma once
// Streams one HTTP message body from a parser to a serializer in fixed-size pieces, so
// that no body is ever held whole (Beast's buffer_body relay). Included by session.cpp
// only: Beast's HTTP templates stay in one translation unit.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

namespace phlow::gateway::detail {

enum class RelaySide { none, in, out };

struct RelayResult {
  boost::system::error_code error;
  RelaySide side = RelaySide::none;  // which stream failed
  std::uint64_t body_bytes = 0;      // body bytes written to `out`
};

// Writes the (already transformed) header of `parser.get()` and then the body, as
// it arrives on `in`, to `out`. Each read and write has its own deadline.
template <bool isRequest>
boost::asio::awaitable<RelayResult> relay(
    boost::beast::tcp_stream& in, boost::beast::flat_buffer& in_buffer,
    boost::beast::http::parser<isRequest, boost::beast::http::buffer_body>& parser,
    std::chrono::milliseconds in_timeout, boost::beast::tcp_stream& out,
    std::chrono::milliseconds out_timeout) {
  namespace http = boost::beast::http;
  constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  RelayResult result;
  auto& message = parser.get();
  http::serializer<isRequest, http::buffer_body> serializer{message};
  // The header goes out with the first piece of the body (one write, not two), which
  // may wait for that piece: a read returns as soon as any body bytes arrive.
  std::array<char, 16 * 1024> chunk;
  do {
    if (!parser.is_done()) {
      message.body().data = chunk.data();
      message.body().size = chunk.size();
      in.expires_after(in_timeout);
      auto [rec, rn] = co_await http::async_read(in, in_buffer, parser, use_tuple);
      if (rec == http::error::need_buffer) rec = {};
      message.body().size = chunk.size() - message.body().size;
      if (rec && isRequest && !serializer.is_header_done() &&
          rec.category() == http::make_error_code(http::error::bad_chunk).category()) {
        // A request body that failed to parse (malformed, too large, cut short)
        // before any of it went out: the upstream never sees the request.
        co_return RelayResult{rec, RelaySide::in, 0};
      }
      if (rec) {
        // Hand on what did arrive (the head at least): the peer then sees a cut
        // message, not none at all.
        message.body().data = chunk.data();
        message.body().more = true;
        out.expires_after(out_timeout);
        co_await http::async_write(out, serializer, use_tuple);
        co_return RelayResult{rec, RelaySide::in, result.body_bytes + message.body().size};
      }
      message.body().data = chunk.data();
      message.body().more = !parser.is_done();
    } else {
      message.body().data = nullptr;
      message.body().size = 0;
      message.body().more = false;
    }
    result.body_bytes += message.body().size;
    out.expires_after(out_timeout);
    auto [wec, wn] = co_await http::async_write(out, serializer, use_tuple);
    if (wec == http::error::need_buffer) wec = {};
    if (wec) co_return RelayResult{wec, RelaySide::out, result.body_bytes};
  } while (!parser.is_done() || !serializer.is_done());
  co_return result;
}

}  // namespace phlow::gateway::detail
