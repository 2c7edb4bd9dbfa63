#!/usr/bin/env bash
# Installs the Debian 12 packages phlow-gateway needs to build, test and benchmark.
# Idempotent; run as root (or with sudo available). Safe to rerun.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  libboost1.81-dev            # Beast needs >= 1.80; Debian's default 1.74 is too old
  libhiredis-dev
  nlohmann-json3-dev
  libyaml-cpp-dev
  catch2
  libssl-dev
  redis-server redis-tools
  libspdlog-dev libfmt-dev
  curl
  chromium                    # the status page is tested in a real headless browser
  clang                       # scripts/fuzz.sh: libFuzzer needs clang (14 in Debian 12)
  libclang-rt-14-dev          # ...and its runtime (fuzzer, ASan, UBSan), only recommended by clang-14
)
if [[ "${PHLOW_BENCH_DEPS:-0}" == 1 ]]; then
  packages+=(wrk nginx-light)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The redis-server package starts a system service on 6379; tests start their own
# servers on free ports and never rely on it.
