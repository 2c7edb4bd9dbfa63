#pragma once
// Keep-alive connections to upstreams, per worker (no locks). Idle connections are
// reused last-in first-out and checked for a peer close before reuse. An https
// upstream's connections are TLS: the handshake (verification, SNI) is part of the
// connect, and a pooled connection skips it.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"

namespace boost::asio::ssl {
class context;
}

namespace phlow::gateway {

namespace detail {
class ProxyStream;  // proxy_stream.hpp
}

// Deleting an upstream connection takes it off the open-connections gauge.
struct UpstreamStreamDeleter {
  std::atomic<std::int64_t>* open = nullptr;
  void operator()(detail::ProxyStream* stream) const;
};

class UpstreamPool {
 public:
  using Stream = detail::ProxyStream;
  using StreamDeleter = UpstreamStreamDeleter;
  using StreamPtr = std::unique_ptr<Stream, StreamDeleter>;

  struct Lease {
    boost::system::error_code error;  // beast::error::timeout when connect timed out
    bool tls_failed = false;          // error is the TLS handshake's (tls_failure says why)
    std::string tls_failure;
    StreamPtr stream;
    bool reused = false;  // came from the idle list: it may have died in between
  };

  // `open_gauge` counts the connections this pool made that are still open;
  // `tls_handshakes` the TLS handshakes it completed.
  UpstreamPool(boost::asio::any_io_executor executor, std::atomic<std::int64_t>* open_gauge,
               std::atomic<std::uint64_t>* tls_handshakes = nullptr)
      : executor_(std::move(executor)), open_gauge_(open_gauge), tls_handshakes_(tls_handshakes) {}

  // How an idle connection may be reused. `trusted` skips the liveness probe for one
  // that was busy a moment ago (the caller retries the request if it had died);
  // `probed` always probes (a request that must not be sent twice); `fresh` never
  // reuses.
  enum class Reuse { trusted, probed, fresh };

  // An idle connection to the upstream of `key` when one is alive (as `reuse` allows),
  // at once; else a lease without a stream (and without an error): connect() makes one.
  // Two steps, so that the common case costs the caller no coroutine frame.
  Lease take_idle(const std::string& key, Reuse reuse = Reuse::trusted);

  // A new connection to `upstream`, connected within upstream.connect_timeout, with TLS
  // over it when `tls` (the snapshot's context for an https upstream) is given, its
  // handshake within the same deadline.
  boost::asio::awaitable<Lease> connect(const config::Upstream& upstream, boost::asio::ssl::context* tls);

  // Returns a connection whose last response was read whole and allows keep-alive.
  void release(const config::Upstream& upstream, const std::string& key, StreamPtr stream);

  std::size_t idle_count() const;

 private:
  boost::asio::any_io_executor executor_;
  std::atomic<std::int64_t>* open_gauge_;
  std::atomic<std::uint64_t>* tls_handshakes_;
  struct Idle {
    StreamPtr stream;
    std::chrono::steady_clock::time_point since;
  };
  std::unordered_map<std::string, std::vector<Idle>> idle_;
};

}  // namespace phlow::gateway
