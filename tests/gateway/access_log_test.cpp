#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "gateway/access_log.hpp"

using namespace std::chrono;
using nlohmann::json;
using phlow::config::AccessLog;
using phlow::config::AccessLogMode;
using phlow::gateway::AccessLogBuffer;
using phlow::gateway::AccessLogSink;
using phlow::gateway::AccessRecord;
using phlow::gateway::format_access_record;

namespace {

AccessRecord limited_record() {
  AccessRecord r;
  r.time = sys_days{year{2026} / 11 / 27} + 10h + 31min + 2s + 123ms + 456us;
  r.request_id = "req-1";
  r.client_ip = "203.0.113.7";
  r.method = "POST";
  r.path = "/v1/login?x=1";
  r.route = "login";
  r.upstream = "auth-svc";
  r.status = 429;
  r.bytes_in = 17;
  r.bytes_out = 83;
  r.total = microseconds(1234);
  r.limiter = microseconds(12);
  r.upstream_time = microseconds(0);
  r.decision = "limited";
  r.limit = "auth";
  r.identifier = "9f86d081";
  return r;
}

std::string format(const AccessRecord& r) {
  std::string out;
  format_access_record(r, out);
  return out;
}

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("phlow_access_log_" + std::to_string(::getpid()) + "_" + name);
}

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("access log line holds every field by value") {
  const std::string line = format(limited_record());
  REQUIRE(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  const json j = json::parse(line);
  CHECK(j["time"] == "2026-11-27T10:31:02.123Z");
  CHECK(j["request_id"] == "req-1");
  CHECK(j["client_ip"] == "203.0.113.7");
  CHECK(j["method"] == "POST");
  CHECK(j["path"] == "/v1/login?x=1");
  CHECK(j["route"] == "login");
  CHECK(j["upstream"] == "auth-svc");
  CHECK(j["status"] == 429);
  CHECK(j["bytes_in"] == 17);
  CHECK(j["bytes_out"] == 83);
  CHECK(j["duration_ms"] == Approx(1.234));
  CHECK(j["limiter_ms"] == Approx(0.012));
  CHECK(j["upstream_ms"] == 0);
  CHECK(j["decision"] == "limited");
  CHECK(j["limit"] == "auth");
  CHECK(j["identifier"] == "9f86d081");
  CHECK_THAT(line, Catch::Contains(R"("duration_ms":1.234,"limiter_ms":0.012,"upstream_ms":0.000)"));
  AccessRecord later = limited_record();
  later.time += 24h + 58s;  // the next day and minute: the cached calendar part moves on
  CHECK(json::parse(format(later))["time"] == "2026-11-28T10:32:00.123Z");
  CHECK(json::parse(format(limited_record()))["time"] == "2026-11-27T10:31:02.123Z");
}

TEST_CASE("access log escapes quotes control characters and invalid UTF-8") {
  AccessRecord r = limited_record();
  const std::string path =
      "/a\"b\\c\nd\re\tf\x01g\x1f" "h\x7f"   // quotes, backslash, controls, DEL
      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"  // é € 😀 stay as they are
      "|\xff|\xc0\xaf|\xed\xa0\x80|\xe2\x82";  // stray byte, overlong, surrogate, truncated
  r.path = path;
  const std::string line = format(r);
  CHECK(line.find('\n') == line.size() - 1);
  CHECK(line.find('\r') == std::string::npos);
  CHECK_THAT(line, Catch::Contains(R"(\u0001g\u001fh)"));
  const json j = json::parse(line);  // throws on invalid UTF-8 or a bad escape
  const std::string bad = "\xef\xbf\xbd";  // U+FFFD
  CHECK(j["path"] == "/a\"b\\c\nd\re\tf\x01g\x1fh\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80|" + bad +
                         "|" + bad + bad + "|" + bad + bad + bad + "|" + bad + bad);
}

TEST_CASE("access log buffers until 32 KiB or flush") {
  const auto path = temp_file("batching.log");
  std::filesystem::remove(path);
  std::string error;
  auto sink = AccessLogSink::open(AccessLog{AccessLogMode::file, path.string()}, &error);
  REQUIRE(sink);
  const std::size_t line_size = format(limited_record()).size();
  AccessLogBuffer buffer(sink);
  std::size_t lines = 0;
  while ((lines + 1) * line_size < AccessLogBuffer::kFlushBytes) {
    buffer.append(limited_record());
    ++lines;
  }
  CHECK(sink->submitted_batches() == 0);
  CHECK(buffer.buffered_bytes() == lines * line_size);
  buffer.append(limited_record());  // passes 32 KiB
  ++lines;
  CHECK(sink->submitted_batches() == 1);
  CHECK(buffer.buffered_bytes() == 0);
  buffer.append(limited_record());
  ++lines;
  buffer.flush();
  CHECK(sink->submitted_batches() == 2);
  buffer.flush();  // nothing buffered: nothing handed over
  CHECK(sink->submitted_batches() == 2);
  sink->flush_and_stop();
  const auto written = read_lines(path);
  CHECK(written.size() == lines);
  for (const std::string& line : written) CHECK(json::parse(line)["status"] == 429);
  CHECK(sink->dropped_lines() == 0);
  std::filesystem::remove(path);
}

TEST_CASE("access log appends to an existing file and flushes on destruction") {
  const auto path = temp_file("append.log");
  std::ofstream(path) << "earlier line\n";
  std::string error;
  auto sink = AccessLogSink::open(AccessLog{AccessLogMode::file, path.string()}, &error);
  REQUIRE(sink);
  {
    AccessLogBuffer buffer(sink);
    buffer.append(limited_record());
  }
  sink->flush_and_stop();
  sink->flush_and_stop();  // idempotent
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "earlier line");
  CHECK(json::parse(lines[1])["limit"] == "auth");
  std::filesystem::remove(path);
}

TEST_CASE("access log off and unopenable paths give no sink") {
  std::string error;
  CHECK(AccessLogSink::open(AccessLog{AccessLogMode::off, ""}, &error) == nullptr);
  CHECK(error.empty());
  CHECK(AccessLogSink::open(AccessLog{AccessLogMode::file, "/nonexistent-dir/x/access.log"},
                            &error) == nullptr);
  CHECK_THAT(error, Catch::Contains("/nonexistent-dir/x/access.log"));
  AccessLogBuffer buffer(nullptr);  // a worker with the log off: appends are no-ops
  buffer.append(limited_record());
  buffer.flush();
  CHECK(buffer.buffered_bytes() == 0);
}

TEST_CASE("access log drops and counts batches when the writer is blocked") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  // Nobody reads the pipe yet: the writer blocks once the pipe's buffer is full.
  auto sink = AccessLogSink::from_fd(fds[1], true, 128 * 1024);
  constexpr int kBatches = 200;
  const std::string line = format(limited_record());
  std::string batch;
  while (batch.size() < AccessLogBuffer::kFlushBytes) batch += line;
  const std::uint64_t lines_per_batch = batch.size() / line.size();
  const auto start = steady_clock::now();
  for (int i = 0; i < kBatches; ++i) sink->submit(batch);
  const auto submit_time = steady_clock::now() - start;
  CHECK(submit_time < 1s);  // submit never waits for the disk
  CHECK(sink->dropped_lines() > 0);

  std::uint64_t read_lines_count = 0;
  std::thread reader([&] {
    char buf[65536];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
      read_lines_count += static_cast<std::uint64_t>(std::count(buf, buf + n, '\n'));
  });
  sink->flush_and_stop();  // closes the write end, so the reader sees EOF
  reader.join();
  ::close(fds[0]);
  CHECK(read_lines_count + sink->dropped_lines() == kBatches * lines_per_batch);
  CHECK(read_lines_count == sink->submitted_batches() * lines_per_batch);
  sink->submit(batch);  // after stop: dropped, counted
  CHECK(read_lines_count + sink->dropped_lines() == (kBatches + 1) * lines_per_batch);
}

// Not asserted: prints what one append() costs on this machine.
TEST_CASE("access log cost of append") {
  std::string error;
  auto sink = AccessLogSink::open(AccessLog{AccessLogMode::file, "/dev/null"}, &error);
  REQUIRE(sink);
  AccessLogBuffer buffer(sink);
  AccessRecord r = limited_record();
  constexpr int kRecords = 300'000;
  const auto start = steady_clock::now();
  for (int i = 0; i < kRecords; ++i) {
    r.time += 1ms;
    r.total = microseconds(i);
    buffer.append(r);
  }
  buffer.flush();
  const double ns = duration<double, std::nano>(steady_clock::now() - start).count() / kRecords;
  sink->flush_and_stop();
  WARN("AccessLogBuffer::append: " << ns << " ns per record (" << format(r).size()
                                   << " bytes a line), including hand-over to the sink");
  CHECK(sink->dropped_lines() == 0);
}

TEST_CASE("access log counts lines lost to a reader that went away") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::close(fds[0]);  // a closed stdout pipe: writes fail with EPIPE, not SIGPIPE
  auto sink = AccessLogSink::from_fd(fds[1], true);
  AccessLogBuffer buffer(sink);
  for (int i = 0; i < 3; ++i) buffer.append(limited_record());
  buffer.flush();
  sink->flush_and_stop();
  CHECK(sink->dropped_lines() == 3);
}
