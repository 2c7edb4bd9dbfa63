#pragma once
// What a connection says to a Redis node before it carries checks: AUTH (when the URL
// has a password), SELECT (db != 0), INFO server (the version must be 5.0 or newer),
// ROLE (when the node must be a master: Sentinel), SCRIPT LOAD of the check script and,
// on Redis 7.0 and newer, FUNCTION LOAD of its library form. A pure state machine: the
// connection sends next(), feeds the reply to accept(), until done(). Tested without a
// socket.

#include <boost/system/error_code.hpp>
#include <string>
#include <string_view>

#include "limiter/redis_url.hpp"
#include "redis/resp.hpp"

namespace phlow::limiter::redis {

class Handshake {
 public:
  // `url` gives the credentials and db; `script` is loaded (none when empty), then
  // `library` (a function library named `library_name`; none when empty, or before
  // Redis 7.0); `master_only` fails the handshake on a replica.
  Handshake(const RedisUrl& url, std::string_view script, bool master_only = false,
            std::string_view library = {}, std::string_view library_name = {});

  bool done() const { return step_ == Step::done; }
  // The command to send now (RESP bytes). Only while !done().
  const std::string& next() const { return command_; }
  // The reply to next(), or the error that took its place. Returns "" and moves on,
  // or says why the handshake failed ("AUTH: WRONGPASS ...": no secret).
  std::string accept(const boost::system::error_code& ec, const Value& reply);
  // After done(): the SHA1 SCRIPT LOAD returned.
  const std::string& script_sha() const { return script_sha_; }
  // After done(): whether the library is loaded (this connection loaded it, or one
  // before it did). A refusal (an old server, an ACL without FUNCTION, a proxy that
  // does not know it) is no failure: checks then go by EVALSHA.
  bool library_loaded() const { return library_loaded_; }

 private:
  enum class Step { auth, select, info, role, load, library, done };
  void enter(Step step);
  std::string_view step_name() const;

  const RedisUrl& url_;
  std::string_view script_;
  bool master_only_;
  std::string_view library_;
  std::string_view library_name_;
  bool functions_ = false;  // the server has FUNCTION (7.0 or newer)
  bool library_loaded_ = false;
  Step step_ = Step::auth;
  std::string command_;
  std::string script_sha_;
};

}  // namespace phlow::limiter::redis
