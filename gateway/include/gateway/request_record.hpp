#pragma once
// What one request did, for the metrics and the access log: filled by the steps of the
// request path, written out once when the request ends (RequestRecord::append_to).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/access_log.hpp"

namespace phlow::gateway {

struct RequestRecord {
  std::chrono::steady_clock::time_point start;
  std::chrono::steady_clock::duration limiter{};
  std::chrono::steady_clock::duration upstream{};
  std::optional<std::chrono::steady_clock::time_point> upstream_start;  // set when forwarded
  bool upstream_observed = false;
  int status = 0;  // 0: no response was sent (the client went away first)
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::size_t route_id = 0;
  std::string_view route;     // label, owned by the snapshot
  std::string_view upstream_name;
  std::string_view decision = "none";
  std::string_view limit;     // owned by the snapshot
  std::string identifier;     // as in the key; only filled when logging
  std::int64_t cost = 0;           // units from a `cost` header (the largest); 0: none
  std::int64_t response_cost = 0;  // units the response reported (cost_from_response)
  std::string client_ip;      // only filled when logging
  std::string path;           // as received, API keys redacted; only filled when logging

  // Starts the record of a new request: everything cleared, the strings' capacity kept.
  void reset(std::chrono::steady_clock::time_point now, std::size_t unmatched_route_id);

  // One access-log line for this request (nothing when no response was sent).
  // `client_ip` stands in when the record has none of its own.
  void append_to(AccessLogBuffer& log, std::string_view request_id, std::string_view peer_ip,
                 std::string_view method) const;
};

}  // namespace phlow::gateway
