#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, and runs every test.
#   1. scripts/install-deps.sh
#   2. format and dependency guards
#   3. build (warnings are errors) and run every test: unit and integration (root: loop devices,
#      mounts, real gRPC/HTTP on loopback), then the README's main job (scripts/demo.sh)
#   4. a second build with ASan+UBSan that runs the unit tests again
#   5. a third build with ThreadSanitizer that runs the unit tests of the async code (core,
#      storage, Kubernetes client, extender, cluster agent) again
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)

scripts/install-deps.sh
scripts/check-format.sh
scripts/check-deps.sh

echo "== build (RelWithDebInfo, -Werror)"
BUILD_DIR=build scripts/build.sh -DCARINA_WERROR=ON
echo "== tests: unit + integration"
(cd build && ctest --output-on-failure -j"$JOBS" -L unit)
(cd build && ctest --output-on-failure -L integration)
echo "== the README's main job (scripts/demo.sh) on the binaries just built"
CARINA_DEMO_SKIP_BUILD=1 scripts/demo.sh

if [ "${CARINA_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== build (ASan+UBSan) and unit tests under sanitizers"
  BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DCARINA_WERROR=ON \
    -DCARINA_SANITIZE=address,undefined -DCARINA_BUILD_BENCH=OFF
  (cd build-asan && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$JOBS" -L unit)
fi

if [ "${CARINA_SKIP_TSAN:-0}" != "1" ]; then
  # Debian's gRPC and abseil are not built with TSan: the CSI tests (gRPC's callback server) would
  # drown in reports from inside them, so they are not part of this run. tests/tsan.supp lists
  # the one suppression and why.
  echo "== build (TSan) and the unit tests of the async code under ThreadSanitizer"
  BUILD_DIR=build-tsan BUILD_TYPE=Debug \
    BUILD_TARGETS="unit_core unit_storage unit_k8s unit_extender unit_cluster" \
    scripts/build.sh -DCARINA_WERROR=ON -DCARINA_SANITIZE=thread -DCARINA_BUILD_BENCH=OFF
  (cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/../tests/tsan.supp" \
    ctest --output-on-failure -j"$JOBS" -L unit -R '^(core|storage|k8s|extender|cluster)\.')
fi
echo "== all tests passed"
