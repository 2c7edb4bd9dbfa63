#pragma once
// How to reach the shared store: what make_store() (store_factory.hpp) takes. The
// gateway fills it from its config (config::RedisSettings::store_options()), the
// library from its URL.

#include <chrono>
#include <string>

#include "limiter/redis_url.hpp"

namespace phlow::limiter {

inline constexpr std::chrono::milliseconds kConnectTimeout{1000};  // connect plus handshake

// TLS to Redis (rediss:// URLs): how the server's certificate is checked, and the
// client's own certificate when the server asks for one.
struct RedisTls {
  std::string ca_file;      // PEM CA certificates; empty: the system trust store
  std::string cert_file;    // client certificate chain (PEM), with key_file
  std::string key_file;     // its private key (PEM); never logged
  std::string server_name;  // the name verified and sent as SNI; empty: the node's host
  bool verify = true;       // false: any certificate is accepted (logged as a warning)
  bool operator==(const RedisTls&) const = default;
};

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
