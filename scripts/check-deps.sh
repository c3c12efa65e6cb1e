#!/usr/bin/env bash
# Include guard for the dependency direction (docs/architecture.md): domain code and public
# headers must not pull heavy or OS-specific headers.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
heavy='#include [<"](grpcpp/|google/protobuf/|boost/beast|libudev\.h|libfdisk|blkid|yaml-cpp/)'
# Domain code: storage, pure extender scoring, and every public header outside os/linux.
files=$(ls agent/storage/*.{h,cc} extender/scoring.* 2>/dev/null || true)
files+=" $(find agent csi extender k8s-client -name '*.h' ! -path 'agent/os/linux/*' \
  ! -name '*_impl.h' ! -name '*_internal.h' 2>/dev/null)"
for f in $files; do
  if grep -nE "$heavy" "$f"; then echo "check-deps: heavy or OS header in $f"; fail=1; fi
done
# libudev / libfdisk / libblkid only under agent/os/linux.
for f in $(grep -rlE '#include [<"](libudev\.h|libfdisk|blkid)' agent csi extender k8s-client \
    2>/dev/null || true); do
  case "$f" in agent/os/linux/*) ;; *) echo "check-deps: $f uses libudev/libfdisk/blkid"; fail=1;; esac
done
# Generated code is never committed.
if git ls-files | grep -E '\.pb\.(h|cc)$'; then echo "check-deps: generated code committed"; fail=1; fi
[ $fail -eq 0 ] && echo "check-deps: ok"
exit $fail
