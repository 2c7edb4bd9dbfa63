#!/usr/bin/env bash
# `cmake --install` and `cpack -G DEB` from the build tree under test (SPEC.md,
# "Deployment"), then what a user does with them:
#   1. install into a temporary prefix; the files are where the README says;
#   2. the installed gateway runs --version and --check on the installed config;
#   3. the installed unit passes `systemd-analyze verify`;
#   4. a consumer project outside the source tree finds the package with nothing but
#      CMAKE_PREFIX_PATH, links phlow::limiter and allows exactly 5 of 8 in memory;
#   5. cpack -G DEB makes both packages: contents listed with dpkg -c, and every
#      library the executables load comes from a package the .deb Depends on.
# usage: install_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/phlow-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }

echo "== cmake --install into $work/prefix"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
for f in bin/phlow-gateway bin/phlow-demo-upstream etc/phlow/gateway.yaml \
         share/phlow-gateway/examples/phlow-agent.yaml share/phlow-gateway/examples/phlow-agent.json \
         lib/systemd/system/phlow-gateway.service \
         include/limiter/distributed_rate_limiter.hpp lib/libphlow_limiter.a \
         lib/cmake/phlow_limiter/phlow_limiterConfig.cmake \
         lib/cmake/phlow_limiter/phlow_limiterConfigVersion.cmake \
         lib/cmake/phlow_limiter/phlow_limiterTargets.cmake; do
  [[ -e "$prefix/$f" ]] || fail "$f is not installed"
done
# Nothing of the build or the source tree leaks into the installed package files.
if grep -rl -e "$src" -e "$build" "$prefix/lib/cmake" "$prefix/lib/systemd"; then
  fail "installed files name the source or build tree"
fi

echo "== the installed gateway"
"$prefix/bin/phlow-gateway" --version | tee "$work/version"
grep -Eq '^phlow-gateway [0-9]+\.[0-9]+\.[0-9]+ \(commit [^,]+, [A-Za-z]+ build\)$' "$work/version" \
  || fail "--version output"
env -u REDIS_URL "$prefix/bin/phlow-gateway" --config "$prefix/etc/phlow/gateway.yaml" --check >/dev/null \
  || fail "--check on the installed etc/phlow/gateway.yaml"
unit=$prefix/lib/systemd/system/phlow-gateway.service
grep -qx "ExecStart=$prefix/bin/phlow-gateway --config $prefix/etc/phlow/gateway.yaml" "$unit" \
  || fail "the unit's ExecStart does not name the installed binary and config"
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit" || fail "the unit's ExecReload"
for option in DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes Restart=on-failure; do
  grep -qx "$option" "$unit" || fail "the unit lacks $option"
done

echo "== systemd-analyze verify"
command -v systemd-analyze >/dev/null || fail "systemd-analyze not found (scripts/install-deps.sh installs systemd)"
# A unit's verification also loads the units it names (network-online.target, ...):
# any complaint fails the test.
systemd-analyze verify "$unit" >"$work/verify.log" 2>&1 || { cat "$work/verify.log"; fail "systemd-analyze verify"; }
if [[ -s "$work/verify.log" ]]; then cat "$work/verify.log"; fail "systemd-analyze verify printed warnings"; fi

echo "== a consumer project: find_package(phlow_limiter) + phlow::limiter"
cp -r "$src/tests/deploy/consumer" "$work/consumer"
env -u REDIS_URL cmake -S "$work/consumer" -B "$work/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON >"$work/consumer.log" 2>&1 \
  || { cat "$work/consumer.log"; fail "the consumer's configure"; }
grep -q "phlow_limiter_DIR:PATH=$prefix/lib/cmake/phlow_limiter" "$work/consumer-build/CMakeCache.txt" \
  || fail "the consumer did not find the installed package"
cmake --build "$work/consumer-build" -j2 >>"$work/consumer.log" 2>&1 \
  || { cat "$work/consumer.log"; fail "the consumer's build"; }
out=$(env -u REDIS_URL "$work/consumer-build/consumer") || fail "consumer: $out"
echo "consumer: $out"
[[ "$out" == "allowed 5 of 8" ]] || fail "consumer printed '$out'"

echo "== cpack -G DEB"
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/deb" >"$work/cpack.log" 2>&1) \
  || { cat "$work/cpack.log"; fail "cpack"; }
runtime=$(ls "$work"/deb/phlow-gateway_*.deb)
dev=$(ls "$work"/deb/libphlow-limiter-dev_*.deb)
dpkg -c "$runtime"
dpkg -c "$dev"
for f in ./usr/bin/phlow-gateway ./usr/bin/phlow-demo-upstream ./etc/phlow/gateway.yaml \
         ./usr/lib/systemd/system/phlow-gateway.service ./usr/share/phlow-gateway/examples/phlow-agent.yaml; do
  dpkg -c "$runtime" | awk '{print $6}' | grep -qx -- "$f" || fail "$runtime lacks $f"
done
for f in ./usr/include/limiter/distributed_rate_limiter.hpp ./usr/lib/libphlow_limiter.a \
         ./usr/lib/cmake/phlow_limiter/phlow_limiterConfig.cmake; do
  dpkg -c "$dev" | awk '{print $6}' | grep -qx -- "$f" || fail "$dev lacks $f"
done
dpkg-deb --ctrl-tarfile "$runtime" | tar -xO ./conffiles | grep -qx /etc/phlow/gateway.yaml \
  || fail "/etc/phlow/gateway.yaml is not a conffile"
deb_root=$work/deb-root
dpkg-deb -x "$runtime" "$deb_root"
grep -qx 'ExecStart=/usr/bin/phlow-gateway --config /etc/phlow/gateway.yaml' \
  "$deb_root/usr/lib/systemd/system/phlow-gateway.service" || fail "the packaged unit's ExecStart"
depends=$(dpkg-deb -f "$runtime" Depends)
echo "Depends: $depends"
dev_depends=$(dpkg-deb -f "$dev" Depends)
echo "libphlow-limiter-dev Depends: $dev_depends"
# Every shared library the packaged executables load belongs to a Debian package that
# Depends names (the package names are asked of dpkg on this machine).
for exe in "$deb_root/usr/bin/phlow-gateway" "$deb_root/usr/bin/phlow-demo-upstream"; do
  while read -r lib; do
    owner=$(dpkg -S "$lib" 2>/dev/null | head -n1 | cut -d: -f1) || true
    [[ -z "$owner" ]] && owner=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n1 | cut -d: -f1) || true
    [[ -n "$owner" ]] || fail "no package owns $lib (loaded by $exe)"
    # The owner, or a name it Provides (libspdlog1.10 provides libspdlog1.10-fmt9).
    names=("$owner")
    read -r -a provided <<<"$(dpkg-query -W -f='${Provides}' "$owner" | tr ',' ' ' | sed 's/([^)]*)//g')"
    names+=("${provided[@]}")
    named=0
    list=",$(echo "$depends" | tr -d ' '),"
    for name in "${names[@]}"; do
      [[ "$list" == *",$name,"* || "$list" == *",$name("* ]] && named=1
    done
    ((named)) || fail "$exe loads $lib from $owner (${names[*]}), which Depends does not name"
  done < <(ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// {print $3}')
done
for p in libboost1.81-dev libhiredis-dev libssl-dev libspdlog-dev; do
  [[ ",$(echo "$dev_depends" | tr -d ' ')," == *",$p,"* ]] || fail "libphlow-limiter-dev does not depend on $p"
done
echo "install_test: OK"
