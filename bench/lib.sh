# Shell helpers the bench scripts share (sourced, not run):
#   workdir    a temporary directory, removed on exit
#   pids+=($!) processes started in the background, killed and reaped on exit
#   free_port  a loopback TCP port nothing listens on right now (20000-31999)
#   wait_http PORT           waits up to 10 s until http://127.0.0.1:PORT/ answers
#   wait_port FILE REGEX     waits up to 10 s for REGEX in FILE, prints its first group
#   require_bench_tools      wrk, redis-server, redis-cli, curl, ss and the built
#                            $gateway_bin and $upstream_bin, else exit 2
#   start_upstream           the demo upstream (1 thread) on a free port: upstream_port
#   start_redis PORT [ARG...] a throwaway redis-server on 127.0.0.1:PORT: redis_pid
#   require_redis_tools [TOOL...] redis-server, redis-cli and TOOLs, else exit 2
#   write_gateway_config FILE PORT ADMIN [REDIS_URL]
#                            a gateway (threads: 1, access log off) proxying to
#                            127.0.0.1:$upstream_port (start_upstream's, or one set
#                            by the caller) with one per_ip limit nothing reaches

workdir=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

# Below the kernel's ephemeral range (32768 and up by default), where outgoing
# connections would otherwise take a port between the check and the bind.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 12000))
    ss -Htln "sport = :$port" | grep -q . || { echo "$port"; return; }
  done
}

wait_http() {
  local _
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  return 1
}

wait_port() {
  local _ port
  for _ in $(seq 100); do
    port=$(sed -nE "s/.*$2.*/\\1/p" "$1" | head -n1)
    [[ -n $port ]] && { echo "$port"; return 0; }
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}

require_bench_tools() {
  local tool
  for tool in wrk redis-server redis-cli curl ss; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
  done
  [[ -x $gateway_bin && -x $upstream_bin ]] || { echo "build first: $gateway_bin" >&2; exit 2; }
}

start_upstream() {
  "$upstream_bin" --listen 127.0.0.1:0 --threads 1 >"$workdir/upstream.out" 2>&1 &
  pids+=($!)
  upstream_port=$(wait_port "$workdir/upstream.out" 'listening on 127\.0\.0\.1:([0-9]+)')
}

start_redis() {
  local port=$1 _
  shift
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    --loglevel warning --dir "$workdir" "$@" >"$workdir/redis-$port.log" 2>&1 &
  redis_pid=$!
  pids+=($redis_pid)
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "redis-server on $port did not start" >&2
  exit 1
}

require_redis_tools() {
  local tool
  for tool in redis-server redis-cli "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install redis-server redis-tools)" >&2; exit 2; }
  done
}

write_gateway_config() {
  local file=$1 port=$2 admin=$3 redis_lines=""
  [[ -n ${4:-} ]] && redis_lines=$'redis:\n  url: "'"$4"'"'
  cat >"$file" <<EOF
listen: "127.0.0.1:$port"
threads: 1
access_log: "off"
admin:
  listen: "127.0.0.1:$admin"
  token: ""
$redis_lines
upstreams:
  up:
    url: "http://127.0.0.1:$upstream_port"
limits:
  per_ip: { requests: 1000000000, window: 1m, key: ip }
routes:
  - match: { path_prefix: / }
    upstream: up
    limits: [per_ip]
EOF
}
