#include "redis/handshake.hpp"

namespace phlow::limiter::redis {

Handshake::Handshake(const RedisUrl& url, std::string_view script, bool master_only,
                     std::string_view library, std::string_view library_name)
    : url_(url), script_(script), master_only_(master_only), library_(library),
      library_name_(library_name) {
  enter(Step::auth);
}

// Builds the command of the first step at or after `step` that applies.
void Handshake::enter(Step step) {
  step_ = step;
  command_.clear();
  switch (step_) {
    case Step::auth:
      if (!url_.password.empty()) {
        CommandWriter w(command_, url_.username.empty() ? 2 : 3);
        w.arg("AUTH");
        if (!url_.username.empty()) w.arg(url_.username);
        w.arg(url_.password);
        return;
      }
      [[fallthrough]];
    case Step::select:
      step_ = Step::select;
      if (url_.db != 0) {
        CommandWriter(command_, 2).arg("SELECT").arg(std::int64_t{url_.db});
        return;
      }
      [[fallthrough]];
    case Step::info:
      step_ = Step::info;
      CommandWriter(command_, 2).arg("INFO").arg("server");
      return;
    case Step::role:
      if (master_only_) {
        CommandWriter(command_, 1).arg("ROLE");
        return;
      }
      step_ = Step::load;
      [[fallthrough]];
    case Step::load:
      if (!script_.empty()) {
        CommandWriter(command_, 3).arg("SCRIPT").arg("LOAD").arg(script_);
        return;
      }
      [[fallthrough]];
    case Step::library:
      step_ = Step::library;
      if (functions_ && !library_.empty()) {
        CommandWriter(command_, 3).arg("FUNCTION").arg("LOAD").arg(library_);
        return;
      }
      [[fallthrough]];
    case Step::done:
      step_ = Step::done;
      return;
  }
}

std::string_view Handshake::step_name() const {
  switch (step_) {
    case Step::auth: return "AUTH";
    case Step::select: return "SELECT";
    case Step::info: return "INFO";
    case Step::role: return "ROLE";
    case Step::load: return "SCRIPT LOAD";
    case Step::library: return "FUNCTION LOAD";
    case Step::done: break;
  }
  return "handshake";
}

std::string Handshake::accept(const boost::system::error_code& ec, const Value& reply) {
  if (done()) return "handshake: reply after the end";
  const std::string step(step_name());
  if (ec) return step + ": " + ec.message();
  if (step_ == Step::library) {
    // Loaded now, or by another connection before (the name is the content's).
    library_loaded_ = reply.is_error() ? reply.str.find("already exists") != std::string::npos
                                       : reply.type == Value::Type::string && reply.str == library_name_;
    enter(Step::done);
    return {};
  }
  // An error reply names the failure (WRONGPASS, NOAUTH, ...), never the password.
  if (reply.is_error()) return step + ": " + reply.str;
  switch (step_) {
    case Step::auth: enter(Step::select); break;
    case Step::select: enter(Step::info); break;
    case Step::info: {
      const std::string version(redis_version(reply.str));
      if (!version_supported(version)) {
        return "Redis " + (version.empty() ? std::string("of unknown version") : version) +
               " is too old: phlow-gateway needs Redis 5.0 or newer";
      }
      functions_ = version_at_least(version, 7);
      enter(Step::role);
      break;
    }
    case Step::role: {
      const bool master = reply.type == Value::Type::array && !reply.elements.empty() &&
                          reply.elements[0].str == "master";
      if (!master) {
        return "ROLE: the node is " +
               (reply.elements.empty() ? std::string("not a master") : "a " + reply.elements[0].str) +
               ", not the master";
      }
      enter(Step::load);
      break;
    }
    case Step::load:
      if (reply.type != Value::Type::string || reply.str.size() != 40) return step + ": bad reply";
      script_sha_ = reply.str;
      enter(Step::library);
      break;
    case Step::library:
    case Step::done: break;
  }
  return {};
}

}  // namespace phlow::limiter::redis
