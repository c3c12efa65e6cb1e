#pragma once

// The orphan reconciler (issue 4, docs/orphans.md): finds volumes of ours that nothing in the
// cluster refers to any more, and LogicVolumes that refer to nothing, and deletes them — slowly
// and carefully, because deleting a volume destroys data.
//
// Two layers:
// - OrphanTracker: the PURE decision core (no I/O, time passed in). It remembers when each
//   orphan was first seen and turns one snapshot of the node and the cluster into a list of
//   actions (delete a volume, delete a LogicVolume, or skip with a reason).
// - OrphanReconciler: the async runner. Every interval it takes a snapshot through injected
//   dependencies, asks the tracker, re-checks each candidate against a FRESH snapshot right
//   before deleting it, deletes (or only reports, in dry-run), logs, counts and reports Events.
//
// Safety rules (DESIGN.md "never lose data"), all enforced by the pure core:
// - nothing at all is decided while the API caches are not synced;
// - a local volume is an orphan only when no PV (any node) has it as volumeHandle AND no
//   LogicVolume (any node) refers to it (by status.volumeID or by name);
// - an orphan volume is deleted only after it has been an orphan, NOT in use, for the whole
//   grace period as seen by this process (a restart starts the clock again); a volume in use
//   (mounted anywhere, held, bind-mounted, open) is never deleted and its clock restarts;
// - a LogicVolume of THIS node is deleted only when no PV refers to it and no local volume
//   exists for it, after the grace period measured both from when this process first saw it
//   orphaned and from its creationTimestamp (CreateVolume creates the LogicVolume before
//   external-provisioner creates the PV, so young LogicVolumes are always kept).
// Anything that stops being an orphan is forgotten: if it becomes one again, the grace period
// starts from zero.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "agent/core/async.h"
#include "agent/core/config.h"
#include "agent/storage/volume_backend.h"

namespace boost::asio {
class thread_pool;
}  // namespace boost::asio

namespace carina::cluster {

/** A volume of ours found on this node's disks (GPT partition with our type GUID, LV with our
 *  tags). */
struct LocalVolume {
  std::string id;  // volume id (= CSI volume handle)
  std::string group;
  uint64_t size_bytes = 0;
  std::string device;  // "/dev/sdb3"
  bool in_use = true;  // mounted anywhere, held, bind-mounted or open; unknown counts as in use
  std::string in_use_reason;  // for logs and Events ("mounted at /var/lib/...")
};

/** The answer of an in-use probe (on Linux: os::checkBlockDeviceUse, agent/os/linux/
 *  device_use.h, converted field by field). */
struct DeviceUseAnswer {
  bool in_use = true;
  std::string reason;
};

/** What the reconciler needs of one LogicVolume (any node). */
struct LogicVolumeRef {
  std::string name;       // metadata.name
  std::string volume_id;  // status.volumeID ("" while CreateVolume has not filled it)
  std::string node;  // spec.nodeName; only LogicVolumes of OrphanOptions::node_name are deleted
  std::optional<std::chrono::system_clock::time_point> created;  // metadata.creationTimestamp
  bool deleting = false;  // metadata.deletionTimestamp set: someone is already deleting it
};

/** What the reconciler needs of the cluster, read from the informer caches. */
struct ClusterView {
  bool caches_synced = false;                 // EVERY cache involved (PVs, LogicVolumes) has synced
  std::set<std::string> pv_volume_handles;    // spec.csi.volumeHandle of every carina PV, any node,
                                              // any phase (Released PVs still own their volume)
  std::vector<LogicVolumeRef> logic_volumes;  // every LogicVolume (at least this node's)
};

struct OrphanInputs {
  ClusterView cluster;
  std::vector<LocalVolume> local;
};

struct OrphanOptions {
  std::chrono::milliseconds interval{std::chrono::minutes(10)};
  std::chrono::milliseconds grace{std::chrono::hours(1)};
  bool dry_run = false;   // decide, log, count and report, but delete nothing
  bool enabled = true;    // false: start() does nothing (runOnce() still works, for tests/tools)
  std::string node_name;  // this node; required (LogicVolumes of other nodes are never deleted)
};

/** Options from the agent config (the `reconciler` section) and this node's name. */
OrphanOptions orphanOptionsFromConfig(const core::ReconcilerConfig& config, std::string node_name);

enum class OrphanTarget { Volume, LogicVolume };
enum class OrphanActionKind { DeleteVolume, DeleteLogicVolume, Skip };
enum class SkipReason {
  None,
  CachesUnsynced,      // nothing is decided (target/name empty)
  WaitingForGrace,     // orphan, but not for long enough yet
  InUse,               // orphan volume that is mounted/held/open: never deleted
  DeletionInProgress,  // orphan LogicVolume that already carries a deletionTimestamp
};

std::string_view toString(OrphanActionKind kind);
std::string_view toString(SkipReason reason);
std::string_view toString(OrphanTarget target);

struct OrphanAction {
  OrphanActionKind kind = OrphanActionKind::Skip;
  OrphanTarget target = OrphanTarget::Volume;
  std::string name;  // volume id (Volume) or LogicVolume name
  SkipReason reason = SkipReason::None;
  std::chrono::milliseconds orphaned_for{0};  // as seen by this process
  std::string volume_id;                      // Volume: = name; LogicVolume: its status.volumeID
  std::string device;                         // Volume only
  std::string group;                          // Volume only
  uint64_t size_bytes = 0;                    // Volume only
  std::string detail;                         // in-use reason etc.
};

/** Why a candidate is (still) an orphan or not, against one snapshot. */
enum class OrphanCheck {
  Orphan,
  Unsynced,
  Gone,
  HasPersistentVolume,
  HasLogicVolume,
  HasLocalVolume,
  InUse,
  OtherNode
};
std::string_view toString(OrphanCheck check);

/** Is local volume @p id an orphan in @p inputs? Orphan, Unsynced, Gone (not on the node any
 *  more), HasPersistentVolume, HasLogicVolume or InUse. Pure. */
OrphanCheck checkVolume(const OrphanInputs& inputs, const std::string& id);

/** Is LogicVolume @p name of node @p node_name an orphan in @p inputs? Orphan, Unsynced, Gone,
 *  OtherNode, HasPersistentVolume or HasLocalVolume. Pure. */
OrphanCheck checkLogicVolume(const OrphanInputs& inputs, const std::string& name,
                             const std::string& node_name);

/**
 * The pure decision core. Not thread-safe (the reconciler uses it from one coroutine at a time).
 */
class OrphanTracker {
public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  using WallTime = std::chrono::system_clock::time_point;

  /**
   * Updates the first-seen times from @p inputs and returns what to do, volumes first (sorted
   * by id), then LogicVolumes (sorted by name). Only orphans appear: a volume or LogicVolume
   * that something refers to yields no action (and its timer is dropped).
   * - caches not synced: exactly one Skip{CachesUnsynced} and no timer changes at all;
   * - orphan volume in use: Skip{InUse}, timer restarted;
   * - orphan younger than options.grace (first seen by this tracker): Skip{WaitingForGrace};
   * - orphan LogicVolume created less than options.grace before @p wall_now: WaitingForGrace;
   * - orphan LogicVolume with a deletionTimestamp: Skip{DeletionInProgress};
   * - otherwise DeleteVolume / DeleteLogicVolume.
   */
  std::vector<OrphanAction> decide(SteadyTime now, WallTime wall_now, const OrphanInputs& inputs,
                                   const OrphanOptions& options);

  /** Forgets @p target/name (after a successful delete). */
  void forget(OrphanTarget target, const std::string& name);

  /** When @p target/name was first seen orphaned, if it is tracked. */
  std::optional<SteadyTime> firstSeen(OrphanTarget target, const std::string& name) const;
  size_t trackedCount() const { return first_seen_.size(); }

private:
  std::map<std::pair<OrphanTarget, std::string>, SteadyTime> first_seen_;
};

/** An Event to post (the agent turns it into a Kubernetes Event: on the LogicVolume for
 *  target LogicVolume, on the Node for target Volume, which has no object of its own). */
struct OrphanEvent {
  bool warning = false;  // type Warning (failures, in use) or Normal
  std::string reason;    // OrphanVolumeDeleted, OrphanLogicVolumeDeleted, OrphanWouldDelete
                         // (dry-run), OrphanDeleteFailed, OrphanVolumeInUse
  OrphanTarget target = OrphanTarget::Volume;
  std::string name;       // volume id or LogicVolume name
  std::string volume_id;  // the volume concerned (may be "" for a LogicVolume without one)
  std::string message;    // human readable, one line
};

struct OrphanStats {
  uint64_t runs = 0;  // passes started (unsynced or failed ones included)
  uint64_t volumes_deleted = 0;
  uint64_t logic_volumes_deleted = 0;
  uint64_t skipped_in_use = 0;    // Skip{InUse} actions, plus in-use found by re-checks
  uint64_t skipped_unsynced = 0;  // passes skipped because caches were not synced
  uint64_t failures = 0;          // failed snapshots and failed deletions
  uint64_t dry_run_reports = 0;   // deletions reported but not done (dry-run)
  uint64_t recheck_aborts = 0;    // candidates that stopped being orphans at the re-check
};

/** The outcome of one pass. */
struct OrphanRunReport {
  bool busy = false;                  // another pass was running: this one did nothing
  bool synced = false;                // caches were synced (otherwise nothing was decided)
  absl::Status status;                // a snapshot failure (then nothing was deleted)
  std::vector<OrphanAction> actions;  // the tracker's decisions
  std::vector<std::string> volumes_deleted;
  std::vector<std::string> logic_volumes_deleted;
  std::vector<std::string> would_delete;    // dry-run: "volume/<id>", "logicvolume/<name>"
  std::vector<std::string> failed;          // deletions that failed (retried next pass)
  std::vector<std::string> rechecked_kept;  // candidates the re-check kept
};

/** Everything the reconciler touches, injected (testable without Kubernetes or disks). */
struct OrphanDeps {
  /** The cluster, from the informer caches. Runs on the reconciler's strand; must be quick.
   *  Required. */
  std::function<ClusterView()> cluster_view;
  /** Every volume of ours on this node (VolumeBackend::listVolumes, see toLocalVolumes()).
   *  BLOCKING: runs on the pool. An error aborts the pass (nothing is deleted). Required. */
  std::function<absl::StatusOr<std::vector<LocalVolume>>()> local_volumes;
  /** Is this device in use? BLOCKING: runs on the pool, only for orphan candidates (volumes no
   *  PV and no LogicVolume refers to), once per pass and again right before a deletion. An
   *  error counts as in use. Optional: when unset, local_volumes' in_use is used as given. */
  std::function<absl::StatusOr<DeviceUseAnswer>(const std::string& device)> device_use;
  /** Deletes a local volume (VolumeBackend::deleteVolume through the per-volume lock).
   *  BLOCKING: runs on the pool, right after a fresh in-use check. Aborted means the volume is
   *  busy (a CSI call holds its lock): it is kept, counted as in use, and looked at again next
   *  pass; other errors count as failures. Required. */
  std::function<absl::Status(const std::string& id)> delete_volume;
  /** Deletes a LogicVolume object (NotFound counts as done). Runs on the strand. Required. */
  std::function<Task<absl::Status>(std::string name)> delete_logic_volume;
  /** Posts an Event. Runs on the strand; optional. */
  std::function<void(const OrphanEvent&)> report;
  /** Clocks; optional (tests drive time through them). */
  std::function<std::chrono::steady_clock::time_point()> steady_now;
  std::function<std::chrono::system_clock::time_point()> wall_now;
};

/**
 * The async runner. Everything runs on a strand of the executor given; local_volumes and
 * delete_volume run on @p pool through runBlocking. Passes never overlap (a runOnce() while a
 * pass runs returns a report with busy = true).
 *
 * Lifetime: the loop keeps the internal state alive; the deps must stay valid until the
 * io_context has stopped (or until stop() was called and the pool joined).
 */
class OrphanReconciler {
public:
  OrphanReconciler(Executor executor, boost::asio::thread_pool& pool, OrphanOptions options,
                   OrphanDeps deps);
  ~OrphanReconciler();  // calls stop()
  OrphanReconciler(const OrphanReconciler&) = delete;
  OrphanReconciler& operator=(const OrphanReconciler&) = delete;

  /** Starts the periodic loop: first pass after one interval, then every interval.
   *  OK and nothing started when options.enabled is false.
   *  @return InvalidArgument (a required dep missing, empty node name, interval <= 0),
   *          FailedPrecondition (already started or stopped). */
  absl::Status start();

  /** Stops the loop: no pass starts after stop(); a pass in progress finishes its current step
   *  and deletes nothing more. Idempotent; thread-safe. */
  void stop();

  /** Runs one pass now (on the strand) and returns its report. Works without start(). After
   *  stop() it returns a report with status Cancelled. */
  Task<OrphanRunReport> runOnce();

  /** Counters since construction. Thread-safe. */
  OrphanStats stats() const;

  /** The settings in effect (a copy; thread-safe). */
  OrphanOptions options() const;
  /** Applies new settings (config reload): interval, grace and dry-run take effect for the next
   *  pass (a wait in progress restarts with the new interval); the node name and `enabled` keep
   *  their start values (enabling or disabling takes a restart). Thread-safe; InvalidArgument for
   *  a non-positive interval. */
  absl::Status updateOptions(OrphanOptions next);

  struct State;

private:
  std::shared_ptr<State> state_;
};
using OrphanReconcilerPtr = std::unique_ptr<OrphanReconciler>;

/** The local_volumes answer from the backend's volumes: id, group, size, device; in_use = true
 *  ("not checked") until the reconciler's device_use probe says otherwise. Pure. */
std::vector<LocalVolume> toLocalVolumes(const std::vector<storage::Volume>& volumes);

/** Parses a Kubernetes timestamp (RFC 3339: "2024-05-06T07:08:09Z", optional fraction, "Z" or
 *  "+hh:mm"/"-hh:mm"). nullopt when malformed. */
std::optional<std::chrono::system_clock::time_point> parseKubeTimestamp(std::string_view text);

}  // namespace carina::cluster
