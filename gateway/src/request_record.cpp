#include "gateway/request_record.hpp"

namespace phlow::gateway {

void RequestRecord::reset(std::chrono::steady_clock::time_point now, std::size_t unmatched_route_id) {
  start = now;
  limiter = {};
  upstream = {};
  upstream_start.reset();
  upstream_observed = false;
  status = 0;
  bytes_in = 0;
  bytes_out = 0;
  route_id = unmatched_route_id;
  route = {};
  upstream_name = {};
  decision = "none";
  limit = {};
  identifier.clear();
  cost = 0;
  response_cost = 0;
  client_ip.clear();
  path.clear();
}

void RequestRecord::append_to(AccessLogBuffer& log, std::string_view request_id,
                              std::string_view peer_ip, std::string_view method) const {
  if (status == 0) return;
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  AccessRecord r;
  r.time = std::chrono::system_clock::now();
  r.request_id = request_id;
  r.client_ip = client_ip.empty() ? peer_ip : std::string_view(client_ip);
  r.method = method;
  r.path = path;
  r.route = route;
  r.upstream = upstream_name;
  r.status = status;
  r.bytes_in = bytes_in;
  r.bytes_out = bytes_out;
  r.total = duration_cast<microseconds>(std::chrono::steady_clock::now() - start);
  r.limiter = duration_cast<microseconds>(limiter);
  r.upstream_time = duration_cast<microseconds>(upstream);
  r.decision = decision;
  r.limit = limit;
  r.identifier = identifier;
  r.cost = cost;
  r.response_cost = response_cost;
  log.append(r);
}

}  // namespace phlow::gateway
