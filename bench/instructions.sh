#!/usr/bin/env bash
# What one proxied request costs the gateway in user-space instructions, and in system
# calls: two counts that, unlike req/s and CPU time on a shared 2-core machine, hardly
# move between runs, so that a change of a few percent on the request path shows.
#
#   bench/instructions.sh BIN [BIN...]     # e.g. a worktree's build of the base commit, then this one
#   DURATION=10s CONNECTIONS=50 bench/instructions.sh build/gateway/phlow-gateway
#   UPSTREAM_PORT=18080 bench/instructions.sh BIN      # an upstream already listening on
#                                                     # 127.0.0.1:PORT instead of the demo
#                                                     # one (e.g. compare.sh's nginx peer)
#   REDIS=1 bench/instructions.sh BIN                 # the limit in a redis-server of its own
#   LIMITS=2 bench/instructions.sh BIN                # per_token (key token_hash) + per_ip, as
#                                                     # compare.sh's BENCH_GW_LIMITS=2; with
#                                                     # LIMITS=1 or 2 every request carries
#                                                     # compare.sh's bearer token
#   PROFILE_DIR=/tmp/prof bench/instructions.sh BIN   # keeps each callgrind profile there
#                                                     # (callgrind_annotate DIR/N.callgrind)
#
# Each gateway (threads: 1, access log off, one sliding_log limit by client IP that
# nothing reaches, in memory) proxies to the demo upstream (1 thread), under wrk
# -t1 -cCONNECTIONS:
#   - under valgrind's callgrind, instrumentation switched on after 3 s of warm-up,
#     for DURATION: instructions per request (the gateway's and its libraries', not
#     the kernel's);
#   - then natively, when `perf` can count the syscalls tracepoints: recvfrom, sendmsg
#     and epoll_wait calls per request over 3 s (a read that finds nothing, EAGAIN,
#     is one more recvfrom).
# Needs valgrind (apt-get install valgrind); perf is optional (linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

[[ $# -ge 1 ]] || { echo "usage: bench/instructions.sh BIN [BIN...]" >&2; exit 2; }
gateway_bin=$1
upstream_bin=${UPSTREAM_BIN:-build/demo/phlow-demo-upstream}
[[ -x $upstream_bin ]] || upstream_bin=build-dev/demo/phlow-demo-upstream
require_bench_tools
for tool in valgrind callgrind_control callgrind_annotate; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install valgrind)" >&2; exit 2; }
done
for bin in "$@"; do [[ -x $bin ]] || { echo "not a binary: $bin" >&2; exit 2; }; done
duration=${DURATION:-10s}
connections=${CONNECTIONS:-50}
perf_events=syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendmsg,syscalls:sys_enter_epoll_wait
can_perf=0
if command -v perf >/dev/null && perf stat -e "$perf_events" -- true >/dev/null 2>&1; then can_perf=1; fi

if [[ -n ${UPSTREAM_PORT:-} ]]; then
  upstream_port=$UPSTREAM_PORT
  wait_http "$upstream_port" || { echo "nothing answers on 127.0.0.1:$upstream_port" >&2; exit 2; }
else
  start_upstream
fi
port=$(free_port)
admin=$(free_port)
redis_url=""
if [[ ${REDIS:-0} == 1 ]]; then
  redis_port=$(free_port)
  start_redis "$redis_port"
  redis_url="redis://127.0.0.1:$redis_port/0"
fi
write_gateway_config "$workdir/gateway.yaml" "$port" "$admin" "$redis_url"
wrk_args=(-t1 -c"$connections")
case ${LIMITS:-} in
  "") ;;
  1) wrk_args+=(-H "Authorization: Bearer phlow-bench-token-0001") ;;
  2)
    wrk_args+=(-H "Authorization: Bearer phlow-bench-token-0001")
    sed -i -e 's/^  per_ip: .*/&\n  per_token: { requests: 1000000000, window: 1m, key: token_hash }/' \
      -e 's/limits: \[per_ip\]/limits: [per_token, per_ip]/' "$workdir/gateway.yaml"
    grep -q 'limits: \[per_token, per_ip\]' "$workdir/gateway.yaml" || { echo "LIMITS=2: config not rewritten" >&2; exit 2; }
    ;;
  *) echo "LIMITS must be 1 or 2" >&2; exit 2 ;;
esac

requests_of() { awk '/requests in/{print $1}' "$1"; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c$connections; REDIS=${REDIS:-0} LIMITS=${LIMITS:-}"
printf '%-44s %14s %12s %12s %12s\n' gateway "instr/req" "recvfrom/req" "sendmsg/req" "epoll/req"
for bin in "$@"; do
  out=$workdir/callgrind.out
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$bin" --config "$workdir/gateway.yaml" >"$workdir/valgrind.log" 2>&1 &
  vg=$!
  pids+=("$vg")
  for _ in $(seq 300); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && break; sleep 0.1; done
  wrk "${wrk_args[@]}" -d3s "http://127.0.0.1:$port/" >/dev/null
  callgrind_control -i on "$vg" >/dev/null
  wrk "${wrk_args[@]}" -d"$duration" "http://127.0.0.1:$port/" >"$workdir/wrk.txt"
  callgrind_control -d "$vg" >/dev/null
  kill "$vg"
  wait "$vg" 2>/dev/null || true
  instructions=$(callgrind_annotate "$out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !seen { gsub(",", "", $1); print $1; seen = 1 }')
  per_request=$(awk -v i="$instructions" -v r="$(requests_of "$workdir/wrk.txt")" 'BEGIN { printf "%.0f", i / r }')
  if [[ -n ${PROFILE_DIR:-} ]]; then
    mkdir -p "$PROFILE_DIR"
    profiles=$((${profiles:-0} + 1))
    cp "$out.1" "$PROFILE_DIR/$profiles.callgrind"
    echo "profile of $bin: $PROFILE_DIR/$profiles.callgrind"
  fi
  rm -f "$out" "$out".*

  syscalls=("-" "-" "-")
  if [[ $can_perf == 1 ]]; then
    "$bin" --config "$workdir/gateway.yaml" >"$workdir/native.log" 2>&1 &
    gw=$!
    pids+=("$gw")
    wait_http "$port"
    wrk "${wrk_args[@]}" -d2s "http://127.0.0.1:$port/" >/dev/null
    perf stat -x, -e "$perf_events" -p "$gw" -o "$workdir/perf.txt" -- sleep 4 &
    perf_pid=$!
    sleep 0.3
    wrk "${wrk_args[@]}" -d3s "http://127.0.0.1:$port/" >"$workdir/wrk.txt"
    wait "$perf_pid" || true
    kill "$gw"
    wait "$gw" 2>/dev/null || true
    mapfile -t syscalls < <(awk -F, -v r="$(requests_of "$workdir/wrk.txt")" \
      '/sys_enter/ { printf "%.2f\n", $1 / r }' "$workdir/perf.txt")
  fi
  printf '%-44s %14s %12s %12s %12s\n' "$bin" "$per_request" "${syscalls[0]:--}" "${syscalls[1]:--}" "${syscalls[2]:--}"
done
