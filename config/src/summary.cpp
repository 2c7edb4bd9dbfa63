#include "config/summary.hpp"

#include <sstream>

#include "config/units.hpp"

namespace phlow::config {
namespace {

std::string describe_limit(const LimitSpec& spec) {
  const auto& l = spec.limit;
  const std::string window = format_duration(std::chrono::milliseconds(l.window_ms));
  std::string out = l.algorithm == limiter::Algorithm::concurrency
                        ? std::to_string(l.requests) + " in flight, concurrency (lease " + window + ")"
                        : std::to_string(l.requests) + " per " + window + ", " +
                              std::string(limiter::to_string(l.algorithm));
  if (l.algorithm == limiter::Algorithm::token_bucket) {
    out += " (burst " + std::to_string(l.effective_burst()) + ")";
  }
  out += ", key " + spec.key.to_string();
  if (!spec.cost_header.empty()) out += ", cost from request header " + spec.cost_header;
  if (!spec.response_cost_header.empty()) {
    out += ", plus cost from response header " + spec.response_cost_header;
  }
  if (l.shadow) out += ", shadow";
  return out;
}

std::string describe_redis(const RedisSettings& redis) {
  if (redis.url.empty()) return "disabled: limits are kept in memory, per instance";
  std::string transport;
  if (redis.target.tls) transport = redis.tls.verify ? ", TLS" : ", TLS WITHOUT certificate verification";
  return std::string(limiter::to_string(redis.target.topology)) + " " + redact_redis_url(redis.url) +
         " (timeout " + format_duration(redis.timeout) + transport +
         ", on failure: " + std::string(to_string(redis.on_failure)) + ", fallback share " +
         (redis.fallback_share == 0 ? std::string("auto") : std::to_string(redis.fallback_share)) +
         ")";
}

std::string describe_route(const Config& config, const Route& route) {
  std::string methods;
  for (const auto& m : route.match.methods) methods += (methods.empty() ? "" : ",") + m;
  std::string out = (methods.empty() ? "*" : methods) + " " + route.match.path_prefix;
  if (route.match.host) out += " (host " + *route.match.host + ")";
  out += " -> " + route.upstream + ", limits: ";
  std::string names;
  for (auto index : route.limits) names += (names.empty() ? "" : ", ") + config.limits[index].name();
  return out + (names.empty() ? "none" : names);
}

// How the agent ID is trusted. The secret is never shown, only that it is set.
std::string describe_agent_id(const AgentIdSettings& agent) {
  if (!agent.jwt) {
    return "header " + agent.header + ", else claim " + agent.jwt_claim +
           " of the bearer JWT (NOT verified)";
  }
  const JwtSettings& jwt = *agent.jwt;
  std::string out = "claim " + agent.jwt_claim + " of a verified JWT (";
  if (!jwt.secret.empty()) out += "secret (set), HS256/384/512";
  if (!jwt.public_key_file.empty()) out += "public key " + jwt.public_key_file;
  if (!jwt.jwks_file.empty()) out += "JWKS " + jwt.jwks_file;
  if (!jwt.issuer.empty()) out += ", issuer " + jwt.issuer;
  if (!jwt.audience.empty()) out += ", audience " + jwt.audience;
  out += ", leeway " + format_duration(jwt.leeway) + ", invalid tokens: " +
         std::string(to_string(jwt.on_invalid)) + ")";
  return out;
}

}  // namespace

std::string summarize(const Config& config) {
  std::ostringstream out;
  out << "listen     " << config.listen.to_string() << " (threads: "
      << (config.threads == 0 ? std::string("one per core") : std::to_string(config.threads))
      << ")\n";
  if (config.tls.enabled()) out << "tls        HTTPS with " << config.tls.cert_file << "\n";
  out << "admin      " << config.admin.listen.to_string()
      << (config.admin.token.empty() ? " (no token)" : " (token required)") << "\n";
  out << "redis      " << describe_redis(config.redis) << "\n";
  out << "agent_id   " << describe_agent_id(config.identifiers.agent_id) << "\n";
  if (config.shadow_mode) out << "shadow     on: limits are counted and logged, never enforced\n";
  out << "upstreams\n";
  for (const auto& u : config.upstreams) {
    out << "  " << u.name << ": " << u.url.to_string() << " (connect " << format_duration(u.connect_timeout)
        << ", timeout " << format_duration(u.timeout) << ")"
        << (u.url.tls() && !u.tls.verify ? " CERTIFICATE NOT VERIFIED (tls.verify: false)" : "")
        << "\n";
  }
  out << "routes (first match wins)\n";
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    out << "  [" << i << "] " << describe_route(config, config.routes[i]) << "\n";
  }
  out << "limits\n";
  for (const auto& spec : config.limits) out << "  " << spec.name() << ": " << describe_limit(spec) << "\n";
  return out.str();
}

}  // namespace phlow::config
