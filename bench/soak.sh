#!/usr/bin/env bash
# Soak (not part of CI): a fixed high rate through phlow-gateway with Redis for
# DURATION seconds (default 600), sampling the gateway's RSS and open fds every
# INTERVAL seconds (30), with p50/p99/max latency per interval from phlow-load, and at
# the end checking that the allowed count of each identifier matches its limit exactly:
#   a: 500 per 1h, b: 3000 per 1h       -> exactly 500 and 3000 (the window outlasts the run)
#   w: 200 per 30s (sliding_log)        -> 200 per window: between 200*floor(D/30) and
#                                          200*(floor(D/30)+1) (the last window may start)
#   bulk: 1e9 per 1m (sliding_window)   -> every request allowed
# Redis holds exactly what was allowed for a and b (the total of each sliding_log key: minus
# the score of its member "#"). Exits 1 when a check fails.
#
#   bench/soak.sh [BUILD_DIR]        (default: <repo>/build; needs phlow-gateway,
#                                     phlow-demo-upstream and tests/phlow-load built)
# Environment: DURATION (s; 600), RATE (requests/s over all connections; 2000),
# CONNECTIONS (64), INTERVAL (s; 30), THREADS (gateway workers; 2), REDIS_TIMEOUT (the
# check deadline; 50ms: a shorter one makes checks miss it, to soak that path too),
# HOG (busy-looping processes run beside the soak, to starve it; 0).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
gateway_bin=$build/gateway/phlow-gateway
upstream_bin=$build/demo/phlow-demo-upstream
load_bin=$build/tests/phlow-load
duration=${DURATION:-600}
rate=${RATE:-2000}
connections=${CONNECTIONS:-64}
interval=${INTERVAL:-30}
threads=${THREADS:-2}
redis_timeout=${REDIS_TIMEOUT:-50ms}
hog=${HOG:-0}

for bin in "$gateway_bin" "$upstream_bin" "$load_bin"; do
  [[ -x $bin ]] || { echo "missing $bin: build phlow-gateway phlow-demo-upstream phlow-load" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "missing redis-server" >&2; exit 2; }
command -v redis-cli >/dev/null || { echo "missing redis-cli" >&2; exit 2; }

# workdir, pids (killed on exit), free_port, wait_http, wait_port
source "$repo/bench/lib.sh"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --loglevel warning >"$workdir/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done

"$upstream_bin" --listen 127.0.0.1:0 --threads 2 >"$workdir/upstream.log" 2>&1 &
pids+=($!)
upstream_port=$(wait_port "$workdir/upstream.log" 'listening on 127\.0\.0\.1:([0-9]+)')

cat >"$workdir/gateway.yaml" <<YAML
listen: "127.0.0.1:0"
threads: $threads
access_log: "off"
admin: { listen: "127.0.0.1:0" }
upstreams:
  app: { url: "http://127.0.0.1:$upstream_port" }
limits:
  hour_a: { requests: 500, window: 1h, key: "header:X-A" }
  hour_b: { requests: 3000, window: 1h, key: "header:X-B" }
  win30: { requests: 200, window: 30s, key: "header:X-W" }
  bulk: { requests: 1000000000, window: 1m, key: "header:X-Bulk", algorithm: sliding_window }
routes:
  - match: { path_prefix: / }
    upstream: app
    limits: [hour_a, hour_b, win30, bulk]
redis: { url: "redis://127.0.0.1:$redis_port", timeout: $redis_timeout }
YAML
REDIS_URL= "$gateway_bin" --config "$workdir/gateway.yaml" >"$workdir/gateway.log" 2>&1 &
gateway_pid=$!
pids+=($gateway_pid)
gateway_port=$(wait_port "$workdir/gateway.log" 'listening on [^ ]*:([0-9]+) with')
admin_port=$(wait_port "$workdir/gateway.log" 'admin listening on [^ ]*:([0-9]+)')
grep -q "Connected to Redis" "$workdir/gateway.log" || { echo "gateway is not on Redis" >&2; exit 1; }

sample() {
  local rss fds
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$gateway_pid/status")
  fds=$(ls "/proc/$gateway_pid/fd" | wc -l)
  echo "$1 $rss $fds"
}

echo "soak: ${duration}s at $rate requests/s over $connections connections, gateway pid $gateway_pid," \
  "Redis deadline $redis_timeout, $hog busy loops beside it"
for ((i = 0; i < hog; i++)); do
  (while :; do :; done) &
  pids+=($!)
done
sample 0 >"$workdir/samples"
"$load_bin" --port "$gateway_port" --connections "$connections" --rate "$rate" \
  --duration-s "$duration" --interval-s "$interval" \
  --request "X-A: a|X-Bulk: 1" --request "X-B: b|X-Bulk: 2" --request "X-W: w|X-Bulk: 3" \
  --request "X-Bulk: 4" >"$workdir/load.out" &
load_pid=$!
pids+=($load_pid)
for ((t = interval; t <= duration; t += interval)); do
  sleep "$interval"
  sample "$t" >>"$workdir/samples"
done
wait "$load_pid"
sleep 2  # closed client connections settle
sample end >>"$workdir/samples"

echo "gateway samples (t_s rss_kB fds):"
cat "$workdir/samples"
echo "latency per interval (start_s sent 2xx 429 5xx dropped p50_ms p99_ms max_ms):"
grep '^interval' "$workdir/load.out" | awk '{print $2, $4, $6, $8, $10, $12, $14, $16, $18}'
grep -E '^(set|total)' "$workdir/load.out"

allowed() { awk -v s="$1" '$1 == "set" && $2 == s {print $6}' "$workdir/load.out"; }
sent() { awk -v s="$1" '$1 == "set" && $2 == s {print $4}' "$workdir/load.out"; }
failures=0
check() {  # name actual low high
  if (($2 >= $3 && $2 <= $4)); then
    echo "ok   $1: $2 (expected $3..$4)"
  else
    echo "FAIL $1: $2 (expected $3..$4)"
    failures=$((failures + 1))
  fi
}
windows=$((duration / 30))
check "a allowed (500/1h)" "$(allowed 0)" 500 500
check "b allowed (3000/1h)" "$(allowed 1)" 3000 3000
check "w allowed (200/30s)" "$(allowed 2)" $((200 * windows)) $((200 * (windows + 1)))
check "bulk allowed" "$(allowed 3)" "$(sent 3)" "$(sent 3)"
log_total() { local s; s=$(redis-cli -p "$redis_port" zscore "$1" '#'); echo $(( -(${s:-0}) )); }
check "Redis total a" "$(log_total phlow:ratelimit:hour_a:a)" 500 500
check "Redis total b" "$(log_total phlow:ratelimit:hour_b:b)" 3000 3000
total=$(grep '^total' "$workdir/load.out")
check "5xx" "$(awk '{print $5}' <<<"$total")" 0 0
check "dropped" "$(awk '{print $7}' <<<"$total")" 0 0
# Checks that missed their deadline were decided in memory, and a fallback sent all
# checks there for a while: the counts above must hold all the same.
echo "Redis checks that failed, and fallbacks to memory (from /metrics):"
curl -fsS "http://127.0.0.1:$admin_port/metrics" |
  grep -E '^phlow_gateway_redis_(errors_total|fallback_transitions_total)' | sed 's/^/  /'
exit $((failures > 0))
