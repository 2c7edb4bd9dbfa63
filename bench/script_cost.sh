#!/usr/bin/env bash
# What one call of the check code costs Redis, in the shape compare.sh gives it: a
# batch of CHECKS checks of one client (one sliding_log key, 1e9 per minute, never
# reached), CALLS calls per round in a row with redis-benchmark. Prints the Redis time
# per call (INFO commandstats usec_per_call; it includes the commands the code runs)
# of this build's check code as a function (FCALL, what gateways use on Redis 7) and
# as a script (EVALSHA, Redis 5 and 6) and, given a git revision from before the
# function form (its check.lua a whole script), of that revision's script - alternating,
# ROUNDS rounds, each on an emptied key.
#
#   bench/script_cost.sh [REV]      # e.g. bench/script_cost.sh 6525fcd
#
# Environment: BUILD (the build directory whose limiter/generated/redis/*.lua to run;
# build, else build-dev), CHECKS (11), CALLS (20000), PIPELINE (redis-benchmark -P; 10),
# ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

checks=${CHECKS:-11}
calls=${CALLS:-20000}
pipeline=${PIPELINE:-10}
rounds=${ROUNDS:-3}
build=${BUILD:-build}
[[ -d $build/limiter/generated ]] || build=build-dev
generated=$build/limiter/generated/redis
[[ -f $generated/check_library.lua ]] || { echo "build first: $generated/check_library.lua" >&2; exit 2; }
require_redis_tools redis-benchmark

port=$(free_port)
start_redis "$port"
echo "redis-server $(redis-server --version | grep -o 'v=[0-9.]*'), machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$checks checks of one key per call, $calls calls per round, pipeline $pipeline"

# Per form: the command and what it names.
library=$(redis-cli -p "$port" -x FUNCTION LOAD <"$generated/check_library.lua")
names=(fcall evalsha)
declare -A command target
command[fcall]=FCALL
target[fcall]=${library/#phlow_/phlow_check_}
command[evalsha]=EVALSHA
target[evalsha]=$(redis-cli -p "$port" -x SCRIPT LOAD <"$generated/check_script.lua")
if [[ $# -ge 1 ]]; then
  git show "$1:limiter/src/redis/check.lua" >"$workdir/rev.lua"
  names+=(rev)
  command[rev]=EVALSHA
  target[rev]=$(redis-cli -p "$port" -x SCRIPT LOAD <"$workdir/rev.lua")
fi
limit="0 1000000000 60000 0 0"
for name in "${names[@]}"; do
  if [[ $(redis-cli -p "$port" "${command[$name]}" "${target[$name]}" 1 probe "" 1 1 "$limit" | wc -l) -ne 5 ]]; then
    echo "$name (${command[$name]} ${target[$name]}) decides no check: a revision after the function form?" >&2
    exit 1
  fi
done

keys=()
argv=("")
for _ in $(seq "$checks"); do
  keys+=(phlow:ratelimit:cost:hot)
  argv+=(1 1 "$limit")
done
for round in $(seq "$rounds"); do
  line="round $round"
  for name in "${names[@]}"; do
    redis-cli -p "$port" DEL phlow:ratelimit:cost:hot >/dev/null
    redis-cli -p "$port" CONFIG RESETSTAT >/dev/null
    redis-benchmark -p "$port" -n "$calls" -c 1 -P "$pipeline" -q \
      "${command[$name]}" "${target[$name]}" "$checks" "${keys[@]}" "${argv[@]}" >/dev/null 2>&1
    stats=$(redis-cli -p "$port" INFO commandstats | grep "^cmdstat_${command[$name],,}:")
    [[ $(grep -o 'failed_calls=[0-9]*' <<<"$stats") == failed_calls=0 ]] || { echo "$name: calls failed: $stats" >&2; exit 1; }
    line+="  $name $(grep -o 'usec_per_call=[0-9.]*' <<<"$stats" | cut -d= -f2) us/call"
  done
  echo "$line"
done
units=$(redis-cli -p "$port" ZSCORE phlow:ratelimit:cost:hot '#')
echo "the last round's key holds ${units#-} units ($((calls * checks)) expected)"
