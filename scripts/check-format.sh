#!/usr/bin/env bash
# clang-format --dry-run -Werror on every C++ file we own.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.h' '*.cc' 2>/dev/null)
[ -z "$files" ] && files=$(find agent csi extender k8s-client tests bench -name '*.h' -o -name '*.cc')
clang-format --dry-run -Werror $files
echo "check-format: ok ($(echo "$files" | wc -w) files)"
