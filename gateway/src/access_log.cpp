#include "gateway/access_log.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace phlow::gateway {

namespace {

std::uint64_t count_lines(const std::string& batch) {
  return static_cast<std::uint64_t>(std::count(batch.begin(), batch.end(), '\n'));
}

// A write to a pipe whose reader went away raises SIGPIPE in the writing thread, which
// by default ends the process. Blocked here, in the writer thread only, the write fails
// with EPIPE instead and its lines count as dropped; the process's signal handling is
// left alone.
void block_sigpipe_in_this_thread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

}  // namespace

std::shared_ptr<AccessLogSink> AccessLogSink::open(const config::AccessLog& settings,
                                                   std::string* error, std::size_t max_pending) {
  switch (settings.mode) {
    case config::AccessLogMode::off:
      return nullptr;
    case config::AccessLogMode::stdout_lines:
      return from_fd(STDOUT_FILENO, false, max_pending);
    case config::AccessLogMode::file:
      break;
  }
  const int fd = ::open(settings.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (error) *error = "access_log: cannot open " + settings.path + ": " + std::strerror(errno);
    return nullptr;
  }
  return from_fd(fd, true, max_pending);
}

std::shared_ptr<AccessLogSink> AccessLogSink::from_fd(int fd, bool owns_fd,
                                                      std::size_t max_pending) {
  return std::make_shared<AccessLogSink>(fd, owns_fd, max_pending);
}

AccessLogSink::AccessLogSink(int fd, bool owns_fd, std::size_t max_pending)
    : fd_(fd), owns_fd_(owns_fd), max_pending_(max_pending), writer_([this] { run(); }) {}

AccessLogSink::~AccessLogSink() { flush_and_stop(); }

void AccessLogSink::submit(std::string batch) {
  if (batch.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && pending_bytes_ + batch.size() <= max_pending_) {
      pending_bytes_ += batch.size();
      ++submitted_batches_;
      queue_.push_back(std::move(batch));
      wake_.notify_one();
      return;
    }
  }
  // Counted outside the lock: dropping must stay cheap for the other workers too.
  const std::uint64_t lines = count_lines(batch);
  std::lock_guard lock(mutex_);
  dropped_lines_ += lines;
}

std::uint64_t AccessLogSink::dropped_lines() const {
  std::lock_guard lock(mutex_);
  return dropped_lines_;
}

std::uint64_t AccessLogSink::submitted_batches() const {
  std::lock_guard lock(mutex_);
  return submitted_batches_;
}

void AccessLogSink::flush_and_stop() {
  // call_once also makes a concurrent second caller wait until the writer is gone.
  std::call_once(stopped_, [this] {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      wake_.notify_one();
    }
    writer_.join();
    if (owns_fd_) ::close(fd_);
  });
}

// Takes the whole queue per wake-up, so the mutex is held only to swap it out.
void AccessLogSink::run() {
  block_sigpipe_in_this_thread();
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything accepted is written
    std::deque<std::string> batches;
    batches.swap(queue_);
    lock.unlock();
    std::size_t written = 0;
    for (const std::string& batch : batches) {
      write_all(batch);
      written += batch.size();
    }
    lock.lock();
    pending_bytes_ -= written;
  }
}

// A failed write loses its batch (counted as dropped) rather than retrying forever.
void AccessLogSink::write_all(const std::string& batch) {
  const char* data = batch.data();
  std::size_t left = batch.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::uint64_t lines = count_lines(std::string(data, left));
      std::lock_guard lock(mutex_);
      dropped_lines_ += lines;
      return;
    }
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

AccessLogBuffer::AccessLogBuffer(std::shared_ptr<AccessLogSink> sink) : sink_(std::move(sink)) {
  if (sink_) buffer_.reserve(kFlushBytes + 1024);
}

AccessLogBuffer::~AccessLogBuffer() { flush(); }

void AccessLogBuffer::append(const AccessRecord& record) {
  if (!sink_) return;
  format_access_record(record, buffer_);
  if (buffer_.size() >= kFlushBytes) flush();
}

void AccessLogBuffer::flush() {
  if (!sink_ || buffer_.empty()) return;
  sink_->submit(std::move(buffer_));
  buffer_ = std::string();
  buffer_.reserve(kFlushBytes + 1024);
}

}  // namespace phlow::gateway
