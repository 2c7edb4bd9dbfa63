#!/usr/bin/env bash
# Proxy load benchmark: requests/s and p99 of wrk against
#   (a) phlow-demo-upstream directly,
#   (b) nginx with two limit_req zones (per IP, per X-Bench-Key) and upstream keepalive,
#   (c) phlow-gateway, in memory, two limits per request (per IP, per X-Bench-Key),
# all on one thread/worker (WORKERS=2: two nginx worker processes against two gateway
# threads, and an upstream of two threads), with limits so high that nothing is
# rejected: the cost of proxying plus two limit decisions, not of rejecting.
#
#   bench/gateway_bench.sh [BUILD_DIR]        (default: <repo>/build)
#   WORKERS=2 bench/gateway_bench.sh build
#
# On a 2-core machine wrk, the upstream and the proxy share the same cores whatever
# WORKERS is: a second worker shows what the proxy does with the CPU the others leave,
# not how it scales on cores of its own.
#
# Installs nothing. Needs wrk and nginx: PHLOW_BENCH_DEPS=1 scripts/install-deps.sh
# (adds wrk and nginx-light). Without build/gateway/phlow-gateway, (c) is skipped.
# Environment: DURATION (wrk -d per run; 10s), CONNECTIONS (wrk -c; 50),
# WARMUP (seconds of unmeasured load before each run; 1), WORKERS (nginx
# worker_processes, gateway threads and upstream threads; 1), WRK_THREADS (wrk -t; 1).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$repo/build}
upstream_bin=$build/demo/phlow-demo-upstream
gateway_bin=$build/gateway/phlow-gateway
duration=${DURATION:-10s}
connections=${CONNECTIONS:-50}
warmup=${WARMUP:-1}
workers=${WORKERS:-1}
wrk_threads=${WRK_THREADS:-1}
[[ $workers =~ ^[1-9][0-9]*$ ]] || { echo "WORKERS: a whole number from 1, not '$workers'" >&2; exit 2; }
[[ $wrk_threads =~ ^[1-9][0-9]*$ ]] || { echo "WRK_THREADS: a whole number from 1, not '$wrk_threads'" >&2; exit 2; }

for tool in wrk nginx curl ss; do
  command -v "$tool" >/dev/null || {
    echo "missing $tool: run PHLOW_BENCH_DEPS=1 scripts/install-deps.sh" >&2
    exit 2
  }
done
[[ -x $upstream_bin ]] || { echo "missing $upstream_bin: build first" >&2; exit 2; }

# workdir, pids (killed on exit), free_port, wait_http, wait_port
source "$repo/bench/lib.sh"

# Runs wrk against port $1 and prints "RPS P99_MS" (also keeps wrk's output).
measure() {
  local port=$1 name=$2 url="http://127.0.0.1:$1/"
  local -a args=(-t"$wrk_threads" -c"$connections" -H "X-Bench-Key: bench-key-1" --latency)
  if ((warmup > 0)); then wrk "${args[@]}" -d"${warmup}s" "$url" >/dev/null; fi
  timeout 60 wrk "${args[@]}" -d"$duration" "$url" >"$workdir/$name.txt"
  awk '
    /Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    $1 == "99%" {
      v = $2; unit = v; gsub(/[0-9.]/, "", unit); sub(/[a-z]+$/, "", v)
      p99 = (unit == "us") ? v / 1000 : (unit == "s") ? v * 1000 : v
    }
    END { printf "%s %s %s\n", rps, p99, (bad == "" ? 0 : bad) }' "$workdir/$name.txt"
}

report() {  # name rps p99 non2xx
  printf '%-32s %12.0f req/s   p99 %8.2f ms' "$1" "$2" "$3"
  if [[ $4 != 0 ]]; then printf '   (%s non-2xx: NOT a clean run)' "$4"; fi
  printf '\n'
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk -t$wrk_threads -c$connections -d$duration --latency, header X-Bench-Key on every request;"
echo "$workers worker(s) each: nginx worker_processes, gateway threads, upstream threads"
echo

# --- the upstream: WORKERS threads ---------------------------------------------------
"$upstream_bin" --listen 127.0.0.1:0 --threads "$workers" >"$workdir/upstream.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  grep -q '^listening on ' "$workdir/upstream.out" && break
  sleep 0.05
done
upstream_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$workdir/upstream.out")
[[ -n $upstream_port ]] || { echo "phlow-demo-upstream did not start" >&2; exit 1; }

read -r direct_rps direct_p99 direct_bad < <(measure "$upstream_port" direct)
report "(a) direct to upstream" "$direct_rps" "$direct_p99" "$direct_bad"

# --- nginx: WORKERS workers, two limit_req zones, upstream keepalive ---------------
nginx_port=$(free_port)
mkdir -p "$workdir/nginx"
user_line=""
if [[ $(id -u) -eq 0 ]]; then user_line="user $(id -un) $(id -gn);"; fi
cat >"$workdir/nginx/nginx.conf" <<EOF
$user_line
worker_processes $workers;
pid $workdir/nginx/nginx.pid;
error_log $workdir/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $workdir/nginx/body;
  proxy_temp_path $workdir/nginx/proxy;
  fastcgi_temp_path $workdir/nginx/fastcgi;
  uwsgi_temp_path $workdir/nginx/uwsgi;
  scgi_temp_path $workdir/nginx/scgi;
  limit_req_zone \$binary_remote_addr zone=a:10m rate=1000000r/s;
  limit_req_zone \$http_x_bench_key zone=b:10m rate=1000000r/s;
  upstream demo {
    server 127.0.0.1:$upstream_port;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      limit_req zone=a burst=1000000 nodelay;
      limit_req zone=b burst=1000000 nodelay;
      proxy_pass http://demo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
nginx -p "$workdir/nginx" -c "$workdir/nginx/nginx.conf" -e "$workdir/nginx/error.log" \
  -g 'daemon off;' >"$workdir/nginx/stdout" 2>&1 &
pids+=($!)
if ! wait_http "$nginx_port"; then
  echo "nginx did not start:" >&2
  cat "$workdir/nginx/stdout" "$workdir/nginx/error.log" >&2 || true
  exit 1
fi
read -r nginx_rps nginx_p99 nginx_bad < <(measure "$nginx_port" nginx)
report "(b) nginx, 2 limit_req" "$nginx_rps" "$nginx_p99" "$nginx_bad"

# --- phlow-gateway: WORKERS threads, in memory, two limits --------------------------
gateway_rps=""
if [[ ! -x $gateway_bin ]]; then
  echo "(c) skipped: $gateway_bin not built (the gateway is not in this build yet)"
else
  gateway_port=$(free_port)
  admin_port=$(free_port)
  # `access_log: "off"` is quoted: bare `off` is a boolean to YAML 1.1 parsers.
  cat >"$workdir/gateway.yaml" <<EOF
listen: "127.0.0.1:$gateway_port"
threads: $workers
access_log: "off"
log_level: warn
admin:
  listen: "127.0.0.1:$admin_port"
upstreams:
  demo:
    url: "http://127.0.0.1:$upstream_port"
    max_idle_connections: 64
limits:
  per_ip: { requests: 100000000, window: 1m, key: ip, algorithm: sliding_window }
  per_key: { requests: 100000000, window: 1m, key: "header:X-Bench-Key", algorithm: sliding_window }
routes:
  - match: { path_prefix: / }
    upstream: demo
    limits: [per_ip, per_key]
EOF
  # In memory: REDIS_URL from the caller's environment must not switch it to Redis.
  if ! env -u REDIS_URL "$gateway_bin" --config "$workdir/gateway.yaml" --check \
      >"$workdir/gateway.check" 2>&1; then
    echo "(c) skipped: the generated config is rejected:" >&2
    cat "$workdir/gateway.check" >&2
  else
    env -u REDIS_URL "$gateway_bin" --config "$workdir/gateway.yaml" \
      >"$workdir/gateway.out" 2>&1 &
    pids+=($!)
    if ! wait_http "$gateway_port"; then
      echo "phlow-gateway did not start:" >&2
      cat "$workdir/gateway.out" >&2
      exit 1
    fi
    read -r gateway_rps gateway_p99 gateway_bad < <(measure "$gateway_port" gateway)
    report "(c) phlow-gateway, 2 limits" "$gateway_rps" "$gateway_p99" "$gateway_bad"
  fi
fi

echo
if [[ -n $gateway_rps ]]; then
  awk -v g="$gateway_rps" -v n="$nginx_rps" -v d="$direct_rps" 'BEGIN {
    printf "gateway / nginx   %.2f\n", g / n
    printf "gateway / direct  %.2f\n", g / d
  }'
fi
awk -v n="$nginx_rps" -v d="$direct_rps" 'BEGIN { printf "nginx / direct    %.2f\n", n / d }'
