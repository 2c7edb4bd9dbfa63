#include "gateway/router.hpp"

#include <algorithm>

namespace phlow::gateway {
namespace {

bool path_matches(std::string_view prefix, std::string_view path) {
  if (!path.starts_with(prefix)) return false;
  // A prefix ending in '/' ("/", "/api/") already ends at a segment boundary.
  if (prefix.empty() || prefix.back() == '/' || path.size() == prefix.size()) return true;
  return path[prefix.size()] == '/';
}

// Config methods are stored uppercase; the request's is compared case-insensitively
// so that a client sending "post" cannot slip past a POST-only route's limits.
bool equals_upper(std::string_view upper, std::string_view method) {
  if (upper.size() != method.size()) return false;
  for (std::size_t i = 0; i < upper.size(); ++i) {
    const char c = method[i];
    if (upper[i] != ((c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c)) return false;
  }
  return true;
}

bool method_matches(const std::vector<std::string>& methods, std::string_view method) {
  if (methods.empty()) return true;
  return std::any_of(methods.begin(), methods.end(),
                     [&](const std::string& m) { return equals_upper(m, method); });
}

bool route_matches(const config::RouteMatch& match, const RequestView& request) {
  return path_matches(match.path_prefix, request.path()) &&
         method_matches(match.methods, request.method) &&
         (!match.host || *match.host == request.host);
}

}  // namespace

const config::Route* match_route(const config::Config& config, const RequestView& request) {
  for (const config::Route& route : config.routes) {
    if (route_matches(route.match, request)) return &route;
  }
  return nullptr;
}

}  // namespace phlow::gateway
