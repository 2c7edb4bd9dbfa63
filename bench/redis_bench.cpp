// Redis-backed decisions per second through the async path the gateway uses: one
// io_context thread, one FallbackBackend (one pipelined connection), K checks kept
// in flight for a fixed time.
//
//   phlow_redis_bench redis://127.0.0.1:PORT [--seconds S] [--inflight 16,64]
//                     [--keys N] [--timeout-ms T]
//
// The checks go to Redis as the gateway sends them: the checks of one event-loop turn
// as one EVALSHA of the real check script (a batch). Sliding_log, 1,000,000
// requests per 60 s (so nearly all are allowed and consume), over N identifiers.
// Prints one line per K; "redis=" must be ~all decisions, else the run measured
// the fallback and says so with a non-zero exit code.
#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "limiter/descriptor.hpp"
#include "limiter/fallback_backend.hpp"
#include "limiter/limit.hpp"
#include "limiter/redis_health.hpp"
#include "limiter/store_factory.hpp"

namespace {

namespace asio = boost::asio;
using namespace phlow::limiter;
using SteadyClock = std::chrono::steady_clock;

struct Options {
  std::string url;
  double seconds = 3.0;
  std::vector<int> inflight{16, 64};
  std::size_t keys = 5000;
  std::chrono::milliseconds timeout{50};  // the production default deadline
};

struct PhaseResult {
  std::uint64_t decisions = 0;
  std::uint64_t from_redis = 0;
  std::uint64_t allowed = 0;
  double seconds = 0;
  std::vector<double> latency_us;
};

// Keeps `inflight` checks outstanding until `end`, then completes `done` when the
// last one has come back. Lives on the io_context thread only.
class Phase : public std::enable_shared_from_this<Phase> {
 public:
  Phase(FallbackBackend& backend, const std::vector<Descriptor>& descriptors, int inflight,
        SteadyClock::duration length)
      : backend_(backend), descriptors_(descriptors), inflight_(inflight), length_(length) {}

  std::future<PhaseResult> start() {
    auto f = done_.get_future();
    start_ = SteadyClock::now();
    end_ = start_ + length_;
    result_.latency_us.reserve(1 << 20);
    for (int i = 0; i < inflight_; ++i) issue();
    return f;
  }

 private:
  void issue() {
    ++outstanding_;
    const Descriptor& d = descriptors_[next_++ % descriptors_.size()];
    backend_.async_check(std::span(&d, 1), [self = shared_from_this(), sent = SteadyClock::now()](
                                               Decision decision) { self->on_decision(decision, sent); });
  }

  void on_decision(const Decision& d, SteadyClock::time_point sent) {
    const auto now = SteadyClock::now();
    --outstanding_;
    ++result_.decisions;
    if (d.source == DecisionSource::redis) ++result_.from_redis;
    if (d.allowed) ++result_.allowed;
    result_.latency_us.push_back(std::chrono::duration<double, std::micro>(now - sent).count());
    if (now < end_) {
      issue();
    } else if (outstanding_ == 0) {
      result_.seconds = std::chrono::duration<double>(now - start_).count();
      done_.set_value(std::move(result_));
    }
  }

  FallbackBackend& backend_;
  const std::vector<Descriptor>& descriptors_;
  const int inflight_;
  const SteadyClock::duration length_;
  SteadyClock::time_point start_, end_;
  std::size_t next_ = 0;
  int outstanding_ = 0;
  PhaseResult result_;
  std::promise<PhaseResult> done_;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p != '\0';) {
    out.push_back(std::max(1, std::atoi(p)));
    const char* comma = std::strchr(p, ',');
    if (comma == nullptr) break;
    p = comma + 1;
  }
  return out;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--seconds") == 0 && has_value) {
      o.seconds = std::clamp(std::atof(argv[++i]), 0.1, 60.0);
    } else if (std::strcmp(argv[i], "--inflight") == 0 && has_value) {
      o.inflight = parse_list(argv[++i]);
    } else if (std::strcmp(argv[i], "--keys") == 0 && has_value) {
      o.keys = static_cast<std::size_t>(std::max(1, std::atoi(argv[++i])));
    } else if (std::strcmp(argv[i], "--timeout-ms") == 0 && has_value) {
      o.timeout = std::chrono::milliseconds(std::max(1, std::atoi(argv[++i])));
    } else if (o.url.empty() && argv[i][0] != '-') {
      o.url = argv[i];
    } else {
      o.url.clear();
      break;
    }
  }
  if (o.url.empty()) {
    std::fprintf(stderr,
                 "usage: %s redis://HOST:PORT [--seconds S] [--inflight 16,64] [--keys N] "
                 "[--timeout-ms T]\n",
                 argv[0]);
    std::exit(2);
  }
  return o;
}

// Runs one phase on the io thread and waits for it from this one.
PhaseResult run_phase(asio::io_context& io, FallbackBackend& backend,
                      const std::vector<Descriptor>& descriptors, int inflight, double seconds) {
  auto phase = std::make_shared<Phase>(
      backend, descriptors, inflight,
      std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(seconds)));
  std::promise<std::future<PhaseResult>> started;
  auto started_f = started.get_future();
  asio::post(io, [&started, phase] { started.set_value(phase->start()); });
  return started_f.get().get();
}

}  // namespace

int main(int argc, char** argv) {
  const Options opts = parse_args(argc, argv);
  auto parsed = parse_redis_url(opts.url);
  if (const auto* error = std::get_if<std::string>(&parsed)) {
    std::fprintf(stderr, "bad redis url: %s\n", error->c_str());
    return 2;
  }
  const RedisUrl url = std::get<RedisUrl>(parsed);

  const Limit limit{"bench", 1'000'000, 60'000, Algorithm::sliding_log};
  std::vector<Descriptor> descriptors;
  for (std::size_t i = 0; i < opts.keys; ++i) {
    descriptors.push_back({&limit, build_key(kDefaultKeyPrefix, limit.name,
                                             "user-" + std::to_string(i))});
  }

  asio::io_context io(1);
  auto work = asio::make_work_guard(io);
  auto health = std::make_shared<RedisHealth>(url.endpoint());
  RedisOptions ropts{.url = url, .timeout = opts.timeout};
  auto redis = make_store(io.get_executor(), ropts, health);
  redis->start();
  FallbackBackend backend(io.get_executor(), std::make_shared<MemoryBackend>(), std::move(redis),
                          FailureMode::fallback);
  std::thread io_thread([&io] { io.run(); });
  const bool connected =
      health->wait_settled(kStartupWait) ==
      RedisState::connected;

  int status = connected ? 0 : 1;
  if (!connected) std::fprintf(stderr, "phlow_redis_bench: could not connect to %s\n",
                               url.endpoint().c_str());
  if (connected) run_phase(io, backend, descriptors, 16, 0.3);  // warm-up, not reported
  for (int k : opts.inflight) {
    if (!connected) break;
    PhaseResult r = run_phase(io, backend, descriptors, k, opts.seconds);
    const auto other = r.decisions - r.from_redis;
    std::printf("inflight=%d decisions=%llu seconds=%.2f rate=%.0f redis=%llu other=%llu "
                "allowed=%llu p50_us=%.0f p99_us=%.0f\n",
                k, static_cast<unsigned long long>(r.decisions), r.seconds,
                static_cast<double>(r.decisions) / r.seconds,
                static_cast<unsigned long long>(r.from_redis),
                static_cast<unsigned long long>(other),
                static_cast<unsigned long long>(r.allowed), percentile(r.latency_us, 0.5),
                percentile(r.latency_us, 0.99));
    std::fflush(stdout);
    // More than 0.1% not from Redis means the run did not measure Redis.
    if (other * 1000 > r.decisions) status = 1;
  }

  asio::post(io, [&backend] { backend.store()->stop(); });
  work.reset();
  io.stop();
  io_thread.join();
  return status;
}
