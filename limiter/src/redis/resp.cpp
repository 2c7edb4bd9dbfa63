#include "redis/resp.hpp"

namespace phlow::limiter::redis {

Value to_value(const redisReply* reply) {
  Value v;
  switch (reply->type) {
    case REDIS_REPLY_INTEGER:
      v.type = Value::Type::integer;
      v.integer = reply->integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      v.type = reply->type == REDIS_REPLY_STRING   ? Value::Type::string
               : reply->type == REDIS_REPLY_STATUS ? Value::Type::status
                                                   : Value::Type::error;
      v.str.assign(reply->str, reply->len);
      break;
    case REDIS_REPLY_ARRAY:
      v.type = Value::Type::array;
      v.elements.reserve(reply->elements);
      for (std::size_t i = 0; i < reply->elements; ++i) {
        v.elements.push_back(to_value(reply->element[i]));
      }
      break;
    default:
      v.type = Value::Type::nil;
      break;
  }
  return v;
}

std::string_view redis_version(std::string_view info) {
  constexpr std::string_view kField = "redis_version:";
  const auto at = info.find(kField);
  if (at == std::string_view::npos) return {};
  std::string_view rest = info.substr(at + kField.size());
  return rest.substr(0, rest.find_first_of("\r\n"));
}

bool version_supported(std::string_view version) {
  int major = 0;
  const auto r = std::from_chars(version.data(), version.data() + version.size(), major);
  return r.ec == std::errc{} && major >= 5;
}

}  // namespace phlow::limiter::redis
