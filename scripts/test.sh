#!/usr/bin/env bash
# Builds everything and runs every test. The tests start their own redis-server on
# free loopback ports. PHLOW_SANITIZE=1 builds into build-asan/ with ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
flags=()
if [[ "${PHLOW_SANITIZE:-0}" == 1 ]]; then
  build=build-asan
  flags+=(-DPHLOW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DPHLOW_BUILD_BENCH=OFF)
  # A small quarantine keeps the gateway processes of the end-to-end tests near their
  # real memory use (the streaming test bounds it).
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build" "${flags[@]}" >/dev/null
cmake --build "$build" -j"$jobs"
cd "$build"
# REDIS_URL from the caller's shell must not redirect the in-memory tests.
env -u REDIS_URL ctest --output-on-failure -j"$jobs" --timeout 600
