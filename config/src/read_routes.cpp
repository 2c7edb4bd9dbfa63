// The `upstreams:` and `routes:` sections.

#include <algorithm>
#include <cctype>

#include "limiter/decision.hpp"
#include "limiter/redis_options.hpp"
#include "sections.hpp"

namespace phlow::config {
namespace {

void read_upstream(ObjectReader& reader, const std::string& name, std::vector<Upstream>& out) {
  Upstream upstream;
  upstream.name = name;
  if (auto text = reader.optional_string("url")) {
    std::string why;
    if (auto url = parse_upstream_url(*text, &why)) {
      upstream.url = *url;
    } else {
      reader.diagnostics().error(reader.path().key("url"),
                                 "invalid upstream URL \"" + *text + "\": " + why);
    }
  } else if (!reader.has("url")) {
    reader.diagnostics().error(reader.path(), "missing url (such as http://127.0.0.1:8000)");
  }
  const bool has_tls = read_tls_client(reader, upstream.tls);
  if (has_tls && !upstream.url.tls()) {
    reader.diagnostics().error(reader.path().key("tls"), "tls needs an https:// url");
  } else if (upstream.url.tls()) {
    if (const std::string why = limiter::check_tls(upstream.tls); !why.empty()) {
      reader.diagnostics().error(reader.path().key("tls"), why);
    }
  }
  upstream.connect_timeout = reader.duration("connect_timeout", upstream.connect_timeout);
  upstream.timeout = reader.duration("timeout", upstream.timeout);
  upstream.max_idle_connections = static_cast<std::uint32_t>(
      reader.integer("max_idle_connections", upstream.max_idle_connections, 0, 100'000));
  reader.finish();
  out.push_back(std::move(upstream));
}

std::string names_of(const std::vector<LimitSpec>& limits) {
  std::string out;
  for (const auto& limit : limits) out += (out.empty() ? "" : ", ") + limit.name();
  return out.empty() ? "none" : out;
}

void read_match(ObjectReader& route, RouteMatch& out) {
  ObjectReader match = route.object("match");
  if (!route.has("match")) route.diagnostics().error(route.path(), "missing match");
  out.path_prefix = match.string("path_prefix", out.path_prefix);
  if (!out.path_prefix.starts_with('/')) {
    match.diagnostics().error(match.path().key("path_prefix"),
                              "expected a path starting with '/', got \"" + out.path_prefix + "\"");
  }
  for (auto [method, path] : match.string_list("methods")) {
    const bool letters = !method.empty() && std::all_of(method.begin(), method.end(), [](char c) {
      return std::isalpha(static_cast<unsigned char>(c)) != 0;
    });
    if (!letters) match.diagnostics().error(path, "expected an HTTP method such as GET or POST");
    std::transform(method.begin(), method.end(), method.begin(),
                   [](char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); });
    out.methods.push_back(method);
  }
  if (auto host = match.optional_string("host")) {
    std::transform(host->begin(), host->end(), host->begin(),
                   [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
    out.host = *host;
  }
  match.finish();
}

void read_route_upstream(ObjectReader& route, const Config& config, Route& out) {
  auto name = route.optional_string("upstream");
  if (!name) {
    if (config.upstreams.size() == 1 && !route.has("upstream")) {
      out.upstream = config.upstreams[0].name;  // the only choice
    } else if (!route.has("upstream")) {
      route.diagnostics().error(route.path(), "missing upstream (there is more than one)");
    }
    return;
  }
  out.upstream = *name;
  if (auto index = config.find_upstream(*name)) {
    out.upstream_index = *index;
  } else {
    std::string defined;
    for (const auto& u : config.upstreams) defined += (defined.empty() ? "" : ", ") + u.name;
    route.diagnostics().error(route.path().key("upstream"),
                              "unknown upstream \"" + *name + "\" (defined upstreams: " +
                                  (defined.empty() ? "none" : defined) + ")");
  }
}

void read_route_limits(ObjectReader& route, const Config& config, Route& out) {
  const auto names = route.string_list("limits");
  if (names.size() > limiter::kMaxLimitsPerCheck) {
    route.diagnostics().error(route.path().key("limits"),
                              "a route applies at most " +
                                  std::to_string(limiter::kMaxLimitsPerCheck) + " limits, got " +
                                  std::to_string(names.size()));
  }
  for (const auto& [name, path] : names) {
    auto index = config.find_limit(name);
    if (!index) {
      route.diagnostics().error(path, "unknown limit \"" + name + "\" (defined limits: " +
                                          names_of(config.limits) + ")");
    } else if (std::find(out.limits.begin(), out.limits.end(), *index) != out.limits.end()) {
      route.diagnostics().error(path, "limit \"" + name + "\" is listed twice");
    } else {
      out.limits.push_back(*index);
    }
  }
}

}  // namespace

void read_upstreams(ObjectReader& top, std::vector<Upstream>& out) {
  if (!top.has("upstreams")) {
    top.diagnostics().error(top.path().key("upstreams"),
                            "missing: at least one upstream is required");
  }
  ObjectReader upstreams = top.object("upstreams");
  for (const auto& name : upstreams.keys()) {
    ObjectReader reader = upstreams.object(name);
    read_upstream(reader, name, out);
  }
}

Route default_route(const Config& config) {
  Route route;
  route.upstream = config.upstreams.empty() ? "" : config.upstreams[0].name;
  if (auto auth = config.find_limit("auth")) route.limits.push_back(*auth);
  return route;
}

void read_routes(ObjectReader& top, Config& out) {
  if (!top.has("routes")) {
    if (out.upstreams.size() > 1) {
      top.diagnostics().error(top.path().key("routes"),
                              "missing: with more than one upstream, routes must say which to use");
    } else if (!out.find_limit("auth")) {
      top.diagnostics().error(top.path().key("routes"),
                              "missing: the default route applies limit \"auth\", which is not "
                              "defined (defined limits: " + names_of(out.limits) + ")");
    } else if (!out.upstreams.empty()) {
      out.routes.push_back(default_route(out));
    }
    return;
  }
  auto list = top.get("routes");
  if (!list->value->is_array()) {
    top.diagnostics().expected(*list, "a list of routes");
    return;
  }
  if (list->value->empty()) {
    top.diagnostics().error(list->path, "expected at least one route");
  }
  for (std::size_t i = 0; i < list->value->size(); ++i) {
    ObjectReader reader(top.diagnostics(), Node{&(*list->value)[i], list->path.index(i)});
    Route route;
    read_match(reader, route.match);
    read_route_upstream(reader, out, route);
    read_route_limits(reader, out, route);
    reader.finish();
    out.routes.push_back(std::move(route));
  }
}

}  // namespace phlow::config
