#include "gateway/upstream_pool.hpp"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

#include "limiter/tls_client.hpp"
#include "proxy_stream.hpp"

namespace phlow::gateway {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr auto kTrustIdleFor = std::chrono::milliseconds(500);

void UpstreamStreamDeleter::operator()(detail::ProxyStream* stream) const {
  if (open != nullptr) open->fetch_sub(1, std::memory_order_relaxed);
  delete stream;
}

namespace {

// True when an idle connection is still usable: no EOF and no unexpected bytes.
bool still_open(UpstreamPool::Stream& stream) {
  auto& socket = stream.socket();
  if (!socket.is_open()) return false;
  char byte;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

UpstreamPool::Lease UpstreamPool::take_idle(const std::string& key, Reuse reuse) {
  Lease lease;
  if (reuse != Reuse::fresh) {
    if (auto it = idle_.find(key); it != idle_.end()) {
      auto& list = it->second;
      while (!list.empty()) {
        Idle idle = std::move(list.back());
        list.pop_back();
        // Probing costs a system call per request: skip it for connections that were
        // busy a moment ago (upstreams keep idle connections for seconds) when the
        // request is retried once should it meet a closed one.
        const bool trusted = reuse == Reuse::trusted &&
                             std::chrono::steady_clock::now() - idle.since < kTrustIdleFor;
        if (trusted || still_open(*idle.stream)) {
          lease.stream = std::move(idle.stream);
          lease.reused = true;
          return lease;
        }
        // One closed by its peer usually means the upstream restarted: the others are
        // gone too. Dropping them now keeps no dead socket (and fd) in the pool, which
        // takes from the top and would not reach the bottom of the list for long.
        std::erase_if(list, [](Idle& other) { return !still_open(*other.stream); });
      }
    }
  }
  return lease;
}

net::awaitable<UpstreamPool::Lease> UpstreamPool::connect(const config::Upstream& upstream,
                                                          net::ssl::context* tls) {
  Lease lease;
  tcp::resolver resolver(executor_);
  auto [rec, endpoints] =
      co_await resolver.async_resolve(upstream.url.host, std::to_string(upstream.url.port), use_tuple);
  if (rec) {
    lease.error = rec;
    co_return lease;
  }
  StreamPtr stream(new Stream(executor_), StreamDeleter{open_gauge_});
  if (open_gauge_ != nullptr) open_gauge_->fetch_add(1, std::memory_order_relaxed);
  stream->expires_after(upstream.connect_timeout);
  auto [cec, endpoint] = co_await stream->next_layer().async_connect(endpoints, use_tuple);
  if (cec) {
    lease.error = cec;
    co_return lease;
  }
  boost::system::error_code ignored;
  stream->socket().set_option(tcp::no_delay(true), ignored);
  if (tls != nullptr) {
    // The deadline set for the connect runs on: connect and handshake share it.
    SSL* ssl = SSL_new(tls->native_handle());
    if (ssl == nullptr) {
      lease.error = net::error::no_memory;
      co_return lease;
    }
    stream->start_tls(ssl);
    const std::string& name = upstream.tls.server_name.empty() ? upstream.url.host : upstream.tls.server_name;
    if (!limiter::prepare_tls_client(ssl, name, upstream.tls.verify)) {
      lease.error = net::error::invalid_argument;
      lease.tls_failed = true;
      lease.tls_failure = "cannot verify the name \"" + name + "\"";
      co_return lease;
    }
    auto [hec] = co_await stream->tls().next_layer().async_handshake(net::ssl::stream_base::client, use_tuple);
    if (hec) {
      lease.error = hec;
      lease.tls_failed = hec != beast::error::timeout;
      lease.tls_failure = limiter::tls_handshake_failure(hec, ssl);
      co_return lease;
    }
    if (tls_handshakes_ != nullptr) tls_handshakes_->fetch_add(1, std::memory_order_relaxed);
  }
  lease.stream = std::move(stream);
  co_return lease;
}

void UpstreamPool::release(const config::Upstream& upstream, const std::string& key,
                           StreamPtr stream) {
  auto& list = idle_[key];
  if (list.size() >= upstream.max_idle_connections) return;  // closes it
  stream->expires_never();
  list.push_back(Idle{std::move(stream), std::chrono::steady_clock::now()});
}

std::size_t UpstreamPool::idle_count() const {
  std::size_t n = 0;
  for (const auto& entry : idle_) n += entry.second.size();
  return n;
}

}  // namespace phlow::gateway
