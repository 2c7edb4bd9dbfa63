#pragma once
// The rate-limit step of the request path: the route's limits -> descriptors (keys) ->
// one limiter decision -> decision metrics, the access log's fields and the rate-limit
// headers of the response. No I/O: the session awaits the limiter when it cannot
// decide at once (in Redis), between start() and finish().
//
// Its buffers (descriptors, keys, header lines) are reused from request to request, so
// a connection allocates nothing here once it has seen its longest keys.

#include <array>
#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/proxy_error.hpp"
#include "gateway/request_record.hpp"
#include "gateway/request_view.hpp"
#include "gateway/slot_tracker.hpp"
#include "gateway/snapshot.hpp"
#include "limiter/decision.hpp"
#include "limiter/descriptor.hpp"
#include "limiter/fallback_backend.hpp"

namespace phlow::gateway {

// The units in a cost header (`cost`, `cost_from_response`): every value of the field
// (repeats joined) must make one whole number of at most 18 digits - no sign, no
// spaces inside. nullopt for anything else.
std::optional<std::int64_t> parse_units(const HeaderSource& headers, std::string_view name);

class RateLimitFilter {
 public:
  RateLimitFilter();
  ~RateLimitFilter();
  RateLimitFilter(const RateLimitFilter&) = delete;
  RateLimitFilter& operator=(const RateLimitFilter&) = delete;

  // The worker's concurrency slots: where this filter's requests name, hold and give
  // back theirs. Without it, a concurrency limit's check names no slot (tests).
  void attach(SlotTracker& slots) { slots_ = &slots; }
  // Gives back the concurrency slots the request holds (its response is complete, the
  // client or the upstream went away, its tunnel closed). Idempotent; start() does it
  // for the previous request too.
  void release_slots();
  // Whether the request holds concurrency slots now.
  bool holds_slots() const { return held_mask_ != 0; }

  // Builds the descriptors of `route`'s limits for the request (a limit whose
  // identifier the request lacks is skipped) and asks `limiter` for an immediate
  // decision. True when decided (then decision() and the headers are ready); false
  // when the limiter must be awaited: decision_slot() = co_await async_check(pending()),
  // then finish().
  // `snapshot` and `route` must outlive the request.
  bool start(const Snapshot& snapshot, const config::Route& route, const RequestView& view,
             limiter::FallbackBackend& limiter, WorkerStats& stats, RequestRecord& record,
             bool log_identifier);
  std::span<const limiter::Descriptor> pending() const { return checked_; }
  limiter::Decision& decision_slot() { return decision_; }
  // After the awaited decision is in decision_slot(): counts the Redis check (duration,
  // failure kind) as well.
  void finish(WorkerStats& stats, RequestRecord& record, bool log_identifier);

  // Set when start() refused the request before the limiter: a bearer token that
  // failed JWT verification for an agent_id limit with on_invalid: reject (401
  // ProxyError::invalid_token, with kInvalidTokenChallenge), or a cost header that is
  // not a whole number from 1 to its limit's quota (400 ProxyError::bad_cost). Then
  // nothing was checked or consumed, and that is the answer, whatever allowed() says.
  std::optional<ProxyError> refusal() const { return refusal_; }

  // After the upstream's response head, for an allowed request: consumes what the
  // response reports in each of its limits' `cost_from_response` header (at most
  // limiter::max_debit()), even past the limit, off the response path: the limiter
  // decides later, the descriptors and `snapshot` kept alive until it has. A value that
  // is not a whole number is counted (cost_errors_total{side="response"}) and ignored.
  // Called again once the whole response is read (Beast adds a chunked body's trailer
  // fields to the head's), it takes only the limits whose field arrived since: each
  // limit is debited once per response.
  void debit_response(const HeaderSource& response, const std::shared_ptr<const Snapshot>& snapshot,
                      limiter::FallbackBackend& limiter, WorkerStats& stats, RequestRecord& record);
  const limiter::Decision& decision() const { return decision_; }
  bool allowed() const { return decision_.allowed; }
  // The 429 body: the rejecting limit and its retry-after (only when !allowed()).
  std::string rejection_body() const;
  // The rate-limit headers for the response, "Name: value\r\n" each, and their names.
  std::string_view header_lines() const { return header_lines_; }
  std::span<const std::string_view> header_names() const {
    return {header_names_.data(), header_name_count_};
  }

 private:
  Identified identify(const config::IdentifierKey& key, const RequestView& view, WorkerStats& stats);
  bool refuse(ProxyError why, RequestRecord& record);
  // The cost of `spec` for this request into `cost`; false when its header is bad.
  bool read_cost(const config::LimitSpec& spec, const limiter::Limit& limit, const RequestView& view,
                 std::int64_t& cost) const;
  void decided(WorkerStats& stats, RequestRecord& record, bool log_identifier);
  void count(WorkerStats& stats, RequestRecord& record, bool log_identifier);
  void render_headers();
  void hold_slots();

  const Snapshot* snapshot_ = nullptr;
  const config::Route* route_ = nullptr;
  std::vector<limiter::Descriptor> descriptors_;
  std::vector<std::string> slot_ids_;  // by descriptor index; Descriptor::slot views one
  SlotTracker* slots_ = nullptr;
  HeldSlots held_;
  std::uint32_t held_mask_ = 0;  // descriptors whose slot the request holds
  std::uint32_t debited_mask_ = 0;  // descriptors whose response cost was read
  std::vector<std::size_t> descriptor_limits_;  // config limit index per descriptor
  std::string identifier_;
  limiter::Sha256Memo digests_;  // the connection's last token or API key, hashed once
  std::string agent_id_;       // the request's agent ID, once looked up
  bool agent_checked_ = false;  // agent_id_ / agent_found_ are this request's
  Identified agent_found_ = Identified::missing;
  std::optional<ProxyError> refusal_;
  std::span<const limiter::Descriptor> checked_;  // the descriptors of this request
  std::chrono::steady_clock::time_point started_;
  limiter::Decision decision_;
  std::string header_lines_;
  std::array<std::string_view, 8> header_names_{};
  std::size_t header_name_count_ = 0;
};

}  // namespace phlow::gateway
