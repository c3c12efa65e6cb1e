#!/usr/bin/env bash
# carina end to end on this machine, in one command (run as root on Debian 12):
#
#   sudo scripts/demo.sh
#
# 1. installs the dependencies and builds, when build/bin/carina-agent or carinactl is missing
#    or older than the sources;
# 2. creates two 2 GiB sparse-file loop disks and a config whose only disk group (RAW) selects
#    exactly those two devices;
# 3. starts `carina-agent --standalone` on them (CSI socket, HTTP port, state and kubelet dirs all
#    in a temporary directory) and waits until CSI Probe reports ready and both disks are in the
#    group;
# 4. with carinactl: shows the disks; creates a shared xfs volume and an exclusive ext4 volume;
#    mounts both; writes a file to each and reads it back (sha256), also after an unmount and
#    remount; grows the xfs volume online and checks that df grew; shows volumes and stats;
#    unmounts and deletes both volumes and checks that the disks are empty again;
# 5. tears everything down — ALSO when a step fails: unmounts, deletes the volumes, stops the
#    agent, detaches the loop devices it attached (by name) and removes its files.
#
# It touches only the loop devices it attached. The last line is "demo: PASS" or "demo: FAIL";
# the exit status is non-zero on failure.
#
# Environment: CARINA_BUILD_DIR (default build), CARINA_DEMO_DISK_SIZE (default 2G),
# CARINA_DEMO_SKIP_BUILD=1 (use existing binaries even if sources are newer),
# CARINA_DEMO_KEEP_LOG=1 keeps the agent log (copied to /tmp/carina-demo-agent.log).
set -Eeuo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${CARINA_BUILD_DIR:-build}
DISK_SIZE=${CARINA_DEMO_DISK_SIZE:-2G}
AGENT="$ROOT/$BUILD_DIR/bin/carina-agent"
CTL_BIN="$ROOT/$BUILD_DIR/bin/carinactl"

STEP=0
FINISHED=0
WORK=""
AGENT_PID=""
LOOPS=()
VOLUMES=()   # created volume names, deleted on cleanup
MOUNTS=()    # "NAME PATH" pairs mounted through carinactl

say() { printf '%s\n' "$*"; }
step() {
  STEP=$((STEP + 1))
  printf '\n==> [%d] %s\n' "$STEP" "$*"
}
fail() {
  say "demo: step $STEP failed: $*" >&2
  exit 1
}
# Runs carinactl, echoing the command line first.
ctl() {
  say "\$ carinactl $*"
  "$CTL_BIN" "$@"
}
ctl_quiet() { "$CTL_BIN" "$@"; }

on_error() {
  local rc=$?
  say "demo: command failed (exit $rc) at line ${BASH_LINENO[0]}: ${BASH_COMMAND}" >&2
}
trap on_error ERR

cleanup() {
  local rc=$?
  trap - EXIT ERR
  set +e
  printf '\n==> cleanup\n'
  if [ -n "$WORK" ]; then
    local m name path
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
      m=${MOUNTS[i]}
      name=${m%% *}
      path=${m#* }
      if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
        say "unmounting volume $name from $path"
        "$CTL_BIN" umount "$name" "$path" >/dev/null 2>&1 || say "  (carinactl umount failed)"
      fi
    done
    for name in "${VOLUMES[@]}"; do
      if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
        say "deleting volume $name"
        "$CTL_BIN" delete "$name" >/dev/null 2>&1 || say "  (carinactl delete failed)"
      fi
    done
  fi
  if [ -n "$AGENT_PID" ]; then
    if kill -0 "$AGENT_PID" 2>/dev/null; then
      say "stopping carina-agent (pid $AGENT_PID)"
      kill -TERM "$AGENT_PID" 2>/dev/null
      for _ in $(seq 1 100); do
        kill -0 "$AGENT_PID" 2>/dev/null || break
        sleep 0.2
      done
      if kill -0 "$AGENT_PID" 2>/dev/null; then
        say "carina-agent did not stop within 20 s: killing it"
        kill -KILL "$AGENT_PID" 2>/dev/null
      fi
    fi
    wait "$AGENT_PID" 2>/dev/null
  fi
  if [ -n "$WORK" ]; then
    # Anything still mounted below our directory (a failed step, a crashed agent): deepest first.
    local mp
    while read -r mp; do
      say "unmounting leftover $mp"
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null
    done < <(awk -v w="$WORK" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo |
      sort -r)
  fi
  local dev
  for dev in "${LOOPS[@]}"; do
    # Any partition of our device still mounted somewhere (should not happen): unmount it.
    awk -v d="$dev" 'index($0, " " d "p") { print $5 }' /proc/self/mountinfo | sort -r |
      while read -r mp; do umount -l "$mp" 2>/dev/null; done
    # Drop the device's kernel partitions first: they would outlive the detach (BLKPG-added).
    partx -d "$dev" 2>/dev/null
    say "detaching $dev"
    losetup -d "$dev" || say "  (losetup -d $dev failed)"
  done
  if [ -n "$WORK" ]; then
    if [ "$rc" -ne 0 ] && [ -f "$WORK/agent.log" ]; then
      say "--- last lines of the agent log ---"
      tail -n 30 "$WORK/agent.log"
      say "---"
    fi
    if [ "${CARINA_DEMO_KEEP_LOG:-0}" = "1" ] && [ -f "$WORK/agent.log" ]; then
      cp "$WORK/agent.log" "/tmp/carina-demo-agent.log" && say "agent log kept in /tmp/carina-demo-agent.log"
    fi
    say "removing $WORK"
    rm -rf --one-file-system "$WORK"
  fi
  if [ "$rc" -eq 0 ] && [ "$FINISHED" -eq 1 ]; then
    printf '\ndemo: PASS\n'
    exit 0
  fi
  printf '\ndemo: FAIL (step %d)\n' "$STEP"
  exit $((rc == 0 ? 1 : rc))
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || fail "run as root (loop devices, mkfs and mount need it): sudo $0"

step "dependencies and build"
needs_build=0
for b in "$AGENT" "$CTL_BIN"; do
  if [ ! -x "$b" ]; then
    say "$b is missing"
    needs_build=1
  fi
done
if [ $needs_build -eq 0 ] && [ "${CARINA_DEMO_SKIP_BUILD:-0}" != "1" ]; then
  newer=$(find agent csi extender k8s-client cmake CMakeLists.txt -newer "$AGENT" -type f \
    \( -name '*.cc' -o -name '*.h' -o -name '*.proto' -o -name 'CMakeLists.txt' -o -name '*.cmake' \) \
    -print -quit 2>/dev/null || true)
  newer_ctl=$(find csi/carinactl agent/storage agent/core -newer "$CTL_BIN" -type f \
    \( -name '*.cc' -o -name '*.h' -o -name 'CMakeLists.txt' \) -print -quit 2>/dev/null || true)
  if [ -n "$newer$newer_ctl" ]; then
    say "binaries are older than the sources (${newer:-$newer_ctl})"
    needs_build=1
  fi
fi
if [ $needs_build -eq 1 ]; then
  scripts/install-deps.sh
  say "building into $BUILD_DIR/ (scripts/build.sh)"
  BUILD_DIR="$BUILD_DIR" scripts/build.sh
  if [ ! -x "$AGENT" ] || [ ! -x "$CTL_BIN" ]; then
    fail "the build did not produce carina-agent and carinactl"
  fi
else
  say "up to date: $AGENT, $CTL_BIN"
fi
for tool in losetup truncate mkfs.xfs mkfs.ext4 sha256sum df awk; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

step "two ${DISK_SIZE} sparse-file loop disks"
WORK=$(mktemp -d /tmp/carina-demo.XXXXXX)
chmod 700 "$WORK"
# Kernel partitions of a loop device outlive its detach when they were added with BLKPG (another
# program's leftovers): the agent would rightly refuse such a disk. On a device we just attached
# to our own empty file they are stale, so we drop them (partx -d); if that fails (busy), we keep
# that device aside, take another one, and detach it at the end like the others.
stale_parts() { local n; n=$(basename "$1"); ls -d /sys/class/block/"$n"/"$n"p* 2>/dev/null || true; }
DISKS=()
for i in 1 2; do
  truncate -s "$DISK_SIZE" "$WORK/disk$i.img"
  for attempt in 1 2 3 4 5; do
    dev=$(losetup -f --show "$WORK/disk$i.img")
    LOOPS+=("$dev")
    say "attached $WORK/disk$i.img as $dev"
    if [ -n "$(stale_parts "$dev")" ]; then
      say "  $dev carries stale kernel partitions from an earlier user: removing them (partx -d)"
      partx -d "$dev" 2>/dev/null || true
    fi
    if [ -z "$(stale_parts "$dev")" ]; then
      DISKS+=("$dev")
      break
    fi
    say "  $dev still has partitions: setting it aside (attempt $attempt)"
  done
done
[ ${#DISKS[@]} -eq 2 ] || fail "could not get two clean loop devices"
DISK1=$(basename "${DISKS[0]}")
DISK2=$(basename "${DISKS[1]}")

step "config selecting exactly $DISK1 and $DISK2 (RAW group \"demo\")"
KUBELET="$WORK/kubelet"
mkdir -p "$KUBELET" "$WORK/state"
PORT=""
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 20000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    PORT=$p
    break
  fi
done
[ -n "$PORT" ] || fail "no free TCP port found"
CONFIG="$WORK/config.yaml"
cat >"$CONFIG" <<EOF
# written by scripts/demo.sh
diskSelector:
  - name: demo
    re: ["${DISK1}", "${DISK2}"]
    policy: RAW
diskScanInterval: 5
minDiskSize: 1Gi
stateDir: $WORK/state
standalone: true
csi:
  endpoint: unix://$WORK/csi.sock
  kubeletDir: $KUBELET
extender:
  listen: 127.0.0.1:$PORT
logging:
  level: info
  format: text
EOF
sed 's/^/  /' "$CONFIG"
export CARINA_ENDPOINT="unix://$WORK/csi.sock"
export CARINA_HTTP="http://127.0.0.1:$PORT"
export CARINA_KUBELET_DIR="$KUBELET"

step "start carina-agent --standalone"
"$AGENT" --config "$CONFIG" --standalone --csi-endpoint "$CARINA_ENDPOINT" \
  --http-listen "127.0.0.1:$PORT" --state-dir "$WORK/state" --log-level info \
  >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
say "carina-agent pid $AGENT_PID, CSI $CARINA_ENDPOINT, HTTP $CARINA_HTTP, log $WORK/agent.log"
ready=0
for _ in $(seq 1 120); do
  kill -0 "$AGENT_PID" 2>/dev/null || fail "carina-agent exited early (see its log below)"
  if ctl_quiet probe >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.5
done
[ $ready -eq 1 ] || fail "carina-agent did not become ready within 60 s"
ctl probe
# Discovery runs asynchronously: wait until both disks are in the group.
in_group=0
for _ in $(seq 1 60); do
  inv=$(ctl_quiet disks --json 2>/dev/null || true)
  groups_part=${inv%%\"unassigned\"*}
  if [[ "$groups_part" == *"\"name\":\"$DISK1\""* && "$groups_part" == *"\"name\":\"$DISK2\""* ]]; then
    in_group=1
    break
  fi
  sleep 0.5
done
ctl disks
[ $in_group -eq 1 ] || fail "$DISK1 and $DISK2 did not both appear in group demo within 30 s"

step "create a shared xfs volume (512 MiB) and an exclusive ext4 volume (1 GiB)"
VOLUMES+=(demo-xfs)
ctl create demo-xfs --size 512Mi --fs xfs
VOLUMES+=(demo-ext4)
ctl create demo-ext4 --size 1Gi --exclusive --fs ext4
ctl volumes

step "mount both below the kubelet dir"
T_XFS="$KUBELET/pods/demo-pod/volumes/kubernetes.io~csi/demo-xfs/mount"
T_EXT4="$KUBELET/pods/demo-pod/volumes/kubernetes.io~csi/demo-ext4/mount"
MOUNTS+=("demo-xfs $T_XFS")
ctl mount demo-xfs "$T_XFS" --fs xfs
MOUNTS+=("demo-ext4 $T_EXT4")
ctl mount demo-ext4 "$T_EXT4" --fs ext4
findmnt -no SOURCE,TARGET,FSTYPE "$T_XFS" || fail "$T_XFS is not a mount point"
findmnt -no SOURCE,TARGET,FSTYPE "$T_EXT4" || fail "$T_EXT4 is not a mount point"
[ "$(findmnt -no FSTYPE "$T_XFS")" = xfs ] || fail "$T_XFS is not xfs"
[ "$(findmnt -no FSTYPE "$T_EXT4")" = ext4 ] || fail "$T_EXT4 is not ext4"

step "write a 32 MiB file to each volume and read it back"
head -c $((32 * 1024 * 1024)) /dev/urandom >"$WORK/payload"
WANT=$(sha256sum <"$WORK/payload" | cut -d' ' -f1)
say "payload sha256 $WANT"
for t in "$T_XFS" "$T_EXT4"; do
  dd if="$WORK/payload" of="$t/payload" bs=1M conv=fsync status=none
  got=$(sha256sum <"$t/payload" | cut -d' ' -f1)
  [ "$got" = "$WANT" ] || fail "read back from $t: sha256 $got != $WANT"
  say "read back from $t: sha256 matches"
done

step "unmount and mount again; the data is still there"
for pair in "demo-xfs $T_XFS xfs" "demo-ext4 $T_EXT4 ext4"; do
  read -r name t fstype <<<"$pair"
  ctl umount "$name" "$t"
  ! findmnt "$t" >/dev/null || fail "$t is still mounted after carinactl umount"
  ctl mount "$name" "$t" --fs "$fstype"
  got=$(sha256sum <"$t/payload" | cut -d' ' -f1)
  [ "$got" = "$WANT" ] || fail "after remount, $t/payload: sha256 $got != $WANT"
  say "after remount, $t/payload: sha256 matches"
done

step "grow the xfs volume online from 512 MiB to 1 GiB"
before=$(df -B1 --output=size "$T_XFS" | tail -n 1 | tr -d ' ')
ctl expand demo-xfs --size 1Gi
after=$(df -B1 --output=size "$T_XFS" | tail -n 1 | tr -d ' ')
say "df size of $T_XFS: $before -> $after bytes"
[ "$after" -gt "$before" ] || fail "the xfs filesystem did not grow ($before -> $after)"
[ "$after" -gt $((768 * 1024 * 1024)) ] || fail "the xfs filesystem is only $after bytes after growing to 1 GiB"
got=$(sha256sum <"$T_XFS/payload" | cut -d' ' -f1)
[ "$got" = "$WANT" ] || fail "after growing, $T_XFS/payload: sha256 $got != $WANT"
say "data intact after growing"

step "volumes, stats and disks"
ctl volumes
ctl stats demo-xfs "$T_XFS"
ctl stats demo-ext4 "$T_EXT4"
ctl disks

step "ask the scheduler extender where a pod with a 512 MiB claim fits, and how fast it answered"
# The StorageClass and the PVC are not in any cluster: carinactl score sends them along with the
# pod, and the agent judges the pod with the same code kube-scheduler's filter/prioritize calls run.
cat >"$WORK/pod.yaml" <<'YAML'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: carina-demo}
provisioner: carina.storage.io
parameters: {carina.storage.io/disk-group-name: demo}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data-db-0, namespace: default}
spec:
  storageClassName: carina-demo
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 512Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: default}
spec:
  containers: [{name: db, image: postgres}]
  volumes: [{name: data, persistentVolumeClaim: {claimName: data-db-0}}]
YAML
ctl score --pod "$WORK/pod.yaml" | tee "$WORK/score.txt"
grep -q "^1 of 1 node" "$WORK/score.txt" || fail "the extender did not place the pod on this node"
ctl requests | tee "$WORK/requests.txt"
grep -q "/debug/score" "$WORK/requests.txt" || fail "carinactl requests does not show /debug/score"

step "unmount and delete both volumes"
ctl umount demo-xfs "$T_XFS"
ctl umount demo-ext4 "$T_EXT4"
MOUNTS=()
ctl delete demo-xfs
ctl delete demo-ext4
VOLUMES=()
left=$(ctl_quiet volumes --json)
[[ "$left" != *'"volumeId"'* ]] || fail "volumes left after delete: $left"
ctl volumes
ctl disks

FINISHED=1
say "all steps done"
