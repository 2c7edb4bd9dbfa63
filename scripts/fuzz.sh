#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang into build-fuzz/ and runs each for
# FUZZ_SECONDS (default 60) on a copy of its seed corpus (fuzz/corpus/<target>/, never
# written to). Fails on any crash, leak, timeout, out-of-memory or broken invariant,
# leaving the input in build-fuzz/fuzz-run/<target>/. Prints executions, seconds and
# corpus size per target. FUZZ_TARGETS="config resp" runs a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
build=build-fuzz
read -r -a targets <<<"${FUZZ_TARGETS:-config identifier jwt resp request_path}"
jobs=$(nproc 2>/dev/null || echo 2)

CC=clang CXX=clang++ cmake -S . -B "$build" -DPHLOW_FUZZ=ON -DPHLOW_WERROR=ON -DPHLOW_BUILD_TESTS=OFF \
  -DPHLOW_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs" --target "${targets[@]/%/_fuzzer}"

run="$build/fuzz-run"
rm -rf "$run"
failed=()
summary=()
for target in "${targets[@]}"; do
  dir="$run/$target"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -r "fuzz/corpus/$target/." "$dir/corpus/"
  dict=()
  [[ -f "fuzz/dict/$target.dict" ]] && dict=(-dict="fuzz/dict/$target.dict")
  echo "fuzz.sh: $target for ${seconds}s"
  start=$(date +%s)
  status=0
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb bounds memory.
  "$build/fuzz/${target}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" -artifact_prefix="$dir/artifacts/" "$dir/corpus" \
    >"$dir/log" 2>&1 || status=$?
  elapsed=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n1)
  files=$(find "$dir/corpus" -type f | wc -l)
  line="$target: ${execs:-?} executions in ${elapsed}s, corpus $files files"
  if ((status != 0)) || [[ -n "$(ls -A "$dir/artifacts")" ]]; then
    line+=" - FAILED (exit $status)"
    failed+=("$target")
    tail -n 60 "$dir/log" >&2
    ls -l "$dir/artifacts" >&2
  fi
  echo "fuzz.sh: $line"
  summary+=("$line")
done
printf 'fuzz.sh: %s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs in $run/<target>/artifacts)" >&2
  exit 1
fi
