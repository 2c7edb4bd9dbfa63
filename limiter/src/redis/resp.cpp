#include "redis/resp.hpp"

#include <memory>
#include <new>

namespace phlow::limiter::redis {

namespace {

// hiredis's reply constructors, building Values: the root of a reply is allocated,
// every other value is an element of its parent's array, sized when the parent's
// header was read (so the addresses handed to hiredis stay put). hiredis frees only
// roots (a reply it was not given out, on an error or with the reader).
Value* slot(const redisReadTask* task) {
  if (task->parent == nullptr) return new Value;
  auto* parent = static_cast<Value*>(task->parent->obj);
  return &parent->elements[static_cast<std::size_t>(task->idx)];
}

ValueReader::Budget& budget(const redisReadTask* task) {
  return *static_cast<ValueReader::Budget*>(task->privdata);
}

void* create_string(const redisReadTask* task, char* str, std::size_t len) {
  if (len > budget(task).bytes) return nullptr;  // the reader fails
  budget(task).bytes -= len;
  Value* v = slot(task);
  v->type = task->type == REDIS_REPLY_STRING   ? Value::Type::string
            : task->type == REDIS_REPLY_STATUS ? Value::Type::status
                                               : Value::Type::error;
  v->str.assign(str, len);
  return v;
}

void* create_array(const redisReadTask* task, int elements) {
  // Negative: a count past INT_MAX that hiredis 0.14 truncated to int (a nil array,
  // "*-1", never gets here). Past the cap: nullptr, and the reader fails.
  if (elements < 0 || elements > kMaxReplyElements) return nullptr;
  const auto count = static_cast<std::size_t>(elements);
  if (count > budget(task).values) return nullptr;
  budget(task).values -= count;
  Value* v = slot(task);
  v->type = Value::Type::array;
  v->elements.resize(static_cast<std::size_t>(elements));
  return v;
}

void* create_integer(const redisReadTask* task, long long value) {
  Value* v = slot(task);
  v->type = Value::Type::integer;
  v->integer = value;
  return v;
}

void* create_nil(const redisReadTask* task) {
  Value* v = slot(task);
  v->type = Value::Type::nil;
  return v;
}

void free_root(void* root) { delete static_cast<Value*>(root); }

redisReplyObjectFunctions kValueFunctions = {create_string, create_array, create_integer, create_nil,
                                             free_root};

}  // namespace

ValueReader::ValueReader() : reader_(redisReaderCreateWithFunctions(&kValueFunctions)) {
  if (reader_ == nullptr) throw std::bad_alloc();
  reader_->privdata = &budget_;  // every read task carries it
}

ValueReader::~ValueReader() { redisReaderFree(reader_); }

bool ValueReader::feed(const char* data, std::size_t size) {
  return redisReaderFeed(reader_, data, size) == REDIS_OK;
}

ValueReader::Next ValueReader::next(Value& out) {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return Next::error;
  if (raw == nullptr) return Next::none;
  budget_ = Budget{};  // the next reply starts afresh
  std::unique_ptr<Value> root(static_cast<Value*>(raw));
  out = std::move(*root);
  return Next::value;
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
