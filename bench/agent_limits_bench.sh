#!/usr/bin/env bash
# What the limits for agent workloads cost per request: one phlow-gateway (threads: 1)
# in front of the demo upstream, in memory and with its own redis-server, nothing
# rejected (limits far above what the run reaches):
#   plain        one sliding_log limit by client IP (the baseline)
#   concurrency  one concurrency limit by client IP: a slot taken in the check and
#                given back after the response (in Redis: the script call plus a ZREM)
#   cost         one sliding_log limit with cost: "header:X-Phlow-Cost" (every request
#                weighs 3 units; in Redis the weighted log keeps a total member)
# Prints req/s, p99, Redis commands per request (INFO commandstats: the gateway's
# commands and those its scripts run inside Redis) and Redis CPU per request (the redis-server process's user+system time
# over the run divided by the requests wrk completed).
#
#   bench/agent_limits_bench.sh [BUILD_DIR]        (default: <repo>/build)
#
# Needs wrk (PHLOW_BENCH_DEPS=1 scripts/install-deps.sh), redis-server and redis-cli.
# Environment: DURATION (wrk -d; 8s), CONNECTIONS (wrk -c; 50).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
upstream_bin=$build/demo/phlow-demo-upstream
gateway_bin=${GATEWAY_BIN:-$build/gateway/phlow-gateway}
duration=${DURATION:-8s}
connections=${CONNECTIONS:-50}
# workdir, pids (killed on exit), free_port, wait_http, wait_port, require_bench_tools,
# start_upstream, start_redis
source "$repo/bench/lib.sh"
require_bench_tools
start_upstream
redis_port=$(free_port)
start_redis "$redis_port"

# Every command Redis ran, but the ones this script sends itself (INFO, FLUSHALL).
commands() {
  redis-cli -p "$redis_port" info commandstats |
    awk -F'[=,:]' '/^cmdstat_/ && !/^cmdstat_(info|flushall|ping)/ { s += $3 } END { print s + 0 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# run MODE(memory|redis) KIND(plain|concurrency|cost): prints
# "RPS P99_MS NON2XX_SHARE COMMANDS_PER_REQUEST REDIS_US_PER_REQUEST"
run() {
  local mode=$1 kind=$2 port limit
  port=$(free_port)
  case $kind in
    plain) limit="{ requests: 1000000000, window: 1h, key: ip }" ;;
    concurrency) limit="{ requests: 100000, window: 1m, key: ip, algorithm: concurrency }" ;;
    cost) limit="{ requests: 1000000000, window: 1h, key: ip, cost: \"header:X-Phlow-Cost\" }" ;;
  esac
  {
    echo "listen: \"127.0.0.1:$port\""
    echo "threads: 1"
    echo "access_log: \"off\""
    echo "log_level: warn"
    echo "admin: { listen: \"127.0.0.1:$(free_port)\" }"
    echo "upstreams: { demo: { url: \"http://127.0.0.1:$upstream_port\" } }"
    echo "limits:"
    echo "  bench: $limit"
    echo "routes: [ { match: { path_prefix: / }, upstream: demo, limits: [bench] } ]"
    [[ $mode == redis ]] && echo "redis: { url: \"redis://127.0.0.1:$redis_port\", timeout: 1s }"
  } >"$workdir/gw.yaml"
  redis-cli -p "$redis_port" flushall >/dev/null
  "$gateway_bin" --config "$workdir/gw.yaml" >"$workdir/gw.out" 2>&1 &
  local gw=$!
  wait_http "$port" || { cat "$workdir/gw.out" >&2; exit 1; }
  local -a args=(-t1 -c"$connections" --latency -H "X-Phlow-Cost: 3")
  wrk "${args[@]}" -d1s "http://127.0.0.1:$port/" >/dev/null  # warm-up
  local commands0 ticks0 commands1 ticks1
  commands0=$(commands)
  ticks0=$(cpu_ticks "$redis_pid")
  wrk "${args[@]}" -d"$duration" "http://127.0.0.1:$port/" >"$workdir/wrk.txt"
  commands1=$(commands)
  ticks1=$(cpu_ticks "$redis_pid")
  kill "$gw"
  wait "$gw" 2>/dev/null || true
  awk -v cmds=$((commands1 - commands0)) -v ticks=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" '
    /requests in/ { requests = $1 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Requests\/sec:/ { rps = $2 }
    $1 == "99%" { v = $2; unit = v; gsub(/[0-9.]/, "", unit); sub(/[a-z]+$/, "", v)
                  p99 = (unit == "us") ? v / 1000 : (unit == "s") ? v * 1000 : v }
    END { r = (requests > 0 ? requests : 1)
          printf "%s %s %.3f %.3f %.2f\n", rps, p99, non2xx / r, cmds / r, ticks / hz * 1e6 / r }' \
    "$workdir/wrk.txt"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t1 -c$connections -d$duration; gateway threads: 1; one limit by client IP, nothing rejected"
printf '%-20s %9s %8s %7s %13s %13s\n' "" "req/s" "p99 ms" "non-2xx" "Redis cmd/req" "Redis us/req"
for mode in memory redis; do
  for kind in plain concurrency cost; do
    read -r rps p99 share cmds cpu < <(run "$mode" "$kind")
    printf '%-20s %9.0f %8.2f %6.1f%% %13s %13s\n' "$kind, $mode" "$rps" "$p99" \
      "$(awk -v s="$share" 'BEGIN { print s * 100 }')" "$cmds" "$cpu"
  done
done
