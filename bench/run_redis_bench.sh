#!/usr/bin/env bash
# Compares phlow's Redis-backed decisions/s with redis-benchmark running the same
# check script on the same private redis-server (loopback, no persistence).
#
#   bench/run_redis_bench.sh [BUILD_DIR]     (default: <repo>/build)
#
# Environment: SECONDS_PER_RUN (phlow, per K; default 3), KEYS (identifiers; 5000),
# REQUESTS (redis-benchmark -n; 200000).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
bench_bin=$build/bench/phlow_redis_bench
script=$repo/limiter/src/redis/check.lua
seconds=${SECONDS_PER_RUN:-3}
keys=${KEYS:-5000}
requests=${REQUESTS:-200000}

for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install redis-server redis-tools)" >&2; exit 2; }
done
[[ -x $bench_bin ]] || { echo "missing $bench_bin: build with PHLOW_BUILD_BENCH=ON" >&2; exit 2; }

workdir=$(mktemp -d)
redis_pid=""
cleanup() {
  if [[ -n $redis_pid ]]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

# Starts redis-server on a random free loopback port; retries when the port is taken.
start_redis() {
  local attempt
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 40000))
    redis-cli -p "$port" ping >/dev/null 2>&1 && continue  # something listens there
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
      --daemonize no --loglevel warning --dir "$workdir" >"$workdir/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 50); do
      if [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]]; then return 0; fi
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  done
  echo "could not start redis-server" >&2
  return 1
}

start_redis
echo "redis-server $(redis-server --version | grep -o 'v=[0-9.]*') on 127.0.0.1:$port (pid $redis_pid)"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

sha=$(redis-cli -p "$port" -x SCRIPT LOAD <"$script")
[[ $sha =~ ^[0-9a-f]{40}$ ]] || { echo "SCRIPT LOAD failed: $sha" >&2; exit 1; }
# One call by hand: the arguments below must produce a real decision, not an error.
reply=$(redis-cli -p "$port" EVALSHA "$sha" 1 phlow:ratelimit:bench:probe "" 1 1 "0 1000000 60000 0 0")
[[ $(wc -l <<<"$reply") -eq 5 ]] || { echo "check script failed: $reply" >&2; exit 1; }

echo
echo "== redis-benchmark -P 16 -c 16 -n $requests -r $keys EVALSHA check.lua (sliding_log 1M/60s)"
redis-benchmark -p "$port" -P 16 -c 16 -n "$requests" -r "$keys" -q \
  EVALSHA "$sha" 1 'phlow:ratelimit:bench:__rand_int__' "" 1 1 "0 1000000 60000 0 0" \
  | tr '\r' '\n' | grep 'requests per second' | tail -1 | tee "$workdir/rb.txt"  || true
rb_rate=$(grep -o '[0-9.]* requests per second' "$workdir/rb.txt" | cut -d' ' -f1)
[[ -n $rb_rate ]] || { echo "could not read the redis-benchmark rate" >&2; exit 1; }
rb_keys=$(redis-cli -p "$port" --scan --pattern 'phlow:ratelimit:bench:0*' | wc -l)
echo "redis-benchmark: the script wrote $rb_keys distinct keys (so its runs were real decisions)"

echo
echo "== phlow_redis_bench: 1 io thread, 1 connection, ${seconds}s per K, $keys identifiers"
status=0
"$bench_bin" "redis://127.0.0.1:$port" --seconds "$seconds" --inflight 16,64 --keys "$keys" \
  | tee "$workdir/phlow.txt" || status=$?
rate_for() { grep "^inflight=$1 " "$workdir/phlow.txt" | grep -o 'rate=[0-9]*' | cut -d= -f2; }
phlow16=$(rate_for 16)
phlow64=$(rate_for 64)
[[ -n $phlow16 && -n $phlow64 ]] || { echo "phlow_redis_bench failed (status $status)" >&2; exit 1; }

echo
echo "== summary (target: phlow / redis-benchmark >= 0.5)"
awk -v rb="$rb_rate" -v p16="$phlow16" -v p64="$phlow64" 'BEGIN {
  printf "redis-benchmark          %10.0f checks/s\n", rb
  printf "phlow K=16               %10.0f decisions/s  ratio %.2f  %s\n", p16, p16 / rb, (p16 / rb >= 0.5 ? "met" : "NOT met")
  printf "phlow K=64               %10.0f decisions/s  ratio %.2f  %s\n", p64, p64 / rb, (p64 / rb >= 0.5 ? "met" : "NOT met")
}'
if ((status != 0)); then
  echo "phlow_redis_bench: some decisions did not come from Redis (see 'other=' above)" >&2
fi
exit "$status"
