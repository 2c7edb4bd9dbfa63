#!/usr/bin/env bash
# 429 floods and Redis calls per request: one phlow-gateway (threads: 1) in front of the
# demo upstream, first in memory, then with its own redis-server.
#   flood    one client over its limit (10 requests an hour, spent before the run):
#            every request is a 429. Prints 429/s, p99, Redis script calls per 429
#            (INFO commandstats) and the over-limit cache's hits.
#   allowed  a limit nothing reaches: Redis script calls per request and checks per
#            call (the batching of one event-loop turn's checks into one call).
# Redis CPU per request is the redis-server process's user+system time over the run
# divided by the requests wrk completed.
#
#   bench/flood_bench.sh [BUILD_DIR]        (default: <repo>/build)
#
# Needs wrk (PHLOW_BENCH_DEPS=1 scripts/install-deps.sh), redis-server and redis-cli.
# Environment: DURATION (wrk -d; 8s), CONNECTIONS (wrk -c; 50), ALGORITHM (sliding_log),
# GATEWAY_BIN (another phlow-gateway to measure, e.g. an older build).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
upstream_bin=$build/demo/phlow-demo-upstream
gateway_bin=${GATEWAY_BIN:-$build/gateway/phlow-gateway}
duration=${DURATION:-8s}
connections=${CONNECTIONS:-50}
algorithm=${ALGORITHM:-sliding_log}
# workdir, pids (killed on exit), free_port, wait_http, wait_port, require_bench_tools,
# start_upstream, start_redis
source "$repo/bench/lib.sh"
require_bench_tools
start_upstream
redis_port=$(free_port)
start_redis "$redis_port"

script_calls() {
  redis-cli -p "$redis_port" info commandstats |
    awk -F'[=,:]' '/^cmdstat_(fcall|evalsha|eval):/ { s += $3 } END { print s + 0 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
metric() {  # admin_port name
  curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

# run MODE(memory|redis) REQUESTS_PER_HOUR: prints
# "RPS P99_MS NON2XX_SHARE CALLS_PER_REQUEST REDIS_US_PER_REQUEST CACHE_HITS CHECKS_PER_CALL"
run() {
  local mode=$1 quota=$2 port admin
  port=$(free_port)
  admin=$(free_port)
  {
    echo "listen: \"127.0.0.1:$port\""
    echo "threads: 1"
    echo "access_log: \"off\""
    echo "log_level: warn"
    echo "admin: { listen: \"127.0.0.1:$admin\" }"
    echo "upstreams: { demo: { url: \"http://127.0.0.1:$upstream_port\" } }"
    echo "limits:"
    echo "  flood: { requests: $quota, window: 1h, algorithm: $algorithm, key: ip }"
    echo "routes: [ { match: { path_prefix: / }, upstream: demo, limits: [flood] } ]"
    [[ $mode == redis ]] && echo "redis: { url: \"redis://127.0.0.1:$redis_port\", timeout: 1s }"
  } >"$workdir/gw.yaml"
  redis-cli -p "$redis_port" flushall >/dev/null
  "$gateway_bin" --config "$workdir/gw.yaml" >"$workdir/gw.out" 2>&1 &
  local gw=$!
  wait_http "$port" || { cat "$workdir/gw.out" >&2; exit 1; }
  local -a args=(-t1 -c"$connections" --latency)
  wrk "${args[@]}" -d1s "http://127.0.0.1:$port/" >/dev/null  # warm-up; spends a small quota
  local calls0 ticks0 calls1 ticks1 hits checks calls
  calls0=$(script_calls)
  ticks0=$(cpu_ticks "$redis_pid")
  wrk "${args[@]}" -d"$duration" "http://127.0.0.1:$port/" >"$workdir/wrk.txt"
  calls1=$(script_calls)
  ticks1=$(cpu_ticks "$redis_pid")
  hits=$(metric "$admin" phlow_gateway_over_limit_cache_hits_total)
  checks=$(metric "$admin" phlow_gateway_redis_checks_total)
  calls=$(metric "$admin" phlow_gateway_redis_script_calls_total)
  kill "$gw"
  wait "$gw" 2>/dev/null || true
  awk -v calls=$((calls1 - calls0)) -v ticks=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" \
      -v hits="${hits:-0}" -v checks="${checks:-0}" -v gcalls="${calls:-0}" '
    /requests in/ { requests = $1 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Requests\/sec:/ { rps = $2 }
    $1 == "99%" { v = $2; unit = v; gsub(/[0-9.]/, "", unit); sub(/[a-z]+$/, "", v)
                  p99 = (unit == "us") ? v / 1000 : (unit == "s") ? v * 1000 : v }
    END { r = (requests > 0 ? requests : 1)
          printf "%s %s %.3f %.4f %.2f %d %.1f\n", rps, p99, non2xx / r, calls / r,
                 ticks / hz * 1e6 / r, hits, (gcalls > 0 ? checks / gcalls : 0) }' "$workdir/wrk.txt"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t1 -c$connections -d$duration; gateway threads: 1; limit by client IP, $algorithm"
printf '%-22s %9s %8s %7s %11s %12s %11s %12s\n' "" "req/s" "p99 ms" "429s" "calls/req" \
  "Redis us/req" "cache hits" "checks/call"
for mode in memory redis; do
  read -r rps p99 share calls cpu hits per_call < <(run "$mode" 10)
  printf '%-22s %9.0f %8.2f %6.0f%% %11s %12s %11s %12s\n' "flood, $mode" "$rps" "$p99" \
    "$(awk -v s="$share" 'BEGIN { print s * 100 }')" "$calls" "$cpu" "$hits" "$per_call"
done
read -r rps p99 share calls cpu hits per_call < <(run redis 1000000000)
printf '%-22s %9.0f %8.2f %6.0f%% %11s %12s %11s %12s\n' "allowed, redis" "$rps" "$p99" \
  "$(awk -v s="$share" 'BEGIN { print s * 100 }')" "$calls" "$cpu" "$hits" "$per_call"
