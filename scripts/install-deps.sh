#!/usr/bin/env bash
# Installs the Debian 12 packages phlow-gateway needs to build, test and benchmark.
# Idempotent; run as root (or with sudo available). Safe to rerun.
#   scripts/install-deps.sh --build-only   only what a Release build and its .deb need
#                                          (the Dockerfile's build stage uses this)
set -euo pipefail

build_packages=(
  build-essential cmake pkg-config git ca-certificates
  file                        # cpack -G DEB: dpkg-shlibdeps computes Depends with it
  libboost1.81-dev            # Beast needs >= 1.80; Debian's default 1.74 is too old
  libhiredis-dev
  nlohmann-json3-dev
  libyaml-cpp-dev
  libssl-dev
  libspdlog-dev libfmt-dev
)
packages=("${build_packages[@]}"
  catch2
  redis-server redis-tools
  curl
  openssl                     # tests: the TLS fixtures make their certificates with it
  docker-compose              # tests/deploy: `docker-compose config -q` on docker-compose.yml
  systemd                     # tests/deploy: systemd-analyze verify on the unit
  chromium                    # the status page is tested in a real headless browser
  clang                       # scripts/fuzz.sh: libFuzzer needs clang (14 in Debian 12)
  libclang-rt-14-dev          # ...and its runtime (fuzzer, ASan, UBSan), only recommended by clang-14
)
case "${1:-}" in
  --build-only) packages=("${build_packages[@]}") ;;
  "") ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac
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
