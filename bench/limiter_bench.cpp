// In-memory decision cost: MemoryBackend::check with one descriptor, per algorithm,
// over one hot key or 10,000 keys, on 1 and 2 threads. Plain std::chrono loops.
//
//   phlow_limiter_bench [--runs N] [--ms M]
//
// Each scenario gets a fresh backend, one unmeasured warm-up run (so sliding_log
// reaches its steady state and the rejecting limit is exhausted), then N runs of M
// ms. Every thread times batches of kBatch decisions; the batch mean is the
// per-decision sample (the clock read is amortised over the batch).
// Columns: decisions/s over all threads; ns/dec/thr = wall time per decision of one
// thread; cpu ns = thread CPU time per decision (robust when other work shares the
// cores); p50/p99 ns = percentiles of the batch means; allowed = share allowed.
// Every column is the median over the runs.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <latch>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "limiter/descriptor.hpp"
#include "limiter/limit.hpp"
#include "limiter/memory_backend.hpp"

namespace {

using namespace phlow::limiter;
using SteadyClock = std::chrono::steady_clock;

constexpr std::size_t kBatch = 256;
constexpr std::size_t kManyKeys = 10'000;
// A prime stride visits every key once per 10,000 decisions without walking them in
// insertion order.
constexpr std::size_t kStride = 7919;

struct Scenario {
  const char* name;
  Limit limit;
  bool exhaust = false;  // use up every key's quota before measuring
};

enum class Keys { hot, many, many_build_key };
const char* to_string(Keys k) {
  switch (k) {
    case Keys::hot: return "1 hot key";
    case Keys::many: return "10k keys";
    case Keys::many_build_key: return "10k keys+build_key";
  }
  return "?";
}

std::vector<Scenario> scenarios() {
  // Windows are short where the state grows with the request rate (sliding_log
  // keeps one timestamp per allowed request), so the warm-up reaches steady state.
  return {
      {"sliding_log (allows)", {"log_allow", 1'000'000'000, 100, Algorithm::sliding_log}},
      {"sliding_log (rejects)", {"log_reject", 100, 3'600'000, Algorithm::sliding_log}, true},
      {"sliding_window", {"window", 1'000'000'000, 1000, Algorithm::sliding_window}},
      {"token_bucket", {"bucket", 1'000'000'000, 1000, Algorithm::token_bucket}},
  };
}

struct ThreadResult {
  std::uint64_t decisions = 0;
  double cpu_ns = 0;  // CPU time of this thread: excludes time other work took the core
  std::uint64_t allowed = 0;
  std::vector<double> batch_ns;  // mean ns per decision of each batch
};

struct Workload {
  MemoryBackend* backend;
  const Limit* limit;
  Keys keys;
  const std::vector<std::string>* identifiers;
  const std::vector<Descriptor>* descriptors;
};

double thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Runs decisions until `end`, starting at key `start`.
ThreadResult run_thread(const Workload& w, std::size_t start, SteadyClock::time_point end) {
  ThreadResult r;
  r.batch_ns.reserve(1 << 16);
  Descriptor scratch{w.limit, {}};
  scratch.key.reserve(64);
  const std::size_t n = w.descriptors->size();
  const std::size_t step = kStride % n;  // no division in the loop
  std::size_t idx = start % n;
  const double cpu_start = thread_cpu_ns();
  while (true) {
    const auto t0 = SteadyClock::now();
    for (std::size_t i = 0; i < kBatch; ++i) {
      const Descriptor* d = &(*w.descriptors)[idx];
      if (w.keys == Keys::many_build_key) {
        build_key(scratch.key, kDefaultKeyPrefix, w.limit->name, (*w.identifiers)[idx]);
        d = &scratch;
      }
      r.allowed += w.backend->check(std::span<const Descriptor>(d, 1)).allowed ? 1 : 0;
      idx += step;
      if (idx >= n) idx -= n;
    }
    const auto t1 = SteadyClock::now();
    r.decisions += kBatch;
    r.batch_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / kBatch);
    if (t1 >= end) break;
  }
  r.cpu_ns = thread_cpu_ns() - cpu_start;
  return r;
}

struct RunResult {
  double decisions_per_s = 0;
  double ns_per_decision = 0;  // per thread: wall time / decisions of that thread
  double cpu_ns_per_decision = 0;  // thread CPU time / decisions, over all threads
  double p50_ns = 0;           // median batch mean, over all threads' batches
  double p99_ns = 0;
  double allowed_fraction = 0;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

RunResult run_once(const Workload& w, int threads, std::chrono::milliseconds duration) {
  std::vector<ThreadResult> results(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  std::latch ready(threads + 1);
  std::atomic<std::int64_t> end_ns{0};
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.arrive_and_wait();
      const SteadyClock::time_point end{SteadyClock::duration(end_ns.load())};
      results[static_cast<std::size_t>(t)] =
          run_thread(w, static_cast<std::size_t>(t) * (kManyKeys / 2), end);
    });
  }
  const auto start = SteadyClock::now();
  end_ns.store((start + duration).time_since_epoch().count());
  ready.arrive_and_wait();
  for (auto& th : pool) th.join();
  const double elapsed_s = std::chrono::duration<double>(SteadyClock::now() - start).count();

  RunResult out;
  std::uint64_t decisions = 0, allowed = 0;
  double cpu_ns = 0;
  std::vector<double> batches;
  for (auto& r : results) {
    decisions += r.decisions;
    cpu_ns += r.cpu_ns;
    allowed += r.allowed;
    batches.insert(batches.end(), r.batch_ns.begin(), r.batch_ns.end());
  }
  out.decisions_per_s = static_cast<double>(decisions) / elapsed_s;
  out.ns_per_decision = 1e9 * threads / out.decisions_per_s;
  out.cpu_ns_per_decision = cpu_ns / static_cast<double>(decisions);
  out.p50_ns = percentile(batches, 0.50);
  out.p99_ns = percentile(batches, 0.99);
  out.allowed_fraction = static_cast<double>(allowed) / static_cast<double>(decisions);
  return out;
}

// Consumes the whole quota of every key, so that measured decisions reject.
void exhaust(MemoryBackend& backend, const Limit& limit, const std::vector<Descriptor>& keys) {
  for (const Descriptor& d : keys) {
    for (std::int64_t i = 0; i < limit.requests; ++i) backend.check(std::span(&d, 1));
  }
}

double median_of(std::vector<RunResult>& runs, double RunResult::*field) {
  std::vector<double> v;
  for (const auto& r : runs) v.push_back(r.*field);
  return percentile(v, 0.5);
}

struct Options {
  int runs = 5;
  std::chrono::milliseconds run_ms{200};
};

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      o.runs = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--ms") == 0 && i + 1 < argc) {
      o.run_ms = std::chrono::milliseconds(std::max(10, std::atoi(argv[++i])));
    } else {
      std::fprintf(stderr, "usage: %s [--runs N] [--ms M]\n", argv[0]);
      std::exit(2);
    }
  }
  return o;
}

// The machine is shared: say how busy it was.
void print_load() {
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) std::printf("load average: %.2f %.2f %.2f\n", load[0], load[1], load[2]);
}

}  // namespace

int main(int argc, char** argv) {
  const Options opts = parse_args(argc, argv);
  std::printf("MemoryBackend::check, 1 descriptor; median of %d runs x %lld ms, %zu-decision "
              "batches; %u hardware threads\n",
              opts.runs, static_cast<long long>(opts.run_ms.count()), kBatch,
              std::thread::hardware_concurrency());
  print_load();
  std::printf("%-22s %-19s %3s %12s %10s %8s %8s %9s %8s\n", "algorithm", "keys", "thr",
              "decisions/s", "ns/dec/thr", "cpu ns", "p50 ns", "p99 ns", "allowed");

  std::vector<std::string> identifiers;
  for (std::size_t i = 0; i < kManyKeys; ++i) identifiers.push_back("user-" + std::to_string(i));

  for (const Scenario& s : scenarios()) {
    std::vector<Descriptor> many;
    for (const auto& id : identifiers) {
      many.push_back({&s.limit, build_key(kDefaultKeyPrefix, s.limit.name, id)});
    }
    const std::vector<Descriptor> hot{many.front()};
    for (Keys keys : {Keys::hot, Keys::many, Keys::many_build_key}) {
      for (int threads : {1, 2}) {
        auto backend = std::make_shared<MemoryBackend>();
        const Workload w{backend.get(), &s.limit, keys, &identifiers,
                         keys == Keys::hot ? &hot : &many};
        if (s.exhaust) exhaust(*backend, s.limit, *w.descriptors);
        run_once(w, threads, opts.run_ms);  // warm-up
        std::vector<RunResult> runs;
        for (int r = 0; r < opts.runs; ++r) runs.push_back(run_once(w, threads, opts.run_ms));
        std::printf("%-22s %-19s %3d %12.0f %10.1f %8.1f %8.1f %9.1f %7.1f%%\n", s.name,
                    to_string(keys), threads, median_of(runs, &RunResult::decisions_per_s),
                    median_of(runs, &RunResult::ns_per_decision),
                    median_of(runs, &RunResult::cpu_ns_per_decision),
                    median_of(runs, &RunResult::p50_ns), median_of(runs, &RunResult::p99_ns),
                    100.0 * median_of(runs, &RunResult::allowed_fraction));
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
