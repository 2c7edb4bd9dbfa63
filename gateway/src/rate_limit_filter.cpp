#include "gateway/rate_limit_filter.hpp"

#include <algorithm>

#include "gateway/rate_limit_response.hpp"

namespace phlow::gateway {

std::optional<std::int64_t> parse_units(const HeaderSource& headers, std::string_view name) {
  std::int64_t value = 0;
  int fields = 0;
  bool ok = true;
  headers.for_each(name, [&](std::string_view v) {
    ++fields;
    if (v.empty() || v.size() > 18) ok = false;
    for (char c : v) ok = ok && c >= '0' && c <= '9';
    if (!ok) return;
    value = 0;
    for (char c : v) value = value * 10 + (c - '0');
  });
  if (fields != 1 || !ok) return std::nullopt;  // absent is the caller's case; repeats are ambiguous
  return value;
}

RateLimitFilter::RateLimitFilter() : slot_ids_(limiter::kMaxLimitsPerCheck) {
  held_.for_each = [this](const std::function<void(const SlotRef&)>& fn) {
    for (std::size_t i = 0; i < limiter::kMaxLimitsPerCheck; ++i) {
      if ((held_mask_ & (1U << i)) == 0) continue;
      fn(SlotRef{&descriptors_[i], snapshot_->limit_ids[descriptor_limits_[i]]});
    }
  };
}

RateLimitFilter::~RateLimitFilter() {
  if (slots_ != nullptr) slots_->forget(held_);
}

void RateLimitFilter::release_slots() {
  if (held_mask_ != 0 && slots_ != nullptr) slots_->release(held_);
  held_mask_ = 0;
}

// After an allowed decision: the concurrency slots the check took (in Redis or in
// memory; a failure policy's decision took none) are held until release_slots().
void RateLimitFilter::hold_slots() {
  held_mask_ = 0;
  const auto source = decision_.source;
  if (!decision_.allowed || slots_ == nullptr ||
      (source != limiter::DecisionSource::redis && source != limiter::DecisionSource::memory)) {
    return;
  }
  std::int64_t shortest = INT64_MAX;
  for (std::size_t i = 0; i < decision_.count; ++i) {
    const limiter::Limit& limit = *descriptors_[i].limit;
    if (limit.algorithm != limiter::Algorithm::concurrency || !decision_.results[i].allowed) continue;
    held_mask_ |= 1U << i;
    shortest = std::min(shortest, limit.window_ms);
  }
  if (held_mask_ == 0) return;
  held_.in_redis = source == limiter::DecisionSource::redis;
  held_.renew_every_ms = std::max<std::int64_t>(shortest / 2, 1);
  slots_->hold(held_);
}

bool RateLimitFilter::start(const Snapshot& snapshot, const config::Route& route,
                            const RequestView& view, limiter::FallbackBackend& limiter,
                            WorkerStats& stats, RequestRecord& record, bool log_identifier) {
  release_slots();  // the previous request's, before its descriptors are reused
  debited_mask_ = 0;
  snapshot_ = &snapshot;
  route_ = &route;
  const config::Config& cfg = *snapshot.config;
  std::size_t count = 0;
  descriptor_limits_.clear();
  refusal_.reset();
  agent_checked_ = false;
  for (std::size_t index : route.limits) {
    const config::LimitSpec& spec = cfg.limits[index];
    const Identified found = identify(spec.key, view, stats);
    if (found == Identified::invalid) {
      const auto& jwt = cfg.identifiers.agent_id.jwt;
      // Before the limiter is asked: a rejected token consumes nothing from any limit.
      if (!jwt || jwt->on_invalid == config::JwtOnInvalid::reject) {
        return refuse(ProxyError::invalid_token, record);
      }
      continue;  // on_invalid: ignore - the agent ID counts as missing
    }
    if (found == Identified::missing) continue;  // skipped
    if (descriptors_.size() <= count) descriptors_.emplace_back();
    limiter::Descriptor& d = descriptors_[count++];
    d.limit = &snapshot.limits[index];
    if (!read_cost(spec, *d.limit, view, d.cost)) {
      bump(stats.cost_errors[0]);
      return refuse(ProxyError::bad_cost, record);
    }
    if (!spec.cost_header.empty()) record.cost = std::max(record.cost, d.cost);
    d.slot = {};
    if (d.limit->algorithm == limiter::Algorithm::concurrency && slots_ != nullptr) {
      std::string& id = slot_ids_[count - 1];
      slots_->next_slot_id(id);
      d.slot = id;
    }
    snapshot.keys.key(d.key, spec.name(), identifier_);
    descriptor_limits_.push_back(index);
  }
  checked_ = std::span<const limiter::Descriptor>(descriptors_.data(), count);
  started_ = std::chrono::steady_clock::now();
  decision_ = limiter::Decision{};
  if (count > 0) {
    auto now = limiter.try_check_now(checked_);
    if (!now) return false;
    decision_ = *now;
    if (decision_.source == limiter::DecisionSource::cache) bump(stats.over_limit_cache_hits);
  }
  record.limiter = std::chrono::steady_clock::now() - started_;
  decided(stats, record, log_identifier);
  return true;
}

// The identifier of `key` into identifier_. The agent ID is looked up (its token
// verified, an invalid one counted) once per request, however many of the route's
// limits count by it.
Identified RateLimitFilter::identify(const config::IdentifierKey& key, const RequestView& view,
                                     WorkerStats& stats) {
  if (key.kind != config::IdentifierKind::agent_id) {
    return snapshot_->identifiers.identify(key, view, identifier_, nullptr, &digests_);
  }
  if (!agent_checked_) {
    JwtError why = JwtError::none;
    agent_found_ = snapshot_->identifiers.identify(key, view, agent_id_, &why);
    agent_checked_ = true;
    if (agent_found_ == Identified::invalid) stats.count_jwt_invalid(why);
  }
  if (agent_found_ == Identified::found) identifier_.assign(agent_id_);
  return agent_found_;
}

bool RateLimitFilter::read_cost(const config::LimitSpec& spec, const limiter::Limit& limit,
                                const RequestView& view, std::int64_t& cost) const {
  cost = 1;
  if (spec.cost_header.empty()) return true;
  bool present = false;
  view.headers.for_each(spec.cost_header, [&](std::string_view) { present = true; });
  if (!present) return true;  // missing: one unit
  const auto units = parse_units(view.headers, spec.cost_header);
  if (units && *units >= 1 && *units <= limit.quota()) {
    cost = *units;
    return true;
  }
  // A shadow limit never refuses a request: its bad cost counts as one unit.
  return limit.shadow;
}

// Decided at once, without the limiter (on_invalid: reject -> 401; a bad cost -> 400).
bool RateLimitFilter::refuse(ProxyError why, RequestRecord& record) {
  refusal_ = why;
  descriptor_limits_.clear();
  checked_ = {};
  decision_ = limiter::Decision{};
  header_lines_.clear();
  header_name_count_ = 0;
  record.decision = why == ProxyError::bad_cost ? "bad_cost" : "invalid_token";
  return true;
}

namespace {

// One response's debit: what it must keep alive until the limiter has decided.
struct Debit {
  std::shared_ptr<const Snapshot> snapshot;  // the limits the descriptors point into
  std::vector<limiter::Descriptor> descriptors;
  std::vector<std::size_t> limit_ids;
};

}  // namespace

void RateLimitFilter::debit_response(const HeaderSource& response,
                                     const std::shared_ptr<const Snapshot>& snapshot,
                                     limiter::FallbackBackend& limiter, WorkerStats& stats,
                                     RequestRecord& record) {
  if (refusal_ || !decision_.allowed || descriptor_limits_.empty()) return;
  const config::Config& cfg = *snapshot_->config;
  std::unique_ptr<Debit> debit;
  for (std::size_t i = 0; i < descriptor_limits_.size(); ++i) {
    const std::size_t index = descriptor_limits_[i];
    const config::LimitSpec& spec = cfg.limits[index];
    if (spec.response_cost_header.empty() || (debited_mask_ & (1U << i)) != 0) continue;
    bool present = false;
    response.for_each(spec.response_cost_header, [&](std::string_view) { present = true; });
    if (!present) continue;  // maybe later, as a trailer
    debited_mask_ |= 1U << i;
    const auto units = parse_units(response, spec.response_cost_header);
    if (!units) {
      bump(stats.cost_errors[1]);
      continue;
    }
    if (*units == 0) continue;
    if (!debit) debit = std::make_unique<Debit>(Debit{snapshot, {}, {}});
    limiter::Descriptor& d = debit->descriptors.emplace_back(descriptors_[i]);
    d.cost = std::min(*units, limiter::max_debit(*d.limit));
    d.slot = {};  // a debit takes no slot (and this view would not outlive the request)
    record.response_cost = std::max(record.response_cost, d.cost);
    debit->limit_ids.push_back(snapshot_->limit_ids[index]);
  }
  if (!debit) return;
  const std::span<const limiter::Descriptor> ds(debit->descriptors);
  limiter.async_debit(ds, [debit = std::move(debit), &stats](limiter::Decision d) {
    stats.count_redis_error(d.store_failure);
    for (std::size_t i = 0; i < debit->descriptors.size(); ++i) {
      stats.count_units(debit->limit_ids[i], UnitSource::response, debit->descriptors[i].cost);
    }
  });
}

void RateLimitFilter::finish(WorkerStats& stats, RequestRecord& record, bool log_identifier) {
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  stats.redis_check.observe(elapsed);
  stats.count_redis_error(decision_.store_failure);
  record.limiter = elapsed;
  decided(stats, record, log_identifier);
}

void RateLimitFilter::decided(WorkerStats& stats, RequestRecord& record, bool log_identifier) {
  hold_slots();
  count(stats, record, log_identifier);
  render_headers();
}

// Counts each limit of the route by its own verdict, and names for the access log the
// limit that rejected the request (or would have, in shadow mode).
void RateLimitFilter::count(WorkerStats& stats, RequestRecord& record, bool log_identifier) {
  const config::Config& cfg = *snapshot_->config;
  std::size_t next = 0;  // descriptors follow route.limits in order, minus skipped ones
  int named = decision_.allowed ? limiter::kNone : decision_.rejected_by;
  for (std::size_t index : route_->limits) {
    const std::size_t id = snapshot_->limit_ids[index];
    if (next >= descriptor_limits_.size() || descriptor_limits_[next] != index) {
      stats.count_decision(id, Outcome::skipped);
      continue;
    }
    const limiter::LimitResult& r = decision_.results[next];
    const Outcome outcome = r.allowed ? Outcome::allowed
                            : r.shadow ? Outcome::shadow_limited
                                       : Outcome::limited;
    stats.count_decision(id, outcome);
    if (decision_.allowed && r.allowed && descriptors_[next].limit->weighted) {
      stats.count_units(id, UnitSource::request, descriptors_[next].cost);
    }
    if (outcome == Outcome::shadow_limited && named == limiter::kNone) named = static_cast<int>(next);
    if (outcome != Outcome::allowed) {
      const std::string& key = descriptors_[next].key;
      stats.count_limited_identifier(snapshot_->keys.limit_and_identifier(key));
    }
    ++next;
  }
  if (descriptor_limits_.empty()) return;
  record.decision = !decision_.allowed ? "limited"
                    : decision_.shadow_limited() ? "shadow_limited"
                                                 : "allowed";
  if (named != limiter::kNone) {
    const auto& spec = cfg.limits[descriptor_limits_[named]];
    record.limit = spec.name();
    if (log_identifier) {
      record.identifier.assign(snapshot_->keys.stored_identifier(descriptors_[named].key, spec.name()));
    }
  }
}

void RateLimitFilter::render_headers() {
  header_lines_.clear();
  header_name_count_ = 0;
  const int index = decision_.allowed ? decision_.most_restrictive : decision_.rejected_by;
  if (index == limiter::kNone) return;
  const auto& spec = snapshot_->config->limits[descriptor_limits_[index]];
  const std::int64_t window_ms =
      spec.limit.algorithm == limiter::Algorithm::concurrency ? 0 : spec.limit.window_ms;
  const std::size_t count = append_rate_limit_header_lines(snapshot_->config->response_headers, decision_,
                                                           index, spec.name(), window_ms, header_lines_,
                                                           header_names_);
  header_name_count_ = std::min(count, header_names_.size());
}

std::string RateLimitFilter::rejection_body() const {
  const auto& rejected = snapshot_->config->limits[descriptor_limits_[decision_.rejected_by]];
  return rate_limited_body(rejected.name(), decision_.results[decision_.rejected_by].retry_after_ms);
}

}  // namespace phlow::gateway
