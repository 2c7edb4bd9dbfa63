#pragma once
// The validated configuration: plain data, immutable once loaded, shared by pointer
// (std::shared_ptr<const Config>) and swapped whole on reload. Every default here is
// the one SPEC.md documents. Loading lives in config/loader.hpp.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/cidr.hpp"
#include "config/limit_spec.hpp"
#include "config/listen_address.hpp"
#include "config/url.hpp"
#include "limiter/decision.hpp"
#include "limiter/redis_options.hpp"

namespace phlow::config {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

struct HttpSettings {
  milliseconds header_timeout = 10s;       // whole request head (slowloris)
  milliseconds idle_timeout = 60s;         // keep-alive with no request
  milliseconds body_timeout = 60s;         // each read of a request body (slow bodies)
  std::uint64_t max_header_bytes = 16 * 1024;           // past it: 431 (414 in the request line)
  std::uint64_t max_headers = 100;                      // header fields; past it: 431
  std::uint64_t max_body_bytes = 100ULL * 1024 * 1024;  // past it: 413
  std::uint64_t max_connections = 10000;                // past it: 503
  bool operator==(const HttpSettings&) const = default;
};

enum class AccessLogMode : std::uint8_t { stdout_lines, off, file };

struct AccessLog {
  AccessLogMode mode = AccessLogMode::stdout_lines;
  std::string path;  // only for `file`
  bool operator==(const AccessLog&) const = default;
};

// The spdlog levels, by the names spdlog prints.
enum class LogLevel : std::uint8_t { trace, debug, info, warn, error, critical, off };

// redis.on_failure: the limiter's own failure modes (one enum for both layers).
using OnFailure = limiter::FailureMode;

struct RedisSettings {
  std::string url;  // empty: no Redis, in-memory limits only
  limiter::RedisUrl target;  // `url` parsed (topology, nodes, credentials), when set
  limiter::RedisTls tls;     // redis.tls: for rediss URLs
  std::string sentinel_password;  // redis.sentinel_password: AUTH for the sentinels
  std::string key_prefix = "phlow:ratelimit:";
  milliseconds timeout = 50ms;  // deadline of one limit check
  OnFailure on_failure = OnFailure::fallback;
  std::uint32_t fallback_share = 0;  // 0 = auto (live gateways seen in Redis), else N
  bool operator==(const RedisSettings&) const = default;
  // What make_store() takes: the one settings struct of gateway, admin and library.
  limiter::RedisOptions store_options() const {
    return {.url = target, .tls = tls, .sentinel_password = sentinel_password, .timeout = timeout};
  }
};

struct AdminSettings {
  ListenAddress listen{"127.0.0.1", 9090, false};
  std::string token;  // empty: /admin/* needs no bearer token
  bool operator==(const AdminSettings&) const = default;
};

struct Upstream {
  std::string name;
  UpstreamUrl url;
  limiter::TlsClientOptions tls;  // upstreams.X.tls: for https:// URLs
  milliseconds connect_timeout = 2s;
  milliseconds timeout = 30s;
  std::uint32_t max_idle_connections = 64;
  bool operator==(const Upstream&) const = default;
};

struct RouteMatch {
  std::string path_prefix = "/";
  std::vector<std::string> methods;  // uppercase; empty matches every method
  std::optional<std::string> host;   // lowercase; matches the Host header sans port
  bool operator==(const RouteMatch&) const = default;
};

struct Route {
  RouteMatch match;
  std::string upstream;             // name, for logs and metrics
  std::size_t upstream_index = 0;   // into Config::upstreams
  std::vector<std::size_t> limits;  // into Config::limits, at most 16, no duplicates
  bool operator==(const Route&) const = default;
};

// identifiers.agent_id.jwt.on_invalid: what a bearer token that fails verification
// means for a route with an agent_id limit.
enum class JwtOnInvalid : std::uint8_t {
  reject,  // 401 INVALID_TOKEN, nothing forwarded, nothing counted
  ignore,  // the agent ID counts as missing: the limit is skipped
};

// identifiers.agent_id.jwt: the agent ID is taken only from a JWT whose signature and
// claims verify. Exactly one of secret / public_key_file / jwks_file is set (the
// loader checks it); the key files are read when the gateway builds a config snapshot
// (startup, SIGHUP), not here: the config stays plain data.
struct JwtSettings {
  std::string secret;           // HS256/384/512; never shown (redacted)
  std::string public_key_file;  // PEM public key (or certificate): RS256/384/512, ES256/384
  std::string jwks_file;        // JWKS document, keys selected by kid
  std::string issuer;           // empty: iss not checked
  std::string audience;         // empty: aud not checked
  milliseconds leeway = 0s;     // clock skew allowed for exp and nbf
  JwtOnInvalid on_invalid = JwtOnInvalid::reject;
  bool operator==(const JwtSettings&) const = default;
};

struct AgentIdSettings {
  std::string header = "X-Phlow-Agent-Id";  // ignored when jwt is set (anyone can send it)
  std::string jwt_claim = "agent_id";
  std::optional<JwtSettings> jwt;  // unset: the claim is read without verification
  bool operator==(const AgentIdSettings&) const = default;
};

struct ApiKeySettings {
  std::string header = "X-API-Key";
  std::string query = "api_key";
  bool operator==(const ApiKeySettings&) const = default;
};

struct IpSettings {
  std::vector<Cidr> trusted_proxies;
  std::string forwarded_header = "X-Forwarded-For";
  int ipv6_prefix = 64;  // IPv6 clients are grouped by this prefix
  bool operator==(const IpSettings&) const = default;
};

struct Identifiers {
  AgentIdSettings agent_id;
  ApiKeySettings api_key;
  IpSettings ip;
  bool operator==(const Identifiers&) const = default;
};

struct ResponseHeaders {
  bool x_ratelimit = true;  // X-RateLimit-Limit/-Remaining/-Reset, Retry-After
  bool ietf = false;        // RateLimit-Policy / RateLimit structured fields
  bool operator==(const ResponseHeaders&) const = default;
};

// The listener's TLS (top-level `tls`): HTTPS when both files are set. Reread on
// SIGHUP (certificate rotation).
struct ServerTls {
  std::string cert_file;  // PEM certificate chain
  std::string key_file;   // its private key (PEM); never logged
  bool enabled() const { return !cert_file.empty(); }
  bool operator==(const ServerTls&) const = default;
};

struct Config {
  ListenAddress listen{"0.0.0.0", 8080, false};
  ServerTls tls;
  unsigned threads = 0;  // 0 = one per core
  milliseconds shutdown_grace = 10s;
  HttpSettings http;
  AccessLog access_log;
  LogLevel log_level = LogLevel::info;
  RedisSettings redis;
  AdminSettings admin;
  std::vector<Upstream> upstreams;  // in file order
  std::vector<LimitSpec> limits;    // in file order; routes refer to them by index
  std::vector<Route> routes;        // first match wins
  Identifiers identifiers;
  ResponseHeaders response_headers;
  bool shadow_mode = false;  // count and log, never reject

  // Index into limits / upstreams of the entry named `name`, or nullopt.
  std::optional<std::size_t> find_limit(const std::string& name) const;
  std::optional<std::size_t> find_upstream(const std::string& name) const;
  bool operator==(const Config&) const = default;
};

std::string_view to_string(LogLevel level);
std::string_view to_string(OnFailure on_failure);
std::string_view to_string(JwtOnInvalid on_invalid);

}  // namespace phlow::config
