#pragma once
// A bounded load generator for end-to-end fault tests and the soak: N keep-alive
// connections, one blocking client thread each, for a duration or a number of requests,
// optionally paced to a fixed total rate. Every request is recorded with its status,
// transport error and latency, so that a test can say exactly what a fault cost.
// Plain sockets and poll(): every connect, send and read has a deadline.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/http_client.hpp"

namespace phlow::test {

// One request of the plan. `tag` groups results (e.g. one tag per identifier).
struct LoadRequest {
  std::string method = "GET";
  std::string target = "/";
  HeaderList headers;
  std::string body;
  int tag = 0;
};

enum class LoadError : std::uint8_t {
  none,
  connect,     // the connection could not be opened: the request was never sent
  send,        // writing the request failed
  no_response, // closed or reset before any byte of the response
  cut,         // closed, reset or malformed part-way through the response
  timeout,     // no complete response within the request timeout
};

struct LoadSample {
  std::int64_t start_us = 0;  // since the generator started
  std::int32_t latency_us = 0;
  std::int16_t status = 0;  // 0 when there was no complete response
  LoadError error = LoadError::none;
  bool reused = false;  // sent on a connection that had carried a request before
  bool retried = false; // sent again on a new connection (see LoadOptions)
  int tag = 0;
};

struct LoadOptions {
  std::uint16_t port = 0;
  int connections = 32;
  std::chrono::milliseconds duration{5000};  // stop() ends it earlier
  std::uint64_t max_requests = 0;            // over all connections; 0 = no bound
  double rate = 0;  // requests per second over all connections; 0 = as fast as possible
  std::chrono::milliseconds timeout{10'000};  // connect, and each whole request
  // Like HTTP clients (RFC 9112 9.3.1): a GET or HEAD that a reused keep-alive connection
  // closed on (before any response byte, or before it could be sent) is sent once more on
  // a new connection. Off by
  // default, so that a test sees every such close.
  bool retry_closed_idle = false;
  // Called concurrently from the client threads with a global sequence number.
  std::function<LoadRequest(std::uint64_t seq)> plan = [](std::uint64_t) { return LoadRequest{}; };
};

// Summary of a set of samples.
struct LoadSummary {
  std::uint64_t sent = 0;          // every attempted request
  std::uint64_t completed = 0;     // a whole response was read
  std::uint64_t server_errors = 0; // 5xx
  std::uint64_t dropped = 0;       // any transport error (connect failures included)
  std::uint64_t connect_failed = 0;
  std::map<int, std::uint64_t> by_status;
  std::int64_t max_latency_us = 0;
  std::int64_t p50_us = 0;
  std::int64_t p99_us = 0;
  std::uint64_t count(int status) const {
    const auto it = by_status.find(status);
    return it == by_status.end() ? 0 : it->second;
  }
};

LoadSummary summarize(const std::vector<LoadSample>& samples);

class LoadGenerator {
 public:
  explicit LoadGenerator(LoadOptions options);
  ~LoadGenerator();  // stops and joins
  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;

  void start();
  // Asks every client to finish its current request and stop; returns once they have.
  void stop();
  // Blocks until the duration or the request bound is reached.
  void wait();
  std::uint64_t requests_started() const { return sequence_.load(); }
  // Returns once every client has finished the request it had when this was called
  // (it has planned a new one since, or stopped): no request planned before is in
  // flight any more. Gives up after `timeout`; returns whether it did not.
  bool wait_for_next_round(std::chrono::milliseconds timeout);
  // Microseconds since start(), on the clock of LoadSample::start_us.
  std::int64_t now_us() const;

  // Every sample, ordered by start time. Valid after stop() or wait().
  std::vector<LoadSample> samples() const;

 private:
  void client(std::size_t index);
  void exchange(const LoadRequest& request, std::chrono::steady_clock::time_point deadline, int& fd,
                bool& used, std::string& in, LoadSample& sample, bool& close) const;

  LoadOptions options_;
  std::chrono::steady_clock::time_point started_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> sequence_{0};
  std::vector<std::vector<LoadSample>> per_client_;
  // Per client: requests planned, and whether it has stopped (wait_for_next_round).
  std::unique_ptr<std::atomic<std::uint64_t>[]> planned_;
  std::unique_ptr<std::atomic<bool>[]> done_;
  std::vector<std::thread> threads_;
};

// One paced LoadGenerator per port, started: `connections` connections and `rate`
// requests/s each, for at most `duration`, every request from `plan`.
std::vector<std::unique_ptr<LoadGenerator>> start_load(const std::vector<std::uint16_t>& ports,
                                                       std::function<LoadRequest(std::uint64_t)> plan,
                                                       int connections, double rate,
                                                       std::chrono::milliseconds duration);
// Stops them; the summary of all their samples.
LoadSummary stop_load(std::vector<std::unique_ptr<LoadGenerator>>& load);

}  // namespace phlow::test
