#pragma once
// A short conversation with one Redis node on its own stream: open, send commands,
// read their replies, close - all before one deadline. For what is not worth a
// pipelined connection: asking a sentinel where the master is.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <string>
#include <variant>
#include <vector>

#include "limiter/redis_url.hpp"
#include "redis/resp.hpp"
#include "redis/stream.hpp"

namespace phlow::limiter::redis {

// The replies to `commands` (RESP bytes each), in order, or why there are none (the
// node unreachable, the deadline passed, a broken reply). Error replies are replies.
boost::asio::awaitable<std::variant<std::vector<Value>, std::string>> exchange(
    boost::asio::any_io_executor executor, const Transport& transport, const RedisNode& node,
    std::vector<std::string> commands, Stream::Clock::time_point deadline);

}  // namespace phlow::limiter::redis
