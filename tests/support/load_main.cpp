// phlow-load: the load generator of the end-to-end tests as a command, for bench/soak.sh.
//
//   phlow-load --port P [--connections 64] [--duration-s 60] [--rate 2000]
//              [--interval-s 30] [--target /] [--request "Name: value|Name: value"]...
//
// Requests rotate through the --request header sets (request i uses set i mod n). At the
// end it prints, per interval, "interval <start_s> sent .. 2xx .. 429 .. 5xx .. dropped ..
// p50_ms .. p99_ms .. max_ms ..", then per set "set <index> sent .. allowed .. limited ..",
// then "total sent .. 5xx .. dropped ..". Exit status 0 unless arguments are wrong.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "support/load_generator.hpp"

using namespace phlow::test;

namespace {

HeaderList parse_set(const std::string& spec) {
  HeaderList out;
  std::size_t pos = 0;
  while (pos <= spec.size()) {
    const std::size_t bar = spec.find('|', pos);
    const std::string item = spec.substr(pos, bar == std::string::npos ? std::string::npos : bar - pos);
    const std::size_t colon = item.find(':');
    if (colon != std::string::npos) {
      std::string value = item.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      out.emplace_back(item.substr(0, colon), value);
    }
    if (bar == std::string::npos) break;
    pos = bar + 1;
  }
  return out;
}

void print_interval(std::int64_t start_s, const std::vector<LoadSample>& samples) {
  const LoadSummary s = summarize(samples);
  std::uint64_t ok = 0;
  for (const auto& [status, n] : s.by_status) {
    if (status / 100 == 2) ok += n;
  }
  std::cout << "interval " << start_s << " sent " << s.sent << " 2xx " << ok << " 429 "
            << s.count(429) << " 5xx " << s.server_errors << " dropped " << s.dropped << " p50_ms "
            << s.p50_us / 1000.0 << " p99_ms " << s.p99_us / 1000.0 << " max_ms "
            << s.max_latency_us / 1000.0 << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  LoadOptions options;
  options.connections = 64;
  options.duration = std::chrono::seconds(60);
  std::int64_t interval_s = 30;
  std::string target = "/";
  std::vector<HeaderList> sets;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--port") options.port = static_cast<std::uint16_t>(std::stoi(value));
    else if (flag == "--connections") options.connections = std::stoi(value);
    else if (flag == "--duration-s") options.duration = std::chrono::seconds(std::stoll(value));
    else if (flag == "--rate") options.rate = std::stod(value);
    else if (flag == "--interval-s") interval_s = std::stoll(value);
    else if (flag == "--target") target = value;
    else if (flag == "--request") sets.push_back(parse_set(value));
    else {
      std::cerr << "phlow-load: unknown option " << flag << "\n";
      return 2;
    }
  }
  if (options.port == 0 || interval_s <= 0) {
    std::cerr << "usage: phlow-load --port P [--connections N] [--duration-s S] [--rate R] "
                 "[--interval-s S] [--target PATH] [--request \"Name: value|...\"]...\n";
    return 2;
  }
  if (sets.empty()) sets.emplace_back();
  options.plan = [&sets, &target](std::uint64_t seq) {
    LoadRequest r;
    r.target = target;
    r.tag = static_cast<int>(seq % sets.size());
    r.headers = sets[static_cast<std::size_t>(r.tag)];
    return r;
  };
  LoadGenerator load(options);
  load.start();
  load.wait();
  const auto samples = load.samples();

  std::vector<LoadSample> bucket;
  std::int64_t bucket_start = 0;
  for (const auto& s : samples) {
    while (s.start_us >= (bucket_start + interval_s) * 1'000'000) {
      print_interval(bucket_start, bucket);
      bucket.clear();
      bucket_start += interval_s;
    }
    bucket.push_back(s);
  }
  if (!bucket.empty()) print_interval(bucket_start, bucket);
  for (std::size_t i = 0; i < sets.size(); ++i) {
    std::uint64_t sent = 0, allowed = 0, limited = 0;
    for (const auto& s : samples) {
      if (s.tag != static_cast<int>(i)) continue;
      ++sent;
      if (s.status / 100 == 2) ++allowed;
      if (s.status == 429) ++limited;
    }
    std::cout << "set " << i << " sent " << sent << " allowed " << allowed << " limited " << limited << "\n";
  }
  const LoadSummary total = summarize(samples);
  std::cout << "total sent " << total.sent << " 5xx " << total.server_errors << " dropped "
            << total.dropped << " p99_ms " << total.p99_us / 1000.0 << " max_ms "
            << total.max_latency_us / 1000.0 << "\n";
  return 0;
}
