#!/usr/bin/env bash
# Two gateway binaries side by side under the same load, alternating, to tell what a
# change did to the gateway's own CPU per request - which compare.sh's req/s ratios,
# moving 10-30% between runs on a shared 2-core machine, cannot show for a few percent.
#
#   bench/cpu_ab.sh OLD_BIN NEW_BIN      # e.g. a worktree's build of the base commit
#   ROUNDS=4 DURATION=6s CONNECTIONS=50 REDIS=1 bench/cpu_ab.sh OLD_BIN NEW_BIN
#
# Each gateway (threads: 1, access log off, one sliding_log limit by client IP that
# nothing reaches; with REDIS=1 each has its own redis-server) proxies to the demo
# upstream. Per round and binary: wrk -t1 -cCONNECTIONS for DURATION after 1 s of
# warm-up; printed: req/s and the gateway process' user and system CPU per request
# in microseconds (utime/stime from /proc/PID/stat over the run); with REDIS=1 also its
# redis-server's CPU (user + system) per request.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

[[ $# -eq 2 ]] || { echo "usage: bench/cpu_ab.sh OLD_BIN NEW_BIN" >&2; exit 2; }
old_bin=$1
new_bin=$2
gateway_bin=$new_bin
upstream_bin=${UPSTREAM_BIN:-build/demo/phlow-demo-upstream}
[[ -x $upstream_bin ]] || upstream_bin=build-dev/demo/phlow-demo-upstream
[[ -x $old_bin ]] || { echo "not a binary: $old_bin" >&2; exit 2; }
require_bench_tools
rounds=${ROUNDS:-4}
duration=${DURATION:-6s}
connections=${CONNECTIONS:-50}
ticks=$(getconf CLK_TCK)

start_upstream

start_gateway() {  # start_gateway NAME BIN -> port in ${NAME}_port, pid in ${NAME}_pid
  local name=$1 bin=$2 port admin redis_url=""
  port=$(free_port)
  admin=$(free_port)
  if [[ ${REDIS:-0} == 1 ]]; then
    local rport
    rport=$(free_port)
    start_redis "$rport"
    printf -v "${name}_redis_pid" '%s' "$redis_pid"
    redis_url="redis://127.0.0.1:$rport/0"
  fi
  write_gateway_config "$workdir/$name.yaml" "$port" "$admin" "$redis_url"
  "$bin" --config "$workdir/$name.yaml" >"$workdir/$name.log" 2>&1 &
  pids+=($!)
  printf -v "${name}_pid" '%s' "$!"
  printf -v "${name}_port" '%s' "$port"
  wait_http "$port" || { echo "$name did not start:" >&2; cat "$workdir/$name.log" >&2; exit 1; }
}

cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

start_gateway old "$old_bin"
start_gateway new "$new_bin"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c$connections -d$duration; REDIS=${REDIS:-0}"
printf '%-6s %-4s %10s %12s %12s %14s\n' round gw req/s "user us/req" "sys us/req" "redis us/req"
for round in $(seq "$rounds"); do
  for name in old new; do
    port_var=${name}_port
    pid_var=${name}_pid
    wrk -t1 -c"$connections" -d1s "http://127.0.0.1:${!port_var}/" >/dev/null
    redis_var=${name}_redis_pid
    read -r u0 s0 < <(cpu_ticks "${!pid_var}")
    r0=0 r1=0
    if [[ -n ${!redis_var:-} ]]; then read -r ru rs < <(cpu_ticks "${!redis_var}"); r0=$((ru + rs)); fi
    out=$(wrk -t1 -c"$connections" -d"$duration" "http://127.0.0.1:${!port_var}/")
    read -r u1 s1 < <(cpu_ticks "${!pid_var}")
    if [[ -n ${!redis_var:-} ]]; then read -r ru rs < <(cpu_ticks "${!redis_var}"); r1=$((ru + rs)); fi
    requests=$(awk '/requests in/{print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
    awk -v r="$round" -v n="$name" -v rps="$rps" -v q="$requests" -v du=$((u1 - u0)) -v ds=$((s1 - s0)) -v dr=$((r1 - r0)) -v t="$ticks" \
      'BEGIN { printf "%-6s %-4s %10.0f %12.2f %12.2f %14s\n", r, n, rps, du * 1e6 / t / q, ds * 1e6 / t / q, dr ? sprintf("%.2f", dr * 1e6 / t / q) : "-" }'
    if grep -Eq 'Non-2xx|Socket errors' <<<"$out"; then echo "  $name: $(grep -E 'Non-2xx|Socket errors' <<<"$out")"; fi
  done
done
