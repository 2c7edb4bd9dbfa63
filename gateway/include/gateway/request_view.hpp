#pragma once
// What the sans-I/O parts of the gateway (router, identifier extractor) see of a
// request: no Beast types, so they build and test without it.

#include <functional>
#include <optional>
#include <string_view>

namespace phlow::gateway {

class HeaderSource {
 public:
  virtual ~HeaderSource() = default;
  // Calls `fn` with each value of the header `name` (case-insensitive), in the order
  // they arrived.
  virtual void for_each(std::string_view name,
                        const std::function<void(std::string_view)>& fn) const = 0;
  // The first value of `name`, or nullopt.
  std::optional<std::string_view> first(std::string_view name) const {
    std::optional<std::string_view> out;
    for_each(name, [&](std::string_view v) {
      if (!out) out = v;
    });
    return out;
  }
};

struct RequestView {
  std::string_view method;        // "GET"
  std::string_view target;        // "/path?query", as received
  std::string_view host;          // Host header without the port, lowercase
  std::string_view peer_address;  // textual IP of the TCP peer ("127.0.0.1", "::1")
  const HeaderSource& headers;

  std::string_view path() const { return target.substr(0, target.find('?')); }
  std::string_view query() const {
    const auto q = target.find('?');
    return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
  }
};

}  // namespace phlow::gateway
