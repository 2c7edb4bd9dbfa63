#include "redis/check_command.hpp"

namespace phlow::limiter::redis {

void encode_check(std::string& out, bool by_sha, std::string_view sha_or_script,
                  std::span<const Descriptor> descriptors, bool consume) {
  const std::size_t n = descriptors.size();
  out.clear();
  CommandWriter w(out, 3 + n + 2 + 5 * n);
  w.arg(by_sha ? "EVALSHA" : "EVAL").arg(sha_or_script).arg(static_cast<std::int64_t>(n));
  for (const Descriptor& d : descriptors) w.arg(d.key);
  w.arg("").arg(consume ? "1" : "0");
  for (const Descriptor& d : descriptors) {
    const Limit& l = *d.limit;
    w.arg(static_cast<std::int64_t>(l.algorithm)).arg(l.requests).arg(l.window_ms);
    w.arg(l.burst).arg(l.shadow ? "1" : "0");
  }
}

bool parse_check(const Value& v, std::span<const Descriptor> descriptors, Decision& out) {
  const std::size_t n = descriptors.size();
  if (v.type != Value::Type::array || v.elements.size() != 1 + 4 * n) return false;
  for (const Value& e : v.elements) {
    if (e.type != Value::Type::integer) return false;
  }
  out.source = DecisionSource::redis;
  out.count = n;
  out.now_ms = v.elements[0].integer;
  for (std::size_t i = 0; i < n; ++i) {
    const Value* e = &v.elements[1 + 4 * i];
    LimitResult& r = out.results[i];
    r.allowed = e[0].integer == 1;
    r.remaining = e[1].integer;
    r.reset_ms = e[2].integer;
    r.retry_after_ms = e[3].integer;
    r.limit = descriptors[i].limit->quota();
    r.shadow = descriptors[i].limit->shadow;
  }
  summarize(out);
  return true;
}

}  // namespace phlow::limiter::redis
