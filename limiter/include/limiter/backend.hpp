#pragma once
// The store interface. The seed's custom backends (DynamoDB, ...) implement this.

#include <span>
#include <string_view>

#include "limiter/decision.hpp"
#include "limiter/descriptor.hpp"

namespace phlow::limiter {

class RateLimitBackend {
 public:
  virtual ~RateLimitBackend() = default;

  // Decides all `descriptors` of one request atomically: when any enforced (non
  // shadow) limit rejects, no limit consumes anything; otherwise every limit that
  // allowed consumes one request. descriptors.size() <= kMaxLimitsPerCheck.
  // Must not throw for store failures: report them as a decision instead.
  virtual Decision check(std::span<const Descriptor> descriptors) = 0;

  // Forgets all usage recorded under `key`.
  virtual void reset(std::string_view key) = 0;

  // Current usage of one descriptor, consuming nothing.
  virtual LimitResult peek(const Descriptor& descriptor) = 0;
};

}  // namespace phlow::limiter
