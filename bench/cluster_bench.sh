#!/usr/bin/env bash
# Redis topologies side by side: one phlow-gateway (threads: 1) in front of the demo
# upstream, deciding in (a) one standalone redis-server and (b) a 3-master Redis
# Cluster (no replicas), with 1 and with 3 limits per request (the 3 limits' keys are
# spread over the cluster's slots). Limits are high: nothing is rejected. Prints
# req/s and p99 from wrk, and Redis script calls per request (FCALL + EVALSHA + EVAL
# summed over every node's INFO commandstats, divided by the requests wrk completed).
#
#   bench/cluster_bench.sh [BUILD_DIR]        (default: <repo>/build)
#
# Needs wrk (PHLOW_BENCH_DEPS=1 scripts/install-deps.sh), redis-server and redis-cli.
# Environment: DURATION (wrk -d; 10s), CONNECTIONS (wrk -c; 50).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
upstream_bin=$build/demo/phlow-demo-upstream
gateway_bin=$build/gateway/phlow-gateway
duration=${DURATION:-10s}
connections=${CONNECTIONS:-50}
# workdir, pids (killed on exit), free_port, wait_http, wait_port, require_bench_tools,
# start_upstream, start_redis
source "$repo/bench/lib.sh"
require_bench_tools

# Script calls (FCALL + EVALSHA + EVAL) so far, summed over the ports given.
script_calls() {
  local total=0 port n
  for port in "$@"; do
    n=$(redis-cli -p "$port" info commandstats |
      awk -F'[=,:]' '/^cmdstat_(fcall|evalsha|eval):/ { s += $3 } END { print s + 0 }')
    total=$((total + n))
  done
  echo "$total"
}

start_upstream

standalone=$(free_port)
start_redis "$standalone"
cluster=()
for _ in 1 2 3; do
  while :; do  # the cluster bus listens on port + 10000: both below the ephemeral range
    port=$((12000 + RANDOM % 10000))
    ! ss -Htan "sport = :$port or sport = :$((port + 10000))" | grep -q . && break
  done
  start_redis "$port" --cluster-enabled yes --cluster-config-file "$workdir/nodes-$port.conf"
  cluster+=("$port")
done
redis-cli --cluster create "${cluster[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 200); do
  redis-cli -p "${cluster[0]}" cluster info | grep -q cluster_state:ok && break
  sleep 0.05
done

# Runs the gateway on Redis URL $1 with $2 limits; prints "RPS P99_MS CALLS_PER_REQUEST".
run() {
  local url=$1 limits=$2 port admin names="" i
  shift 2
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
    for i in $(seq "$limits"); do
      echo "  bench$i: { requests: 100000000, window: 1m, key: \"header:X-Bench-Key\" }"
      names+="${names:+, }bench$i"
    done
    echo "routes: [ { match: { path_prefix: / }, upstream: demo, limits: [$names] } ]"
    echo "redis: { url: \"$url\", timeout: 1s }"
  } >"$workdir/gw.yaml"
  "$gateway_bin" --config "$workdir/gw.yaml" >"$workdir/gw.out" 2>&1 &
  local gw=$!
  wait_http "$port" || { cat "$workdir/gw.out" >&2; exit 1; }
  local -a args=(-t1 -c"$connections" -H "X-Bench-Key: bench-key-1" --latency)
  wrk "${args[@]}" -d1s "http://127.0.0.1:$port/" >/dev/null
  local before after
  before=$(script_calls "$@")
  wrk "${args[@]}" -d"$duration" "http://127.0.0.1:$port/" >"$workdir/wrk.txt"
  after=$(script_calls "$@")
  kill "$gw"
  wait "$gw" 2>/dev/null || true
  awk -v calls=$((after - before)) '
    /requests in/ { requests = $1 }
    /Requests\/sec:/ { rps = $2 }
    $1 == "99%" { v = $2; unit = v; gsub(/[0-9.]/, "", unit); sub(/[a-z]+$/, "", v)
                  p99 = (unit == "us") ? v / 1000 : (unit == "s") ? v * 1000 : v }
    END { printf "%s %s %.2f\n", rps, p99, (requests > 0 ? calls / requests : 0) }' "$workdir/wrk.txt"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t1 -c$connections -d$duration; gateway threads: 1; no request rejected"
printf '%-34s %10s %10s %14s\n' "" "req/s" "p99 ms" "calls/request"
for limits in 1 3; do
  read -r rps p99 calls < <(run "redis://127.0.0.1:$standalone" "$limits" "$standalone")
  printf '%-34s %10.0f %10.2f %14s\n' "standalone, $limits limit(s)" "$rps" "$p99" "$calls"
  read -r rps p99 calls < <(run "redis+cluster://127.0.0.1:${cluster[0]}" "$limits" "${cluster[@]}")
  printf '%-34s %10.0f %10.2f %14s\n' "cluster (3 masters), $limits limit(s)" "$rps" "$p99" "$calls"
done
