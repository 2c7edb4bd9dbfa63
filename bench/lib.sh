# Shell helpers the bench scripts share (sourced, not run):
#   workdir    a temporary directory, removed on exit
#   pids+=($!) processes started in the background, killed and reaped on exit
#   free_port  a loopback TCP port nothing listens on right now (20000-31999)
#   wait_http PORT           waits up to 10 s until http://127.0.0.1:PORT/ answers
#   wait_port FILE REGEX     waits up to 10 s for REGEX in FILE, prints its first group

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
