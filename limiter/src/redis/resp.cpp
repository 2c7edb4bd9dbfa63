#include "redis/resp.hpp"

namespace phlow::limiter::redis {

namespace {

// hiredis's own array constructor, behind create_array_capped.
void* (*default_create_array)(const redisReadTask*, int) = nullptr;

void* create_array_capped(const redisReadTask* task, int elements) {
  // Negative: a count past INT_MAX that hiredis 0.14 truncated to int (a nil array,
  // "*-1", never gets here).
  if (elements < 0 || elements > kMaxReplyElements) return nullptr;  // the reader fails
  return default_create_array(task, elements);
}

// hiredis's reply constructors with create_array_capped for arrays; set up once.
redisReplyObjectFunctions* capped_functions(const redisReplyObjectFunctions& defaults) {
  static redisReplyObjectFunctions capped = [&] {
    default_create_array = defaults.createArray;
    redisReplyObjectFunctions functions = defaults;
    functions.createArray = &create_array_capped;
    return functions;
  }();
  return &capped;
}

}  // namespace

redisReader* create_reader() {
  redisReader* reader = redisReaderCreate();
  if (reader != nullptr) reader->fn = capped_functions(*reader->fn);
  return reader;
}

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

bool version_at_least(std::string_view version, int major) {
  int found = 0;
  const auto r = std::from_chars(version.data(), version.data() + version.size(), found);
  return r.ec == std::errc{} && found >= major;
}

bool version_supported(std::string_view version) { return version_at_least(version, 5); }

}  // namespace phlow::limiter::redis
