#pragma once
// One downstream connection: reads requests (pipelined ones in order), routes them,
// checks their limits, and relays them to the upstream or answers itself.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace phlow::gateway {

class Worker;

// Runs until the connection closes. Never throws: errors end the connection.
boost::asio::awaitable<void> serve_connection(Worker& worker, boost::asio::ip::tcp::socket socket);

}  // namespace phlow::gateway
