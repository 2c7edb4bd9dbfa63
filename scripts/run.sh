#!/usr/bin/env bash
# Builds and runs the limiter demo (in memory; pass a redis:// URL to use Redis).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target phlow_limiter_demo
exec build/limiter/phlow_limiter_demo "$@"
