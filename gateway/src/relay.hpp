#pragma once
// Reading HTTP messages through Beast's parser with plain socket reads, and streaming
// one message body from a parser to the other side in fixed-size pieces, so that no
// body is ever held whole. The heads are written by http_head.hpp; bodies are copied as
// they arrive, re-framed (chunked or not) by this file. Generic over the stream type
// (plain TCP today; a TLS stream is another type, not an edit). Included by the
// session's translation units and by the request-path fuzzer, nowhere else.

#include <array>
#include <charconv>
#include <optional>
#include <algorithm>
#include <chrono>
#include <functional>
#include <span>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "flat_parser.hpp"

namespace phlow::gateway::detail {

enum class RelaySide { none, in, out };

struct RelayResult {
  boost::system::error_code error;
  RelaySide side = RelaySide::none;  // which stream failed
  std::uint64_t body_bytes = 0;      // body bytes written to `out`
};

// The parsing half of read_message_part, without I/O: puts the bytes of `buffer` into
// `parser` (arguments as there). Returns the part's result once it is complete, or
// nothing when the parser needs more bytes than `buffer` holds. The request-path fuzzer
// calls it with its input as the buffer.
template <bool isRequest>
std::optional<boost::system::error_code> put_buffered(
    boost::beast::flat_buffer& buffer, boost::beast::http::basic_parser<isRequest>& parser,
    const std::size_t* body_space, std::size_t space_before, bool fill) {
  namespace http = boost::beast::http;
  while (buffer.size() > 0) {
    boost::system::error_code ec;
    const std::size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == http::error::need_buffer) return boost::system::error_code{};
    if (ec && ec != http::error::need_more) return ec;
    if (parser.is_done()) return boost::system::error_code{};
    if (body_space == nullptr) {
      if (parser.is_header_done()) return boost::system::error_code{};
    } else if (!fill && *body_space < space_before) {
      return boost::system::error_code{};
    }
    if (ec || used == 0) break;  // the parser needs more than the buffer holds
  }
  return std::nullopt;
}

// The part's result when the peer closes the connection: end_of_stream before a
// message began, else whatever put_eof says (none when the body ends at EOF).
template <bool isRequest>
boost::system::error_code end_of_input(boost::beast::http::basic_parser<isRequest>& parser) {
  if (!parser.got_some()) return boost::beast::http::error::end_of_stream;
  boost::system::error_code ec;
  parser.put_eof(ec);
  return ec;
}

// Feeds the bytes of `buffer` to `parser`, reading more from `in` when it needs them,
// until the header is complete (`body_space` null) or, in the body, until the body
// buffer is full, the message ended or, unless `fill`, some body bytes arrived
// (`body_space` points at the parser's buffer_body size, which shrinks as bytes land).
// The caller sets the deadline, which therefore covers the whole part. Errors as
// Beast's http::async_read_some: end_of_stream for a connection closed before a message
// began, partial_message for one closed inside a message. `Stream` is any Asio
// AsyncReadStream (a plain or a TLS stream).
template <class Stream, bool isRequest>
boost::asio::awaitable<boost::system::error_code> read_message_part(
    Stream& in, boost::beast::flat_buffer& buffer,
    boost::beast::http::basic_parser<isRequest>& parser, const std::size_t* body_space,
    bool fill = false) {
  constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  const std::size_t space_before = body_space != nullptr ? *body_space : 0;
  for (;;) {
    if (auto done = put_buffered(buffer, parser, body_space, space_before, fill)) co_return *done;
    const std::size_t room = buffer.capacity() - buffer.size();
    auto [ec, n] = co_await in.async_read_some(
        buffer.prepare(std::clamp<std::size_t>(room, 4096, 64 * 1024)), use_tuple);
    if (ec == boost::asio::error::eof) co_return end_of_input(parser);
    if (ec) co_return ec;
    buffer.commit(n);
  }
}

// The buffers of one write: the head still to send (if any), then `size` body bytes at
// `data`, framed as a chunk when `chunked`, then the last chunk when `last`. Pointers
// into itself: neither copied nor moved.
class Piece {
 public:
  Piece(std::string_view head, const char* data, std::size_t size, bool chunked, bool last) {
    std::size_t size_line_length = 0;
    if (chunked && size > 0) {
      const auto end = std::to_chars(size_line_, size_line_ + sizeof size_line_ - 2, size, 16).ptr;
      end[0] = '\r';
      end[1] = '\n';
      size_line_length = static_cast<std::size_t>(end + 2 - size_line_);
    }
    const std::string_view chunk_end = chunked && size > 0 ? "\r\n" : "";
    const std::string_view last_chunk = chunked && last ? "0\r\n\r\n" : "";
    buffers_ = {boost::asio::buffer(head), boost::asio::buffer(size_line_, size_line_length),
                boost::asio::buffer(data, size), boost::asio::buffer(chunk_end),
                boost::asio::buffer(last_chunk)};
  }
  Piece(const Piece&) = delete;
  Piece& operator=(const Piece&) = delete;

  const std::array<boost::asio::const_buffer, 5>& buffers() const { return buffers_; }
  bool empty() const { return boost::asio::buffer_size(buffers_) == 0; }

 private:
  char size_line_[24];
  std::array<boost::asio::const_buffer, 5> buffers_;
};

// One write to `out` of a Piece made of these arguments, under `timeout`.
template <class Stream>
boost::asio::awaitable<boost::system::error_code> write_piece(
    Stream& out, std::string_view head, const char* data, std::size_t size,
    bool chunked, bool last, std::chrono::milliseconds timeout) {
  constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  const Piece piece(head, data, size, chunked, last);
  if (piece.empty()) co_return boost::system::error_code{};
  boost::beast::get_lowest_layer(out).expires_after(timeout);
  auto [ec, n] = co_await boost::asio::async_write(out, piece.buffers(), use_tuple);
  co_return ec;
}

// Writes `head` and then the body of the message whose header `parser` has read, as it
// arrives on `in`, to `out`, framed as chunks when `chunked`, copied through `chunk`.
// Each read and write has its own deadline. `on_read_whole` (if any) runs once the
// whole message has been read, before its last piece is written: what must be done by
// the time the peer has all of it.
template <bool isRequest, class InStream, class OutStream>
boost::asio::awaitable<RelayResult> relay(
    InStream& in, boost::beast::flat_buffer& in_buffer,
    FlatParser<isRequest>& parser,
    std::chrono::milliseconds in_timeout, OutStream& out,
    std::chrono::milliseconds out_timeout, std::string_view head, bool chunked,
    std::span<char> chunk, const std::function<void()>& on_read_whole = {}) {
  constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  RelayResult result;
  auto& body = parser.body();
  // The head goes out with the first piece of the body (one write, not two), which may
  // wait for that piece: a read returns as soon as any body bytes arrive.
  do {
    std::size_t size = 0;
    if (!parser.is_done()) {
      body.data = chunk.data();
      body.size = chunk.size();
      // A request body comes in whole pieces under one deadline, so that a client
      // trickling bytes is cut by it; a response is passed on as it arrives (streams).
      boost::beast::get_lowest_layer(in).expires_after(in_timeout);
      // What is buffered already (a small body comes with its head) needs no read, and
      // no coroutine frame for one.
      boost::system::error_code rec;
      if (auto buffered = put_buffered(in_buffer, parser, &body.size, chunk.size(), isRequest)) {
        rec = *buffered;
      } else {
        rec = co_await read_message_part(in, in_buffer, parser, &body.size, isRequest);
      }
      size = chunk.size() - body.size;
      if (rec && isRequest && !head.empty() &&
          rec.category() == boost::beast::http::make_error_code(
                                boost::beast::http::error::bad_chunk).category()) {
        // A request body that failed to parse (malformed, too large, cut short)
        // before any of it went out: the upstream never sees the request.
        co_return RelayResult{rec, RelaySide::in, 0};
      }
      if (rec) {
        // Hand on what did arrive (the head at least): the peer then sees a cut
        // message, not none at all.
        co_await write_piece(out, head, chunk.data(), size, chunked, false, out_timeout);
        co_return RelayResult{rec, RelaySide::in, result.body_bytes + size};
      }
    }
    if (parser.is_done() && on_read_whole) on_read_whole();
    // Written here, not by write_piece(): a coroutine frame per write costs more than
    // the write's own code.
    const Piece piece(head, chunk.data(), size, chunked, parser.is_done());
    if (!piece.empty()) {
      boost::beast::get_lowest_layer(out).expires_after(out_timeout);
      auto [wec, n] = co_await boost::asio::async_write(out, piece.buffers(), use_tuple);
      if (wec) co_return RelayResult{wec, RelaySide::out, result.body_bytes};
    }
    head = {};
    result.body_bytes += size;
  } while (!parser.is_done());
  co_return result;
}

}  // namespace phlow::gateway::detail
