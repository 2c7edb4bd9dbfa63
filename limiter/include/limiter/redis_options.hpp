#pragma once
// How to reach the shared store: what make_store() (store_factory.hpp) takes. The
// gateway fills it from its config (config::RedisSettings::store_options()), the
// library from its URL.

#include <chrono>
#include <string>

#include "limiter/redis_url.hpp"
#include "limiter/tls_client.hpp"

namespace phlow::limiter {

inline constexpr std::chrono::milliseconds kConnectTimeout{1000};  // connect plus handshake

// TLS to Redis (rediss:// URLs): tls_client.hpp.
using RedisTls = TlsClientOptions;

// Why `tls` cannot be used ("ca_file: cannot load ...", a certificate without its
// key), or "" when it can. Names files, never their contents.
std::string check_tls(const RedisTls& tls);

struct RedisOptions {
  RedisUrl url;
  RedisTls tls;                     // used when url.tls
  std::string sentinel_password;    // AUTH for the sentinels (redis+sentinel://)
  std::chrono::milliseconds timeout{50};                 // deadline of one check
  std::chrono::milliseconds connect_timeout{kConnectTimeout};
};

}  // namespace phlow::limiter
