#!/usr/bin/env bash
# The quick start: builds phlow-gateway and the demo upstream, starts the demo upstream
# on 127.0.0.1:8000 (it stands in for a Phlow agent service) and the gateway on
# config/examples/phlow-agent.yaml at 127.0.0.1:8080. Limits are in memory unless
# REDIS_URL is set (e.g. REDIS_URL=redis://127.0.0.1:6379/0 scripts/run.sh).
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target phlow-gateway phlow-demo-upstream

build/demo/phlow-demo-upstream --listen 127.0.0.1:8000 >/dev/null &
upstream=$!
build/gateway/phlow-gateway --config config/examples/phlow-agent.yaml &
gateway=$!
trap 'kill $gateway $upstream 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

for _ in $(seq 50); do
  curl -s -o /dev/null http://127.0.0.1:8080/ 2>/dev/null && break
  sleep 0.1
done
cat <<'TXT'

phlow-gateway is listening on http://127.0.0.1:8080 in front of the demo upstream.
The route "/" allows 60 requests a minute per bearer token. Try, in another shell:

  # 62 requests with one token: 60 times 200, then 429
  for i in $(seq 62); do
    curl -s -o /dev/null -w '%{http_code}\n' -H 'Authorization: Bearer demo-token' http://127.0.0.1:8080/
  done | sort | uniq -c

  # the 429 with its headers and body
  curl -i -H 'Authorization: Bearer demo-token' http://127.0.0.1:8080/

  # another token has its own budget
  curl -i -H 'Authorization: Bearer other-token' http://127.0.0.1:8080/

Ctrl-C stops the gateway and the demo upstream.
TXT
wait "$gateway"
