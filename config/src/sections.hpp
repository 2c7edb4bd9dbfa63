#pragma once
// One reader per section of the config file. Each reads its key from the top-level
// mapping `top`, reports problems to top's diagnostics and fills `out`, leaving
// defaults where the file says nothing or says something invalid.

#include <vector>

#include "config/config.hpp"
#include "config/env.hpp"
#include "object_reader.hpp"

namespace phlow::config {

void read_server(ObjectReader& top, Config& out);  // listen, threads, shutdown_grace, http
void read_logging(ObjectReader& top, Config& out);  // access_log, log_level
// An absent or empty redis.url falls back to the environment's REDIS_URL.
void read_redis(ObjectReader& top, const Env& env, RedisSettings& out);
void read_admin(ObjectReader& top, AdminSettings& out);
void read_identifiers(ObjectReader& top, Identifiers& out);
void read_response_headers(ObjectReader& top, ResponseHeaders& out);
void read_upstreams(ObjectReader& top, std::vector<Upstream>& out);
void read_limits(ObjectReader& top, std::vector<LimitSpec>& out);
// Needs upstreams and limits read first: routes refer to them by name.
void read_routes(ObjectReader& top, Config& out);

// The seed's two limits: auth 60/min by token hash, role 10/min by agent ID.
std::vector<LimitSpec> default_limits();
// One route "/" to upstream 0 applying `auth` (limit 0 of default_limits()).
Route default_route(const Config& config);

// Reads the TLS client settings at `tls` of `parent` (redis.tls, upstreams.X.tls) into
// `out`; returns whether the key is present.
bool read_tls_client(ObjectReader& parent, limiter::TlsClientOptions& out);

// Reads a listen address at `key`; reports and returns `fallback` when invalid.
ListenAddress read_listen(ObjectReader& reader, std::string_view key, ListenAddress fallback);

}  // namespace phlow::config
