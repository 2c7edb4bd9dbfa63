#pragma once
// What the end-to-end tests (real gateway processes) share.

#include "support/process.hpp"

namespace phlow::test {

// Sanitized builds run about 50 times slower: tests that load the gateway scale down.
#ifdef PHLOW_SANITIZED
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

// Hermetic: a REDIS_URL of the environment must not reach a gateway under test.
inline const EnvVars kNoRedis = {{"REDIS_URL", ""}};

}  // namespace phlow::test
