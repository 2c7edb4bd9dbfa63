#!/usr/bin/env bash
# What one call of the check script costs Redis, in the shape compare.sh gives it: a
# batch of CHECKS checks of one client (one sliding_log key, 1e9 per minute, never
# reached), CALLS calls per round in a row with redis-benchmark. Prints the Redis time
# per call (INFO commandstats: EVALSHA usec_per_call; it includes the commands the
# script runs) of this tree's script and, given a git revision, of that revision's -
# alternating, ROUNDS rounds, each on an emptied key.
#
#   bench/script_cost.sh [REV]      # e.g. bench/script_cost.sh HEAD~1
#
# Environment: CHECKS (11), CALLS (20000), PIPELINE (redis-benchmark -P; 10), ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

checks=${CHECKS:-11}
calls=${CALLS:-20000}
pipeline=${PIPELINE:-10}
rounds=${ROUNDS:-3}
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install redis-server redis-tools)" >&2; exit 2; }
done

cp limiter/src/redis/check.lua "$workdir/this.lua"
names=(this)
if [[ $# -ge 1 ]]; then
  git show "$1:limiter/src/redis/check.lua" >"$workdir/rev.lua"
  names=(rev this)
fi
port=$(free_port)
start_redis "$port"
echo "redis-server $(redis-server --version | grep -o 'v=[0-9.]*'), machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$checks checks of one key per call, $calls calls per round, pipeline $pipeline"

declare -A sha params
for name in "${names[@]}"; do
  sha[$name]=$(redis-cli -p "$port" -x SCRIPT LOAD <"$workdir/$name.lua")
  # Older scripts read a sixth field per limit (a weighted flag): the form that decides.
  for p in "0 1000000000 60000 0 0" "0 1000000000 60000 0 0 0"; do
    if [[ $(redis-cli -p "$port" EVALSHA "${sha[$name]}" 1 probe "" 1 1 "$p" | wc -l) -eq 5 ]]; then
      params[$name]=$p
      break
    fi
  done
  [[ -n ${params[$name]:-} ]] || { echo "the $name script decides no check" >&2; exit 1; }
done

keys=()
for _ in $(seq "$checks"); do keys+=(phlow:ratelimit:cost:hot); done
for round in $(seq "$rounds"); do
  line="round $round"
  for name in "${names[@]}"; do
    argv=("")
    for _ in $(seq "$checks"); do argv+=(1 1 "${params[$name]}"); done
    redis-cli -p "$port" DEL phlow:ratelimit:cost:hot >/dev/null
    redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
    redis-benchmark -p "$port" -n "$calls" -c 1 -P "$pipeline" -q \
      EVALSHA "${sha[$name]}" "$checks" "${keys[@]}" "${argv[@]}" >/dev/null 2>&1
    usec=$(redis-cli -p "$port" INFO commandstats | grep '^cmdstat_evalsha:' | grep -o 'usec_per_call=[0-9.]*' | cut -d= -f2)
    failed=$(redis-cli -p "$port" INFO commandstats | grep '^cmdstat_evalsha:' | grep -o 'failed_calls=[0-9]*' | cut -d= -f2)
    [[ $failed == 0 ]] || { echo "$name: $failed calls failed" >&2; exit 1; }
    line+="  $name ${usec} us/call"
  done
  echo "$line"
done
units=$(redis-cli -p "$port" ZSCORE phlow:ratelimit:cost:hot '#')
echo "the last round's key holds ${units#-} units ($((calls * checks)) expected)"
