#!/usr/bin/env bash
# Builds everything (Release, warnings as errors) and runs every test. The tests start
# their own redis-server on free loopback ports. PHLOW_SANITIZE=1 builds into
# build-asan/ with ASan+UBSan (Debug).
# PHLOW_TSAN=1 builds into build-tsan/ with ThreadSanitizer and runs only the tests
# where several threads or processes share state (see tsan_tests below).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build
# CI is strict about warnings; a user's own cmake build is not (PHLOW_WERROR=OFF).
flags=(-DPHLOW_WERROR=ON)
targets=()
ctest_args=()
if [[ "${PHLOW_SANITIZE:-0}" == 1 && "${PHLOW_TSAN:-0}" == 1 ]]; then
  echo "test.sh: PHLOW_SANITIZE and PHLOW_TSAN are separate passes" >&2
  exit 2
fi
if [[ "${PHLOW_SANITIZE:-0}" == 1 ]]; then
  build=build-asan
  flags+=(-DPHLOW_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DPHLOW_BUILD_BENCH=OFF)
  # A small quarantine keeps the gateway processes of the end-to-end tests near their
  # real memory use (the streaming test bounds it).
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
if [[ "${PHLOW_SANITIZE:-0}" != 1 && "${PHLOW_TSAN:-0}" != 1 ]]; then
  flags+=(-DCMAKE_BUILD_TYPE=Release)
fi
if [[ "${PHLOW_TSAN:-0}" == 1 ]]; then
  build=build-tsan
  flags+=(-DPHLOW_TSAN=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPHLOW_BUILD_BENCH=OFF)
  # The concurrency tests: threads on one memory backend, two processes on one Redis,
  # Redis dying and coming back under the fallback, and the real gateway (worker,
  # admin and signal threads) through reloads, shutdown and shared Redis budgets, and
  # the TLS and WebSocket paths (certificate rotation, tunnels cut by SIGTERM), and the
  # limits for agents (concurrency slots held, renewed and given back by worker
  # threads; costs debited off the response path).
  targets=(limiter_memory_test limiter_redis_test limiter_library_test gateway_session_test
           gateway_e2e_cli_test gateway_e2e_limits_test gateway_e2e_ops_test
           gateway_e2e_proxy_test limiter_redis_tls_test limiter_redis_sentinel_test
           gateway_e2e_redis_sentinel_test limiter_redis_cluster_test gateway_e2e_redis_cluster_test
           gateway_core_test gateway_e2e_tls_test gateway_e2e_websocket_test gateway_e2e_jwt_test
           gateway_e2e_cost_test gateway_e2e_concurrency_test gateway_deadline_stream_test)
  tsan_tests='memory: |redis: |library: |redis tls: the library|redis sentinel: the library|e2e redis sentinel|redis cluster: |e2e redis cluster|session: |e2e cli: SIGHUP|e2e cli: SIGTERM|e2e limits: two gateways|e2e limits: a key over its limit|e2e limits: when Redis comes back|e2e ops: metrics count|e2e ops: Redis check histogram|e2e ops: admin inspects|e2e ops: a reset during|proxy: answers pipelined|proxy: no file descriptor leaks|e2e tls: |e2e websocket: |jwt: one verifier shared by threads|e2e jwt: |e2e cost: |e2e concurrency: |deadline stream: '
  ctest_args+=(-R "$tsan_tests")
  # Every process (test binaries and the gateways they spawn) writes its reports
  # here; a report fails the pass even when the process that raced exited 0.
  tsan_logs="$PWD/$build/tsan-logs"
  rm -rf "$tsan_logs"
  mkdir -p "$tsan_logs"
  export TSAN_OPTIONS="log_path=$tsan_logs/tsan second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp"
fi
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build" "${flags[@]}" >/dev/null
if ((${#targets[@]} > 0)); then
  cmake --build "$build" -j"$jobs" --target "${targets[@]}"
else
  cmake --build "$build" -j"$jobs"
fi
cd "$build"
# REDIS_URL from the caller's shell must not redirect the in-memory tests.
status=0
env -u REDIS_URL ctest --output-on-failure -j"$jobs" --timeout 600 "${ctest_args[@]}" || status=$?
if [[ "${PHLOW_TSAN:-0}" == 1 ]] && compgen -G "$tsan_logs/tsan*" >/dev/null; then
  echo "test.sh: ThreadSanitizer reports:" >&2
  cat "$tsan_logs"/tsan* >&2
  status=1
fi
exit "$status"
