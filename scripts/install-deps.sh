#!/usr/bin/env bash
# Installs every Debian 12 package that carina's build, tests, benchmarks and runtime need.
# Non-interactive and idempotent: packages already installed are skipped by apt.
# Boost: versioned 1.81 -dev names only (unversioned libboost-*-dev pull 1.74 and conflict).
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build g++ pkg-config ccache clang-format
  libboost1.81-dev libboost-json1.81-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libudev-dev libfdisk-dev libblkid-dev uuid-dev libyaml-cpp-dev libssl-dev
  # tests
  catch2
  # runtime: filesystems, LVM, loop devices, mounts
  xfsprogs e2fsprogs lvm2 util-linux mount kmod
  # benchmark baseline (Carina's way: parted + partx)
  parted
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
