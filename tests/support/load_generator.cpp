#include "support/load_generator.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

namespace phlow::test {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60'000));
}

bool wait_for(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

// A non-blocking TCP connection to 127.0.0.1:port, or -1.
int connect_to(std::uint16_t port, Clock::time_point deadline) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  int error = errno;
  if (error == EINPROGRESS && wait_for(fd, POLLOUT, deadline)) {
    socklen_t len = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error == 0) return fd;
  }
  ::close(fd);
  return -1;
}

bool send_all(int fd, std::string_view bytes, Clock::time_point deadline) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd, POLLOUT, deadline)) return false;
    } else {
      return false;
    }
  }
  return true;
}

std::string serialize(const LoadRequest& r) {
  std::string out = r.method + " " + r.target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [name, value] : r.headers) out += name + ": " + value + "\r\n";
  if (!r.body.empty() || r.method == "POST" || r.method == "PUT") {
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  out += "\r\n";
  return out + r.body;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads one response from a connection whose unread bytes are in `in`.
class ResponseReader {
 public:
  ResponseReader(int fd, std::string& in, Clock::time_point deadline)
      : fd_(fd), in_(in), deadline_(deadline) {}

  // Returns none and fills status/close, or the error that ended it.
  LoadError read(bool head, int& status, bool& close) {
    for (;;) {
      std::size_t end;
      while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
        if (LoadError e = fill(); e != LoadError::none) return e;
      }
      const std::string head_text = in_.substr(0, end + 2);
      in_.erase(0, end + 4);
      if (head_text.size() < 12 || !head_text.starts_with("HTTP/1.")) return LoadError::cut;
      status = std::atoi(head_text.c_str() + 9);
      if (status >= 100 && status < 200) continue;  // 100 Continue: the real one follows
      return read_body(head_text, head, status, close);
    }
  }

 private:
  LoadError fill() {
    char block[16384];
    for (;;) {
      const ssize_t n = ::recv(fd_, block, sizeof block, 0);
      if (n > 0) {
        in_.append(block, static_cast<std::size_t>(n));
        got_any_ = true;
        return LoadError::none;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!wait_for(fd_, POLLIN, deadline_)) return LoadError::timeout;
        continue;
      }
      return got_any_ ? LoadError::cut : LoadError::no_response;
    }
  }

  LoadError need(std::size_t bytes) {
    while (in_.size() < bytes) {
      if (LoadError e = fill(); e != LoadError::none) return e == LoadError::no_response ? LoadError::cut : e;
    }
    return LoadError::none;
  }

  LoadError read_body(const std::string& head_text, bool head, int status, bool& close) {
    std::optional<std::size_t> length;
    bool chunked = false;
    close = head_text.starts_with("HTTP/1.0");
    std::size_t pos = head_text.find("\r\n") + 2;
    while (pos < head_text.size()) {
      const std::size_t eol = head_text.find("\r\n", pos);
      const std::string line = head_text.substr(pos, eol - pos);
      pos = eol + 2;
      const std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      const std::string name = lower(line.substr(0, colon));
      std::string value = lower(line.substr(colon + 1));
      value.erase(0, value.find_first_not_of(' '));
      if (name == "content-length") length = std::stoull(value);
      if (name == "transfer-encoding" && value.find("chunked") != std::string::npos) chunked = true;
      if (name == "connection") close = value.find("close") != std::string::npos;
    }
    if (head || status == 204 || status == 304) return LoadError::none;
    if (chunked) return read_chunked();
    if (length) {
      if (LoadError e = need(*length); e != LoadError::none) return e;
      in_.erase(0, *length);
      return LoadError::none;
    }
    close = true;  // delimited by the end of the connection
    for (;;) {
      const LoadError e = fill();
      if (e == LoadError::none) continue;
      return e == LoadError::timeout ? e : LoadError::none;
    }
  }

  LoadError read_chunked() {
    for (;;) {
      std::size_t eol;
      while ((eol = in_.find("\r\n")) == std::string::npos) {
        if (LoadError e = need(in_.size() + 1); e != LoadError::none) return e;
      }
      const std::size_t size = std::strtoull(in_.c_str(), nullptr, 16);
      in_.erase(0, eol + 2);
      if (size == 0) {
        // Trailers (none expected) end with an empty line.
        while ((eol = in_.find("\r\n")) == std::string::npos) {
          if (LoadError e = need(in_.size() + 1); e != LoadError::none) return e;
        }
        in_.erase(0, eol + 2);
        return LoadError::none;
      }
      if (LoadError e = need(size + 2); e != LoadError::none) return e;
      in_.erase(0, size + 2);
    }
  }

  int fd_;
  std::string& in_;
  Clock::time_point deadline_;
  bool got_any_ = false;
};

}  // namespace

LoadSummary summarize(const std::vector<LoadSample>& samples) {
  LoadSummary s;
  std::vector<std::int32_t> latencies;
  latencies.reserve(samples.size());
  for (const LoadSample& sample : samples) {
    ++s.sent;
    if (sample.error != LoadError::none) {
      ++s.dropped;
      if (sample.error == LoadError::connect) ++s.connect_failed;
    } else {
      ++s.completed;
      ++s.by_status[sample.status];
      if (sample.status >= 500) ++s.server_errors;
    }
    s.max_latency_us = std::max<std::int64_t>(s.max_latency_us, sample.latency_us);
    latencies.push_back(sample.latency_us);
  }
  if (!latencies.empty()) {
    std::sort(latencies.begin(), latencies.end());
    s.p50_us = latencies[latencies.size() / 2];
    s.p99_us = latencies[std::min(latencies.size() - 1, latencies.size() * 99 / 100)];
  }
  return s;
}

LoadGenerator::LoadGenerator(LoadOptions options) : options_(std::move(options)) {}

LoadGenerator::~LoadGenerator() { stop(); }

void LoadGenerator::start() {
  started_ = Clock::now();
  const auto n = static_cast<std::size_t>(options_.connections);
  per_client_.assign(n, {});
  planned_ = std::make_unique<std::atomic<std::uint64_t>[]>(n);
  done_ = std::make_unique<std::atomic<bool>[]>(n);
  for (std::size_t i = 0; i < per_client_.size(); ++i) {
    threads_.emplace_back([this, i] { client(i); });
  }
}

void LoadGenerator::stop() {
  stop_ = true;
  wait();
}

void LoadGenerator::wait() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

bool LoadGenerator::wait_for_next_round(std::chrono::milliseconds timeout) {
  const std::size_t n = per_client_.size();
  std::vector<std::uint64_t> seen(n);
  for (std::size_t i = 0; i < n; ++i) seen[i] = planned_[i].load();
  const auto deadline = Clock::now() + timeout;
  for (std::size_t i = 0; i < n; ++i) {
    while (planned_[i].load() == seen[i] && !done_[i].load()) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return true;
}

std::int64_t LoadGenerator::now_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_).count();
}

std::vector<LoadSample> LoadGenerator::samples() const {
  std::vector<LoadSample> all;
  for (const auto& samples : per_client_) all.insert(all.end(), samples.begin(), samples.end());
  std::sort(all.begin(), all.end(),
            [](const LoadSample& a, const LoadSample& b) { return a.start_us < b.start_us; });
  return all;
}

// One request on `fd` (connected first when -1); fills the sample's error, status and
// reused flag, and `close` when the connection must not carry another request.
void LoadGenerator::exchange(const LoadRequest& request, std::chrono::steady_clock::time_point deadline,
                             int& fd, bool& used, std::string& in, LoadSample& sample,
                             bool& close) const {
  close = true;
  sample.error = LoadError::none;
  sample.status = 0;
  if (fd < 0) {
    fd = connect_to(options_.port, deadline);
    used = false;
    in.clear();
  }
  if (fd < 0) {
    sample.error = LoadError::connect;
    return;
  }
  sample.reused = used;
  used = true;
  int status = 0;
  if (!send_all(fd, serialize(request), deadline)) {
    sample.error = LoadError::send;
    return;
  }
  sample.error = ResponseReader(fd, in, deadline).read(request.method == "HEAD", status, close);
  if (sample.error == LoadError::none) sample.status = static_cast<std::int16_t>(status);
}

void LoadGenerator::client(std::size_t index) {
  auto& out = per_client_[index];
  out.reserve(4096);
  const auto end = started_ + options_.duration;
  int fd = -1;
  bool used = false;
  std::string in;
  while (!stop_ && Clock::now() < end) {
    const std::uint64_t seq = sequence_++;
    if (options_.max_requests != 0 && seq >= options_.max_requests) break;
    if (options_.rate > 0) {
      const auto due = started_ + std::chrono::microseconds(
                                      static_cast<std::int64_t>(1e6 * static_cast<double>(seq) / options_.rate));
      while (!stop_ && Clock::now() < due && due < end) {
        std::this_thread::sleep_for(std::min<Clock::duration>(due - Clock::now(), std::chrono::milliseconds(50)));
      }
      if (stop_ || due >= end) break;
    }
    ++planned_[index];  // before planning: a plan made after wait_for_next_round() began
    const LoadRequest request = options_.plan(seq);
    LoadSample sample;
    sample.tag = request.tag;
    const auto begin = Clock::now();
    sample.start_us = std::chrono::duration_cast<std::chrono::microseconds>(begin - started_).count();
    const auto deadline = begin + options_.timeout;
    bool close = true;
    exchange(request, deadline, fd, used, in, sample, close);
    const bool closed_idle = sample.error == LoadError::no_response || sample.error == LoadError::send;
    if (options_.retry_closed_idle && closed_idle && sample.reused &&
        (request.method == "GET" || request.method == "HEAD")) {
      ::close(fd);
      fd = -1;
      sample.retried = true;
      exchange(request, deadline, fd, used, in, sample, close);
    }
    sample.latency_us = static_cast<std::int32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - begin).count());
    out.push_back(sample);
    if (close || sample.error != LoadError::none) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
    // A refused connection fails at once: do not spin on it.
    if (sample.error == LoadError::connect) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (fd >= 0) ::close(fd);
  done_[index] = true;
}

std::vector<std::unique_ptr<LoadGenerator>> start_load(const std::vector<std::uint16_t>& ports,
                                                       std::function<LoadRequest(std::uint64_t)> plan,
                                                       int connections, double rate,
                                                       std::chrono::milliseconds duration) {
  std::vector<std::unique_ptr<LoadGenerator>> load;
  for (const std::uint16_t port : ports) {
    LoadOptions options;
    options.port = port;
    options.connections = connections;
    options.duration = duration;
    options.rate = rate;
    options.plan = plan;
    load.push_back(std::make_unique<LoadGenerator>(options));
    load.back()->start();
  }
  return load;
}

LoadSummary stop_load(std::vector<std::unique_ptr<LoadGenerator>>& load) {
  std::vector<LoadSample> all;
  for (auto& l : load) {
    l->stop();
    const auto samples = l->samples();
    all.insert(all.end(), samples.begin(), samples.end());
  }
  return summarize(all);
}

}  // namespace phlow::test
