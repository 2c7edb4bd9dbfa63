#include "redis/exchange.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <array>

#include "redis/pipeline.hpp"
#include "redis/tcp_stream.hpp"

namespace phlow::limiter::redis {

namespace asio = boost::asio;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<std::variant<std::vector<Value>, std::string>> exchange(
    asio::any_io_executor executor, const Transport& transport, const RedisNode& node,
    std::vector<std::string> commands, Stream::Clock::time_point deadline) {
  auto stream = make_stream(executor, transport);
  if (std::string why = co_await stream->open(node, deadline); !why.empty()) co_return why;
  std::vector<Value> replies;
  Pipeline pipeline([&replies](Pipeline::Handler, error_code, Value value) {
    replies.push_back(std::move(value));
  });
  for (const std::string& command : commands) pipeline.push(command, deadline, Stream::Clock::now(), [](error_code, Value) {});
  std::string out;
  pipeline.take_output(out);
  Watchdog watchdog(executor, deadline, [stream] { stream->close(); });
  auto [wec, written] = co_await async_write(*stream, asio::buffer(out), use_tuple);
  std::array<char, 4096> buffer;
  while (!wec && replies.size() < commands.size()) {
    auto [ec, n] = co_await async_read_some(*stream, asio::buffer(buffer), use_tuple);
    if (ec) {
      wec = ec;
      break;
    }
    if (!pipeline.feed(buffer.data(), n)) {
      stream->close();
      co_return "protocol error from " + node.endpoint();
    }
  }
  stream->close();
  if (watchdog.fired()) co_return node.endpoint() + " did not answer in time";
  if (wec) co_return "connection to " + node.endpoint() + " lost: " + wec.message();
  co_return std::move(replies);
}

}  // namespace phlow::limiter::redis
