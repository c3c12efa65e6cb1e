#pragma once

// PartitionEngine: volumes as GPT partitions on the RAW disks of the node (VolumeBackend).
//
// The partition table on each disk is the only record: a volume is a partition whose type GUID
// is one of carina's (shared or exclusive, core/constants.h) and whose GPT name is the volume id
// (volumeIdForName). Every operation re-reads the table of its disk, edits it, writes it
// (signature wipe of a new partition first), and then makes the kernel's partitions equal to the
// table (BLKPG) and verifies them in sysfs. Killed at any step, a new engine repairs the kernel
// view in setDisks() and the retried request succeeds (docs/partition-engine.md).
//
// Thread-safe and BLOCKING: run it on the blocking pool. Operations on one disk are serialized
// by a per-disk mutex; different disks proceed in parallel; operations on the same volume id are
// serialized too (two concurrent creates of one name give one volume).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "agent/os/partition_table.h"
#include "agent/storage/disk_types.h"
#include "agent/storage/volume_backend.h"

namespace carina::storage {

struct PartitionEngineOptions {
  /** Size used when a create request gives neither required nor limit bytes. */
  uint64_t default_bytes = 1024ULL * 1024ULL * 1024ULL;
  /** Test-only crash injection: called before every step of every mutating operation with the
   *  step name ("create.write", "create.kernel", ...). A non-OK status aborts the operation right
   *  there, exactly as if the process had died (nothing is rolled back). */
  std::function<absl::Status(std::string_view step)> step_hook_for_test;
};

class PartitionEngine final : public VolumeBackend {
public:
  PartitionEngine(os::PartitionTableFactoryPtr tables, PartitionEngineOptions options = {});
  ~PartitionEngine() override;
  PartitionEngine(const PartitionEngine&) = delete;
  PartitionEngine& operator=(const PartitionEngine&) = delete;

  /** Tells the engine every disk discovery saw. Blocking. The engine manages the disks that are
   *  eligible, RAW and in a group; it reads the table of each new (or changed) one, rebuilds its
   *  volumes and repairs the kernel view (adds missing partitions, removes stale ones, fixes
   *  sizes). Disks no longer listed are dropped (nothing is written). Disks whose table cannot be
   *  read or holds partitions that are not carina's are reported in snapshot().unassigned.
   *  @return OK, or the first per-disk error (the other disks are still taken). */
  absl::Status setDisks(const std::vector<DiskInfo>& disks);

  /** Re-reads the table of every managed disk and repairs its kernel view (e.g. periodically). */
  absl::Status rescan();

  // VolumeBackend
  absl::StatusOr<Volume> createVolume(const VolumeSpec& spec) override;
  absl::Status deleteVolume(const std::string& id) override;
  absl::StatusOr<Volume> expandVolume(const std::string& id, uint64_t new_bytes) override;
  std::optional<Volume> findVolume(const std::string& id) override;
  std::vector<Volume> listVolumes() override;
  InventorySnapshot snapshot() override;

private:
  struct DiskState;
  class IdGuard;
  using DiskStatePtr = std::shared_ptr<DiskState>;

  absl::Status step(std::string_view name) const;
  absl::StatusOr<os::PartitionTablePtr> openTable(DiskState& disk);
  absl::Status loadDisk(DiskState& disk, bool repair);
  void publish(DiskState& disk, const os::TableInfo& table, bool kernel_ok);
  /** After an error (not a crash): refreshes the cache from the disk and repairs the kernel
   *  view, so that a retry works from what was committed. Best effort. */
  void refreshAfterError(DiskState& disk);
  absl::StatusOr<std::string> resolveGroup(const std::string& group);
  std::vector<DiskStatePtr> groupDisks(const std::string& group);
  std::optional<std::pair<DiskStatePtr, os::PartitionEntry>> locate(const std::string& id);
  std::shared_ptr<std::mutex> idLock(const std::string& id);
  void releaseIdLock(const std::string& id);
  absl::StatusOr<Volume> createLocked(const VolumeSpec& spec, const std::string& id,
                                      const std::string& group, uint64_t bytes);

  os::PartitionTableFactoryPtr tables_;
  PartitionEngineOptions options_;

  std::mutex set_disks_mu_;  // serializes setDisks/rescan
  mutable std::mutex mu_;    // guards everything below (never held while waiting on disk_mu)
  std::map<std::string, DiskStatePtr> disks_;  // managed disks by kernel name
  std::vector<DiskInfo> unassigned_;
  uint64_t generation_ = 0;
  std::map<std::string, std::pair<std::shared_ptr<std::mutex>, int>> id_locks_;
};

using PartitionEnginePtr = std::unique_ptr<PartitionEngine>;

}  // namespace carina::storage
