#pragma once
// RESP, sans I/O: an encoder that appends to a reused buffer, and a reader that turns
// the bytes of replies into owned reply values.

#include <hiredis/hiredis.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace phlow::limiter::redis {

struct Value {
  enum class Type : std::uint8_t { nil, integer, string, status, error, array };
  Type type = Type::nil;
  std::int64_t integer = 0;
  std::string str;             // string, status and error replies
  std::vector<Value> elements; // array replies

  bool is_error() const { return type == Type::error; }
};

// No command the client sends gets an array longer than this back (a check of 16
// limits: 65 elements; a batch of checks is cut to fit, check_batch.hpp). hiredis 0.14 allocates an array's element table when it reads
// its header: "*500000000\r\n" alone would make it allocate 4 GB.
inline constexpr int kMaxReplyElements = 1024;

// No reply the client asks for comes near this size (INFO server: about 2 KiB). A
// reader holding more unparsed bytes than this is fed a hostile or broken stream:
// one bulk string announced as "$1000000000" would otherwise buffer until a deadline.
inline constexpr std::size_t kMaxReplyBytes = std::size_t{1} << 20;

// Nor, nested arrays all counted, more values than this in one reply (CLUSTER SLOTS
// of 1024 ranges with three nodes each: about 18,000), nor more string bytes than
// kMaxReplyBytes: what a reply's bytes can make the client hold is bounded too (an
// array header of 7 bytes makes room for 1024 values).
inline constexpr std::size_t kMaxReplyValues = 64 * kMaxReplyElements;

// Reads replies from the bytes a Redis sends: hiredis's RESP parser, building each
// reply as a Value directly (no hiredis reply objects to allocate, copy and free).
// It fails, as on a protocol error, on an array header announcing more than
// kMaxReplyElements elements and on a reply past kMaxReplyValues values or
// kMaxReplyBytes of strings, and reports itself overfull past kMaxReplyBytes of an
// unfinished reply.
class ValueReader {
 public:
  enum class Next { value, none, error };  // a whole reply; not yet; a protocol error

  ValueReader();
  ~ValueReader();
  ValueReader(const ValueReader&) = delete;  // hiredis holds the address of budget_
  ValueReader& operator=(const ValueReader&) = delete;

  // False on a protocol error.
  bool feed(const char* data, std::size_t size);
  // The next whole reply into `out` (value), or none until more is fed, or error.
  Next next(Value& out);
  // True when it holds more than kMaxReplyBytes of a reply not yet complete.
  bool overfull() const { return reader_->len - reader_->pos > kMaxReplyBytes; }

  // What the reply being read may still take.
  struct Budget {
    std::size_t values = kMaxReplyValues;
    std::size_t bytes = kMaxReplyBytes;
  };

 private:
  redisReader* reader_;
  Budget budget_;
};

// Appends one command, as a RESP array of bulk strings, to `out`.
class CommandWriter {
 public:
  CommandWriter(std::string& out, std::size_t argc) : out_(out) { header('*', argc); }
  CommandWriter& arg(std::string_view s) {
    header('$', s.size());
    out_.append(s).append("\r\n");
    return *this;
  }
  CommandWriter& arg(std::int64_t n) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, n);
    return arg(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
  }

 private:
  void header(char kind, std::size_t n) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, n);
    out_.push_back(kind);
    out_.append(buf, r.ptr).append("\r\n");
  }
  std::string& out_;
};

// Returns "5.0.7" from an INFO reply's "redis_version:5.0.7" line, or "".
std::string_view redis_version(std::string_view info);
// True when `version` ("x.y.z") is at least 5.0.
bool version_supported(std::string_view version);
// Whether `version` ("7.0.15") has at least the major version `major`.
bool version_at_least(std::string_view version, int major);

}  // namespace phlow::limiter::redis
