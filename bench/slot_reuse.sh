#!/usr/bin/env bash
# Does a client that calls again the moment its answer ends find its concurrency slot
# free, when the next call is checked by another worker or another gateway? A slot held
# in Redis is given back by a ZREM on the releasing worker's own Redis connection, sent
# before the response's last bytes go out; the next call may be checked over another
# connection. This counts how often that next call is refused (429) anyway.
#
# One concurrency limit of 1 slot by client IP (every call here comes from 127.0.0.1),
# so any 429 is a call refused while the client had nothing in flight:
#   workers    one gateway with threads: 2; wrk -t1 -c1 with "Connection: close", so
#              that each call is a new connection, spread over both workers by
#              SO_REUSEPORT; then the same on one keep-alive connection (one worker)
#   control    two clients at once on the first gateway (wrk -c2), which must see
#              429s: else the limit is not in force and the script says so (exit 1)
#   gateways   two gateways (threads: 1 each) sharing the Redis; one client calling
#              them in turn, a new connection per call (python3's http.client)
#
#   bench/slot_reuse.sh [BUILD_DIR]        (default: <repo>/build)
#
# Environment: DURATION (wrk -d; 5s), CALLS (calls of the two-gateway client; 5000).
# Prints calls and 429s per case; exits 1 when a case could not run or the control
# saw no 429.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
upstream_bin=$build/demo/phlow-demo-upstream
gateway_bin=${GATEWAY_BIN:-$build/gateway/phlow-gateway}
duration=${DURATION:-5s}
calls=${CALLS:-5000}
# workdir, pids (killed on exit), free_port, wait_http, require_bench_tools,
# start_upstream, start_redis
source "$repo/bench/lib.sh"
require_bench_tools
command -v python3 >/dev/null || { echo "missing python3" >&2; exit 2; }
start_upstream
redis_port=$(free_port)
start_redis "$redis_port"

# start_gateway THREADS: a gateway on a free port (in gw_port), sharing the Redis. Not
# in a $(...) subshell: its pid must reach this shell's pids.
start_gateway() {
  local threads=$1 port file
  port=$(free_port)
  file=$workdir/gw-$port.yaml
  cat >"$file" <<EOF
listen: "127.0.0.1:$port"
threads: $threads
access_log: "off"
log_level: warn
admin: { listen: "127.0.0.1:$(free_port)" }
redis: { url: "redis://127.0.0.1:$redis_port", timeout: 1s }
upstreams: { demo: { url: "http://127.0.0.1:$upstream_port" } }
limits:
  inflight: { requests: 1, window: 10s, key: ip, algorithm: concurrency }
routes: [ { match: { path_prefix: / }, upstream: demo, limits: [inflight] } ]
EOF
  "$gateway_bin" --config "$file" >"$workdir/gw-$port.out" 2>&1 &
  pids+=($!)
  wait_http "$port" || { cat "$workdir/gw-$port.out" >&2; exit 1; }
  gw_port=$port
}

# wrk_case PORT CONNECTIONS [wrk args...]: prints "CALLS REFUSED" (wrk counts 429 as
# non-2xx).
wrk_case() {
  local port=$1 connections=$2
  shift 2
  wrk -t1 -c"$connections" -d"$duration" "$@" "http://127.0.0.1:$port/" >"$workdir/wrk.txt"
  awk '/requests in/ { n = $1 } /Non-2xx or 3xx responses:/ { bad = $NF }
       END { printf "%d %d\n", n, bad + 0 }' "$workdir/wrk.txt"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "one concurrency limit of 1 slot by client IP, in Redis; one client calling one call after another"
printf '%-58s %8s %6s\n' "" "calls" "429s"

start_gateway 2
port=$gw_port
read -r n bad < <(wrk_case "$port" 1 -H "Connection: close")
printf '%-58s %8d %6d\n' "one gateway, 2 workers, a new connection per call (wrk)" "$n" "$bad"
read -r n bad < <(wrk_case "$port" 1)
printf '%-58s %8d %6d\n' "one gateway, 2 workers, one keep-alive connection (wrk)" "$n" "$bad"
# The control: two calls at once must be refused often, or this script counts nothing.
read -r n bad < <(wrk_case "$port" 2)
printf '%-58s %8d %6d\n' "control: two clients at once (wrk -c2; 429s expected)" "$n" "$bad"
if ((bad == 0)); then
  echo "the control saw no 429: the limit is not applied, the counts above prove nothing" >&2
  exit 1
fi

start_gateway 1
port_a=$gw_port
start_gateway 1
port_b=$gw_port
read -r n bad < <(python3 - "$port_a" "$port_b" "$calls" <<'EOF'
import http.client, sys
ports, calls = [int(sys.argv[1]), int(sys.argv[2])], int(sys.argv[3])
refused = 0
for i in range(calls):
    c = http.client.HTTPConnection("127.0.0.1", ports[i % 2], timeout=10)
    c.request("GET", "/", headers={"Connection": "close"})
    r = c.getresponse()
    r.read()
    refused += r.status == 429
    c.close()
print(calls, refused)
EOF
)
printf '%-58s %8d %6d\n' "two gateways in turn, a new connection per call (python3)" "$n" "$bad"
