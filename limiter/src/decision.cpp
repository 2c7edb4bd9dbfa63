#include "limiter/decision.hpp"

namespace phlow::limiter {

void summarize(Decision& decision) {
  decision.allowed = true;
  decision.rejected_by = kNone;
  decision.most_restrictive = kNone;
  for (std::size_t i = 0; i < decision.count; ++i) {
    const LimitResult& r = decision.results[i];
    if (r.allowed || r.shadow) continue;
    decision.allowed = false;
    if (decision.rejected_by == kNone ||
        r.retry_after_ms > decision.results[decision.rejected_by].retry_after_ms) {
      decision.rejected_by = static_cast<int>(i);
    }
  }
  if (!decision.allowed) {
    decision.most_restrictive = decision.rejected_by;
    return;
  }
  // Enforced limits first; when every limit is in shadow mode, the shadow ones, so that
  // the response still carries the headers they would send.
  for (const bool shadow : {false, true}) {
    for (std::size_t i = 0; i < decision.count; ++i) {
      const LimitResult& r = decision.results[i];
      if (r.shadow != shadow) continue;
      const int best = decision.most_restrictive;
      if (best == kNone || r.remaining < decision.results[best].remaining ||
          (r.remaining == decision.results[best].remaining &&
           r.reset_ms > decision.results[best].reset_ms)) {
        decision.most_restrictive = static_cast<int>(i);
      }
    }
    if (decision.most_restrictive != kNone) return;
  }
}

}  // namespace phlow::limiter
