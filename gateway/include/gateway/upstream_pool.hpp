#pragma once
// Keep-alive connections to upstreams, per worker (no locks). Idle connections are
// reused last-in first-out and checked for a peer close before reuse.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"

namespace phlow::gateway {

class UpstreamPool {
 public:
  using Stream = boost::beast::tcp_stream;

  struct Lease {
    boost::system::error_code error;  // beast::error::timeout when connect timed out
    std::unique_ptr<Stream> stream;
    bool reused = false;  // came from the idle list: it may have died in between
  };

  explicit UpstreamPool(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

  // An idle connection to `upstream` when one is alive (unless `fresh`), else a new
  // one connected within upstream.connect_timeout.
  boost::asio::awaitable<Lease> acquire(const config::Upstream& upstream, const std::string& key,
                                        bool fresh = false);

  // Returns a connection whose last response was read whole and allows keep-alive.
  void release(const config::Upstream& upstream, const std::string& key,
               std::unique_ptr<Stream> stream);

  std::size_t idle_count() const;

 private:
  boost::asio::any_io_executor executor_;
  struct Idle {
    std::unique_ptr<Stream> stream;
    std::chrono::steady_clock::time_point since;
  };
  std::unordered_map<std::string, std::vector<Idle>> idle_;
};

}  // namespace phlow::gateway
