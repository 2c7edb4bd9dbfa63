#include "gateway/metrics.hpp"

#include <algorithm>

namespace phlow::gateway {

std::size_t NameTable::id(const std::string& name) {
  std::lock_guard lock(mutex_);
  if (auto it = ids_.find(name); it != ids_.end()) return it->second;
  if (names_.size() >= kOtherId) {
    overflowed_ = true;
    return kOtherId;
  }
  const std::size_t next = names_.size();
  names_.push_back(name);
  ids_.emplace(name, next);
  return next;
}

std::vector<std::string> NameTable::names() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out = names_;
  if (overflowed_) out.emplace_back(kOtherName);  // names_ is full, so this lands at kOtherId
  return out;
}

StatusClass status_class(int status) {
  if (status < 200) return StatusClass::s1xx;
  if (status < 300) return StatusClass::s2xx;
  if (status < 400) return StatusClass::s3xx;
  if (status < 500) return StatusClass::s4xx;
  return StatusClass::s5xx;
}

std::string_view to_string(StatusClass c) {
  static constexpr std::array<std::string_view, kStatusClasses> names{"1xx", "2xx", "3xx",
                                                                      "4xx", "5xx"};
  return names[static_cast<std::size_t>(c)];
}

std::string_view to_string(Outcome o) {
  static constexpr std::array<std::string_view, kOutcomes> names{"allowed", "limited",
                                                                 "shadow_limited", "skipped"};
  return names[static_cast<std::size_t>(o)];
}

std::string_view to_string(UnitSource s) { return s == UnitSource::request ? "request" : "response"; }

std::string_view to_string(UpstreamError e) {
  static constexpr std::array<std::string_view, kUpstreamErrors> names{
      "connect_refused", "connect_timeout", "timeout", "reset", "bad_response", "truncated", "tls"};
  return names[static_cast<std::size_t>(e)];
}

std::string_view to_string(TlsHandshakeError e) {
  static constexpr std::array<std::string_view, kTlsHandshakeErrors> names{"plain_http", "timeout",
                                                                          "failed"};
  return names[static_cast<std::size_t>(e)];
}

void Histogram::observe(std::chrono::nanoseconds d) {
  const std::int64_t ns = std::max<std::int64_t>(d.count(), 0);
  // `le` is inclusive: the first bound >= ns.
  const auto bound = std::lower_bound(kBoundsNs.begin(), kBoundsNs.end(), ns);
  bump(buckets_[static_cast<std::size_t>(bound - kBoundsNs.begin())]);
  bump(sum_ns_, static_cast<std::uint64_t>(ns));
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count += s.buckets[i];
  }
  s.sum_ns = sum_ns_.load(std::memory_order_relaxed);
  return s;
}

Histogram::Snapshot& Histogram::Snapshot::operator+=(const Snapshot& other) {
  for (std::size_t i = 0; i < kBuckets; ++i) buckets[i] += other.buckets[i];
  count += other.count;
  sum_ns += other.sum_ns;
  return *this;
}

void WorkerStats::count_request(std::size_t route_id, int status) {
  bump(requests[std::min(route_id, kOtherId)][static_cast<std::size_t>(status_class(status))]);
  if (status == 429) bump(rate_limited[std::min(route_id, kOtherId)][0]);
}

void WorkerStats::count_decision(std::size_t limit_id, Outcome outcome) {
  bump(decisions[std::min(limit_id, kOtherId)][static_cast<std::size_t>(outcome)]);
}

void WorkerStats::count_units(std::size_t limit_id, UnitSource source, std::int64_t n) {
  if (n > 0) bump(units[std::min(limit_id, kOtherId)][static_cast<std::size_t>(source)], static_cast<std::uint64_t>(n));
}

// Space-saving (Metwally et al.): a new key evicts the current minimum and inherits its
// count + 1, so heavy hitters stay while the table holds k entries only.
void WorkerStats::count_limited_identifier(std::string_view limit_and_identifier) {
  std::lock_guard lock(top_mutex_);
  for (TopEntry& e : top_) {
    if (e.key == limit_and_identifier) {
      ++e.count;
      return;
    }
  }
  if (top_.size() < kTopK) {
    top_.push_back(TopEntry{std::string(limit_and_identifier), 1});
    return;
  }
  auto min = std::min_element(top_.begin(), top_.end(), [](const TopEntry& a, const TopEntry& b) {
    return a.count < b.count;
  });
  min->key.assign(limit_and_identifier);
  ++min->count;
}

std::vector<std::pair<std::string, std::uint64_t>> WorkerStats::top_limited(std::size_t n) const {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  {
    std::lock_guard lock(top_mutex_);
    out.reserve(top_.size());
    for (const TopEntry& e : top_) out.emplace_back(e.key, e.count);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (out.size() > n) out.resize(n);
  return out;
}

}  // namespace phlow::gateway
