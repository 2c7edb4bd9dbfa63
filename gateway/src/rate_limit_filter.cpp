#include "gateway/rate_limit_filter.hpp"

#include "gateway/rate_limit_response.hpp"

namespace phlow::gateway {

bool RateLimitFilter::start(const Snapshot& snapshot, const config::Route& route,
                            const RequestView& view, limiter::FallbackBackend& limiter,
                            WorkerStats& stats, RequestRecord& record, bool log_identifier) {
  snapshot_ = &snapshot;
  route_ = &route;
  const config::Config& cfg = *snapshot.config;
  std::size_t count = 0;
  descriptor_limits_.clear();
  invalid_token_ = false;
  agent_checked_ = false;
  for (std::size_t index : route.limits) {
    const config::LimitSpec& spec = cfg.limits[index];
    const Identified found = identify(spec.key, view, stats);
    if (found == Identified::invalid) {
      const auto& jwt = cfg.identifiers.agent_id.jwt;
      // Before the limiter is asked: a rejected token consumes nothing from any limit.
      if (!jwt || jwt->on_invalid == config::JwtOnInvalid::reject) return reject_token(record);
      continue;  // on_invalid: ignore - the agent ID counts as missing
    }
    if (found == Identified::missing) continue;  // skipped
    if (descriptors_.size() <= count) descriptors_.emplace_back();
    limiter::Descriptor& d = descriptors_[count++];
    d.limit = &snapshot.limits[index];
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
    return snapshot_->identifiers.identify(key, view, identifier_);
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

// on_invalid: reject. Decided at once, without the limiter: the session answers 401.
bool RateLimitFilter::reject_token(RequestRecord& record) {
  invalid_token_ = true;
  descriptor_limits_.clear();
  checked_ = {};
  decision_ = limiter::Decision{};
  header_lines_.clear();
  header_name_count_ = 0;
  record.decision = "invalid_token";
  return true;
}

void RateLimitFilter::finish(WorkerStats& stats, RequestRecord& record, bool log_identifier) {
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  stats.redis_check.observe(elapsed);
  stats.count_redis_error(decision_.store_failure);
  record.limiter = elapsed;
  decided(stats, record, log_identifier);
}

void RateLimitFilter::decided(WorkerStats& stats, RequestRecord& record, bool log_identifier) {
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
  for_each_rate_limit_header(snapshot_->config->response_headers, decision_, index, spec.name(),
                             spec.limit.window_ms, [this](std::string_view name, std::string_view value) {
                               header_lines_.append(name).append(": ").append(value).append("\r\n");
                               if (header_name_count_ < header_names_.size()) {
                                 header_names_[header_name_count_++] = name;
                               }
                             });
}

std::string RateLimitFilter::rejection_body() const {
  const auto& rejected = snapshot_->config->limits[descriptor_limits_[decision_.rejected_by]];
  return rate_limited_body(rejected.name(), decision_.results[decision_.rejected_by].retry_after_ms);
}

}  // namespace phlow::gateway
