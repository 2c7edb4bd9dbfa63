#pragma once
// An invariant a fuzz target checks: abort() makes libFuzzer save the input as a crash.
// Not assert(): it must hold in every build type.

#include <cstdio>
#include <cstdlib>

#define FUZZ_ASSERT(cond)                                                      \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                            \
    }                                                                          \
  } while (0)
