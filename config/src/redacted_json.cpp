// to_redacted_json(): the inverse of the loader, minus the secrets.

#include "config/summary.hpp"
#include "config/units.hpp"

namespace phlow::config {
namespace {

using json = nlohmann::ordered_json;

std::string access_log_text(const AccessLog& log) {
  switch (log.mode) {
    case AccessLogMode::stdout_lines: return "stdout";
    case AccessLogMode::off: return "off";
    case AccessLogMode::file: return log.path;
  }
  return "stdout";
}

json limit_json(const LimitSpec& spec) {
  const auto& l = spec.limit;
  json out = {{"requests", l.requests},
              {"window", format_duration(std::chrono::milliseconds(l.window_ms))},
              {"key", spec.key.to_string()},
              {"algorithm", std::string(limiter::to_string(l.algorithm))},
              {"shadow", l.shadow}};
  if (l.burst > 0) out["burst"] = l.burst;
  if (!spec.cost_header.empty()) out["cost"] = "header:" + spec.cost_header;
  if (!spec.response_cost_header.empty()) out["cost_from_response"] = "header:" + spec.response_cost_header;
  return out;
}

json route_json(const Config& config, const Route& route) {
  json match = {{"path_prefix", route.match.path_prefix}, {"methods", route.match.methods}};
  if (route.match.host) match["host"] = *route.match.host;
  json limits = json::array();
  for (auto index : route.limits) limits.push_back(config.limits[index].name());
  return {{"match", match}, {"upstream", route.upstream}, {"limits", limits}};
}

// The secret is never shown, only that it is set; file names are (not what they hold).
json jwt_json(const JwtSettings& jwt) {
  json out = json::object();
  if (!jwt.secret.empty()) out["secret"] = "***";
  if (!jwt.public_key_file.empty()) out["public_key_file"] = jwt.public_key_file;
  if (!jwt.jwks_file.empty()) out["jwks_file"] = jwt.jwks_file;
  if (!jwt.issuer.empty()) out["issuer"] = jwt.issuer;
  if (!jwt.audience.empty()) out["audience"] = jwt.audience;
  out["leeway"] = format_duration(jwt.leeway);
  out["on_invalid"] = std::string(to_string(jwt.on_invalid));
  return out;
}

json identifiers_json(const Identifiers& ids) {
  json proxies = json::array();
  for (const auto& cidr : ids.ip.trusted_proxies) proxies.push_back(cidr.to_string());
  json agent_id = {{"header", ids.agent_id.header}, {"jwt_claim", ids.agent_id.jwt_claim}};
  if (ids.agent_id.jwt) agent_id["jwt"] = jwt_json(*ids.agent_id.jwt);
  return {{"agent_id", agent_id},
          {"api_key", {{"header", ids.api_key.header}, {"query", ids.api_key.query}}},
          {"ip", {{"trusted_proxies", proxies},
                  {"forwarded_header", ids.ip.forwarded_header},
                  {"ipv6_prefix", ids.ip.ipv6_prefix}}}};
}

json redis_json(const RedisSettings& redis) {
  json out = {{"url", redis.url.empty() ? "" : redact_redis_url(redis.url)},
              {"key_prefix", redis.key_prefix},
              {"timeout", format_duration(redis.timeout)},
              {"on_failure", std::string(to_string(redis.on_failure))},
              {"fallback_share", redis.fallback_share == 0 ? json("auto") : json(redis.fallback_share)}};
  // File names only: what the files hold is never read into the config.
  if (redis.target.tls) {
    out["tls"] = {{"ca_file", redis.tls.ca_file},
                  {"cert_file", redis.tls.cert_file},
                  {"key_file", redis.tls.key_file},
                  {"server_name", redis.tls.server_name},
                  {"verify", redis.tls.verify}};
  }
  if (!redis.sentinel_password.empty()) out["sentinel_password"] = "***";
  return out;
}

json server_json(const Config& config, json out) {
  out["listen"] = config.listen.to_string();
  // File names only: what the files hold is never read into the config.
  if (config.tls.enabled()) {
    out["tls"] = {{"cert_file", config.tls.cert_file}, {"key_file", config.tls.key_file}};
  }
  out["threads"] = config.threads;
  out["shutdown_grace"] = format_duration(config.shutdown_grace);
  out["http"] = {{"header_timeout", format_duration(config.http.header_timeout)},
                 {"idle_timeout", format_duration(config.http.idle_timeout)},
                 {"body_timeout", format_duration(config.http.body_timeout)},
                 {"max_header_bytes", format_size(config.http.max_header_bytes)},
                 {"max_headers", config.http.max_headers},
                 {"max_body_bytes", format_size(config.http.max_body_bytes)},
                 {"max_connections", config.http.max_connections}};
  out["access_log"] = access_log_text(config.access_log);
  out["log_level"] = std::string(to_string(config.log_level));
  out["shadow_mode"] = config.shadow_mode;
  return out;
}

}  // namespace

json to_redacted_json(const Config& config) {
  json out = server_json(config, json::object());
  out["redis"] = redis_json(config.redis);
  out["admin"] = {{"listen", config.admin.listen.to_string()},
                  {"token", config.admin.token.empty() ? "" : "***"}};
  for (const auto& u : config.upstreams) {
    out["upstreams"][u.name] = {{"url", u.url.to_string()},
                                {"connect_timeout", format_duration(u.connect_timeout)},
                                {"timeout", format_duration(u.timeout)},
                                {"max_idle_connections", u.max_idle_connections}};
    if (u.url.tls()) {
      out["upstreams"][u.name]["tls"] = {{"ca_file", u.tls.ca_file},
                                         {"cert_file", u.tls.cert_file},
                                         {"key_file", u.tls.key_file},
                                         {"server_name", u.tls.server_name},
                                         {"verify", u.tls.verify}};
    }
  }
  out["limits"] = json::object();
  for (const auto& spec : config.limits) out["limits"][spec.name()] = limit_json(spec);
  out["routes"] = json::array();
  for (const auto& route : config.routes) out["routes"].push_back(route_json(config, route));
  out["identifiers"] = identifiers_json(config.identifiers);
  json families = json::array();
  if (config.response_headers.x_ratelimit) families.push_back("x-ratelimit");
  if (config.response_headers.ietf) families.push_back("ietf");
  out["response_headers"] = families;
  return out;
}

}  // namespace phlow::config
