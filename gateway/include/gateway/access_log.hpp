#pragma once
// The access log: one JSON line per request. Workers format lines into their own buffer
// without locks and hand whole buffers to a process-wide sink, whose thread alone writes
// to stdout or the file, so a slow disk never slows a request.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "config/config.hpp"

namespace phlow::gateway {

struct AccessRecord {  // all views valid only during append()
  std::chrono::system_clock::time_point time;
  std::string_view request_id, client_ip, method, path, route, upstream;
  int status = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::chrono::microseconds total{0}, limiter{0}, upstream_time{0};
  std::string_view decision;    // "allowed", "limited", "shadow_limited", "none" (no limits applied)
  std::string_view limit;       // the limit that rejected or would have (shadow); empty otherwise
  std::string_view identifier;  // that limit's identifier as stored in keys (already hashed)
  // Units from a limit's `cost` header (the largest, if several) and from the response's
  // `cost_from_response` header: written only when not 0.
  std::int64_t cost = 0, response_cost = 0;
};

// Appends `record` as one JSON line (with its '\n') to `out`. Strings are escaped;
// control characters become \uXXXX (or \n, \t...), invalid UTF-8 bytes become U+FFFD.
void format_access_record(const AccessRecord& record, std::string& out);

// The process-wide sink: a writer thread owns stdout or the file. Workers hand it whole
// buffers, so its mutex is taken once per flush, not per request. When the writer falls
// behind by more than max_pending bytes, new batches are dropped and their lines
// counted. Thread-safe.
class AccessLogSink {
 public:
  static constexpr std::size_t kDefaultMaxPending = 8 * 1024 * 1024;

  // `off`: nullptr (the worker then skips formatting). A file is opened in append mode
  // (created 0644); when it cannot be, returns nullptr and sets *error.
  static std::shared_ptr<AccessLogSink> open(const config::AccessLog& settings,
                                             std::string* error,
                                             std::size_t max_pending = kDefaultMaxPending);
  // Writes to an open descriptor (tests: a pipe); closes it at stop when `owns_fd`.
  static std::shared_ptr<AccessLogSink> from_fd(int fd, bool owns_fd,
                                                std::size_t max_pending = kDefaultMaxPending);

  AccessLogSink(int fd, bool owns_fd, std::size_t max_pending);  // starts the writer
  AccessLogSink(const AccessLogSink&) = delete;
  AccessLogSink& operator=(const AccessLogSink&) = delete;
  ~AccessLogSink();  // flush_and_stop()

  // Takes a buffer of whole lines. Never blocks on I/O. After stop, batches are dropped.
  void submit(std::string batch);
  // Lines dropped because the writer was behind, stopped or failed to write.
  std::uint64_t dropped_lines() const;
  std::uint64_t submitted_batches() const;  // accepted for writing
  // Writes everything accepted so far, then ends the writer. Idempotent.
  void flush_and_stop();

 private:
  void run();
  void write_all(const std::string& batch);

  int fd_;
  bool owns_fd_;
  std::size_t max_pending_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;
  std::size_t pending_bytes_ = 0;  // queued plus being written
  bool stopping_ = false;
  std::uint64_t dropped_lines_ = 0;
  std::uint64_t submitted_batches_ = 0;
  std::once_flag stopped_;
  std::thread writer_;  // last: starts in the constructor, after every other member
};

// Per worker, no locks: formats each record into a buffer and hands the buffer to the
// sink when it passes kFlushBytes or when flush() is called (the worker calls flush()
// from a 200 ms timer). Used on its worker's thread only. A null sink makes it a no-op.
class AccessLogBuffer {
 public:
  static constexpr std::size_t kFlushBytes = 32 * 1024;

  explicit AccessLogBuffer(std::shared_ptr<AccessLogSink> sink);
  AccessLogBuffer(const AccessLogBuffer&) = delete;
  AccessLogBuffer& operator=(const AccessLogBuffer&) = delete;
  ~AccessLogBuffer();  // flush()

  void append(const AccessRecord& record);
  void flush();
  std::size_t buffered_bytes() const { return buffer_.size(); }

 private:
  std::shared_ptr<AccessLogSink> sink_;
  std::string buffer_;
};

}  // namespace phlow::gateway
