#!/usr/bin/env bash
# Compares phlow's Redis-backed decisions/s with redis-benchmark running the same
# check code (FCALL of its function library) on the same private redis-server
# (loopback, no persistence).
#
#   bench/run_redis_bench.sh [BUILD_DIR]     (default: <repo>/build)
#
# Environment: SECONDS_PER_RUN (phlow, per K; default 3), KEYS (identifiers; 5000),
# REQUESTS (redis-benchmark -n; 200000).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath "${1:-$repo/build}")
cd "$repo"
source bench/lib.sh

bench_bin=$build/bench/phlow_redis_bench
library=$build/limiter/generated/redis/check_library.lua
seconds=${SECONDS_PER_RUN:-3}
keys=${KEYS:-5000}
requests=${REQUESTS:-200000}

require_redis_tools redis-benchmark
[[ -x $bench_bin ]] || { echo "missing $bench_bin: build with PHLOW_BUILD_BENCH=ON" >&2; exit 2; }

port=$(free_port)
start_redis "$port"
echo "redis-server $(redis-server --version | grep -o 'v=[0-9.]*') on 127.0.0.1:$port (pid $redis_pid)"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# The check code as the gateway calls it on Redis 7: FCALL of its function library.
name=$(redis-cli -p "$port" -x FUNCTION LOAD <"$library")
[[ $name =~ ^phlow_[0-9a-f]{16}$ ]] || { echo "FUNCTION LOAD failed: $name" >&2; exit 1; }
function=${name/#phlow_/phlow_check_}
# One call by hand: the arguments below must produce a real decision, not an error.
reply=$(redis-cli -p "$port" FCALL "$function" 1 phlow:ratelimit:bench:probe "" 1 1 "0 1000000 60000 0 0")
[[ $(wc -l <<<"$reply") -eq 5 ]] || { echo "check function failed: $reply" >&2; exit 1; }

echo
echo "== redis-benchmark -P 16 -c 16 -n $requests -r $keys FCALL of check.lua's function (sliding_log 1M/60s)"
redis-benchmark -p "$port" -P 16 -c 16 -n "$requests" -r "$keys" -q \
  FCALL "$function" 1 'phlow:ratelimit:bench:__rand_int__' "" 1 1 "0 1000000 60000 0 0" \
  | tr '\r' '\n' | grep 'requests per second' | tail -1 | tee "$workdir/rb.txt"  || true
rb_rate=$(grep -o '[0-9.]* requests per second' "$workdir/rb.txt" | cut -d' ' -f1)
[[ -n $rb_rate ]] || { echo "could not read the redis-benchmark rate" >&2; exit 1; }
rb_keys=$(redis-cli -p "$port" --scan --pattern 'phlow:ratelimit:bench:0*' | wc -l)
echo "redis-benchmark: the function wrote $rb_keys distinct keys (so its runs were real decisions)"

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
