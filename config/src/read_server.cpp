// The process-wide sections: listeners, HTTP limits, logging, Redis, admin,
// identifiers and response headers.

#include "config/env.hpp"
#include "sections.hpp"

namespace phlow::config {

ListenAddress read_listen(ObjectReader& reader, std::string_view key, ListenAddress fallback) {
  auto text = reader.optional_string(key);
  if (!text) return fallback;
  std::string why;
  if (auto address = parse_listen_address(*text, &why)) return *address;
  reader.diagnostics().error(reader.path().key(key),
                             "invalid listen address \"" + *text + "\": " + why);
  return fallback;
}

void read_server(ObjectReader& top, Config& out) {
  out.listen = read_listen(top, "listen", out.listen);
  if (top.has("tls")) {
    // The files are loaded when the listener's context is built (startup, SIGHUP,
    // --check), which names the file that fails.
    ObjectReader tls = top.object("tls");
    out.tls.cert_file = tls.string("cert_file", out.tls.cert_file);
    out.tls.key_file = tls.string("key_file", out.tls.key_file);
    tls.finish();
    if (out.tls.cert_file.empty() || out.tls.key_file.empty()) {
      top.diagnostics().error(top.path().key("tls"), "cert_file and key_file are both required");
      out.tls = {};
    }
  }
  out.threads = static_cast<unsigned>(top.integer("threads", out.threads, 0, 1024));
  out.shutdown_grace = top.duration("shutdown_grace", out.shutdown_grace);
  out.shadow_mode = top.boolean("shadow_mode", out.shadow_mode);

  ObjectReader http = top.object("http");
  auto& h = out.http;
  h.header_timeout = http.duration("header_timeout", h.header_timeout);
  h.idle_timeout = http.duration("idle_timeout", h.idle_timeout);
  h.body_timeout = http.duration("body_timeout", h.body_timeout);
  h.max_header_bytes = http.size("max_header_bytes", h.max_header_bytes);
  h.max_headers = static_cast<std::uint64_t>(
      http.integer("max_headers", static_cast<std::int64_t>(h.max_headers), 1, 10'000));
  h.max_body_bytes = http.size("max_body_bytes", h.max_body_bytes);
  h.max_connections = static_cast<std::uint64_t>(
      http.integer("max_connections", static_cast<std::int64_t>(h.max_connections), 1, 10'000'000));
  http.finish();
}

void read_logging(ObjectReader& top, Config& out) {
  out.log_level = top.choice("log_level", out.log_level,
                             {{"trace", LogLevel::trace}, {"debug", LogLevel::debug},
                              {"info", LogLevel::info}, {"warn", LogLevel::warn},
                              {"error", LogLevel::error}, {"critical", LogLevel::critical},
                              {"off", LogLevel::off}});
  auto text = top.optional_string("access_log");
  if (!text) return;
  if (*text == "stdout") {
    out.access_log = {AccessLogMode::stdout_lines, {}};
  } else if (*text == "off") {
    out.access_log = {AccessLogMode::off, {}};
  } else if (text->find('/') != std::string::npos) {
    out.access_log = {AccessLogMode::file, *text};
  } else {
    // Requiring a '/' keeps a typo such as "of" from becoming a file named "of".
    top.diagnostics().error(top.path().key("access_log"),
                            "expected stdout, off or a file path containing '/' "
                            "(such as ./access.log), got \"" + *text + "\"");
  }
}

bool read_tls_client(ObjectReader& parent, limiter::TlsClientOptions& out) {
  const bool present = parent.has("tls");
  ObjectReader tls = parent.object("tls");
  out.ca_file = tls.string("ca_file", out.ca_file);
  out.cert_file = tls.string("cert_file", out.cert_file);
  out.key_file = tls.string("key_file", out.key_file);
  out.server_name = tls.string("server_name", out.server_name);
  out.verify = tls.boolean("verify", out.verify);
  tls.finish();
  return present;
}

void read_redis(ObjectReader& top, const Env& env, RedisSettings& out) {
  ObjectReader redis = top.object("redis");
  out.url = redis.string("url", out.url);
  if (out.url.empty() && env) out.url = env("REDIS_URL").value_or("");
  const bool has_tls = read_tls_client(redis, out.tls);
  out.sentinel_password = redis.string("sentinel_password", out.sentinel_password);
  if (!out.url.empty()) {
    std::string why;
    if (auto url = parse_redis_url(out.url, &why)) {
      out.target = std::move(*url);
    } else {
      redis.diagnostics().error(redis.path().key("url"), why);
    }
  }
  using limiter::RedisTopology;
  if (has_tls && !out.target.tls) {
    redis.diagnostics().error(redis.path().key("tls"),
                              "TLS settings need a rediss URL (rediss://, rediss+sentinel:// or "
                              "rediss+cluster://)");
  } else if (out.target.tls) {
    if (const std::string why = limiter::check_tls(out.tls); !why.empty()) {
      redis.diagnostics().error(redis.path().key("tls"), why);
    }
  }
  if (!out.sentinel_password.empty() && out.target.topology != RedisTopology::sentinel) {
    redis.diagnostics().error(redis.path().key("sentinel_password"),
                              "sentinel_password needs a redis+sentinel:// URL");
  }
  out.key_prefix = redis.string("key_prefix", out.key_prefix);
  out.timeout = redis.duration("timeout", out.timeout);
  out.on_failure = redis.choice("on_failure", out.on_failure,
                                {{"fallback", OnFailure::fallback},
                                 {"allow", OnFailure::allow},
                                 {"deny", OnFailure::deny}});
  if (auto share = redis.get("fallback_share")) {
    if (share->value->is_string() && share->value->get<std::string>() == "auto") {
      out.fallback_share = 0;
    } else {
      out.fallback_share = static_cast<std::uint32_t>(redis.integer("fallback_share", 0, 1, 10'000));
    }
  }
  redis.finish();
}

void read_admin(ObjectReader& top, AdminSettings& out) {
  ObjectReader admin = top.object("admin");
  out.listen = read_listen(admin, "listen", out.listen);
  out.token = admin.string("token", out.token);
  admin.finish();
}

namespace {

// identifiers.agent_id.jwt. The key files are only named here; the gateway reads them
// when it builds a snapshot, so that a SIGHUP rereads them (gateway/jwt_verifier.hpp).
JwtSettings read_jwt(ObjectReader& jwt) {
  JwtSettings out;
  const bool has_secret = jwt.has("secret");
  out.secret = jwt.string("secret", out.secret);
  out.public_key_file = jwt.string("public_key_file", out.public_key_file);
  out.jwks_file = jwt.string("jwks_file", out.jwks_file);
  out.issuer = jwt.string("issuer", out.issuer);
  out.audience = jwt.string("audience", out.audience);
  out.leeway = jwt.duration("leeway", out.leeway);
  out.on_invalid = jwt.choice("on_invalid", out.on_invalid,
                              {{"reject", JwtOnInvalid::reject}, {"ignore", JwtOnInvalid::ignore}});
  const int keys = int{!out.secret.empty()} + int{!out.public_key_file.empty()} +
                   int{!out.jwks_file.empty()};
  if (has_secret && out.secret.empty()) {
    // Typically "${PHLOW_JWT_SECRET}" with the variable set but empty: an empty HMAC
    // key would let anyone sign tokens.
    jwt.diagnostics().error(jwt.path().key("secret"), "must not be empty");
  } else if (keys != 1) {
    jwt.diagnostics().error(jwt.path(),
                            keys == 0 ? "needs one of secret, public_key_file or jwks_file"
                                      : "set only one of secret, public_key_file or jwks_file");
  }
  return out;
}

}  // namespace

void read_identifiers(ObjectReader& top, Identifiers& out) {
  ObjectReader identifiers = top.object("identifiers");
  ObjectReader agent = identifiers.object("agent_id");
  out.agent_id.header = agent.string("header", out.agent_id.header);
  out.agent_id.jwt_claim = agent.string("jwt_claim", out.agent_id.jwt_claim);
  if (agent.has("jwt")) {
    ObjectReader jwt = agent.object("jwt");
    out.agent_id.jwt = read_jwt(jwt);
    jwt.finish();
  }
  agent.finish();
  ObjectReader api_key = identifiers.object("api_key");
  out.api_key.header = api_key.string("header", out.api_key.header);
  out.api_key.query = api_key.string("query", out.api_key.query);
  api_key.finish();
  ObjectReader ip = identifiers.object("ip");
  for (const auto& [text, path] : ip.string_list("trusted_proxies")) {
    std::string why;
    if (auto cidr = parse_cidr(text, &why)) {
      out.ip.trusted_proxies.push_back(*cidr);
    } else {
      ip.diagnostics().error(path, "invalid CIDR \"" + text + "\": " + why);
    }
  }
  out.ip.forwarded_header = ip.string("forwarded_header", out.ip.forwarded_header);
  out.ip.ipv6_prefix = static_cast<int>(ip.integer("ipv6_prefix", out.ip.ipv6_prefix, 1, 128));
  ip.finish();
  identifiers.finish();
}

void read_response_headers(ObjectReader& top, ResponseHeaders& out) {
  if (!top.has("response_headers")) return;
  auto families = top.string_list("response_headers");
  out = {false, false};
  for (const auto& [name, path] : families) {
    if (name == "x-ratelimit") {
      out.x_ratelimit = true;
    } else if (name == "ietf") {
      out.ietf = true;
    } else {
      top.diagnostics().error(path, "expected x-ratelimit or ietf, got \"" + name + "\"");
    }
  }
}

}  // namespace phlow::config
