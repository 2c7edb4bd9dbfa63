#pragma once
// Keep-alive connections to upstreams, per worker (no locks). Idle connections are
// reused last-in first-out and checked for a peer close before reuse.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"

namespace phlow::gateway {

// Deleting an upstream connection takes it off the open-connections gauge.
struct UpstreamStreamDeleter {
  std::atomic<std::int64_t>* open = nullptr;
  void operator()(boost::beast::tcp_stream* stream) const {
    if (open != nullptr) open->fetch_sub(1, std::memory_order_relaxed);
    delete stream;
  }
};

class UpstreamPool {
 public:
  using Stream = boost::beast::tcp_stream;
  using StreamDeleter = UpstreamStreamDeleter;
  using StreamPtr = std::unique_ptr<Stream, StreamDeleter>;

  struct Lease {
    boost::system::error_code error;  // beast::error::timeout when connect timed out
    StreamPtr stream;
    bool reused = false;  // came from the idle list: it may have died in between
  };

  // `open_gauge` counts the connections this pool made that are still open.
  UpstreamPool(boost::asio::any_io_executor executor, std::atomic<std::int64_t>* open_gauge)
      : executor_(std::move(executor)), open_gauge_(open_gauge) {}

  // How an idle connection may be reused. `trusted` skips the liveness probe for one
  // that was busy a moment ago (the caller retries the request if it had died);
  // `probed` always probes (a request that must not be sent twice); `fresh` never
  // reuses.
  enum class Reuse { trusted, probed, fresh };

  // An idle connection to `upstream` when one is alive (as `reuse` allows), else a new
  // one connected within upstream.connect_timeout.
  boost::asio::awaitable<Lease> acquire(const config::Upstream& upstream, const std::string& key,
                                        Reuse reuse = Reuse::trusted);

  // Returns a connection whose last response was read whole and allows keep-alive.
  void release(const config::Upstream& upstream, const std::string& key, StreamPtr stream);

  std::size_t idle_count() const;

 private:
  boost::asio::any_io_executor executor_;
  std::atomic<std::int64_t>* open_gauge_;
  struct Idle {
    StreamPtr stream;
    std::chrono::steady_clock::time_point since;
  };
  std::unordered_map<std::string, std::vector<Idle>> idle_;
};

}  // namespace phlow::gateway
