#pragma once

// PartitionTable: read and edit the GPT of one block device (or of a regular image file), and
// keep the kernel's view of the partitions (BLKPG) equal to the table.
//
// The model is "edit in memory, then write": addPartition/deletePartition/resizePartition/
// wipePartition/createGptLabel change only the in-memory table; write() commits all of them at
// once (signature wipes of new partitions happen during write(), BEFORE the new table is on the
// disk). syncKernel() then makes the kernel's partitions equal to the written table and verifies
// the result in sysfs. Units are LOGICAL SECTORS of the device (512 or 4096 bytes), as in GPT.
//
// An object belongs to one operation on one disk: it is not thread-safe and callers serialize
// operations on a disk themselves (the partition engine's per-disk mutex). Everything here is
// BLOCKING (device I/O, fsync, ioctls): run it on the blocking pool, never on an io thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "agent/os/kernel_partition.h"

namespace carina::os {

/** One used slot of a partition table. */
struct PartitionEntry {
  uint32_t partno = 0;    // 0-based slot; the kernel's partition number is partno + 1
  uint64_t start = 0;     // first sector (logical sectors)
  uint64_t size = 0;      // length in logical sectors
  std::string type_guid;  // upper-case GUID, "191E5935-836C-43B3-B969-969701DCB0D7"
  std::string name;       // GPT partition name (UTF-8)
  uint64_t end() const { return start + size; }  // one past the last sector
  friend bool operator==(const PartitionEntry&, const PartitionEntry&) = default;
};

/** The table as read (or as edited so far in memory). */
struct TableInfo {
  std::string label;           // "gpt", "dos", ...; "" when the device has no partition table
  uint32_t sector_size = 512;  // logical sector size in bytes
  uint64_t total_sectors = 0;  // device size in logical sectors
  /** First and last (inclusive) sector a partition may use. For a device without a label these
   *  are the values a new GPT would have: 1 MiB, and the end minus the backup GPT. */
  uint64_t first_usable = 0;
  uint64_t last_usable = 0;
  std::vector<PartitionEntry> partitions;  // used slots, sorted by start
  bool hasLabel() const { return !label.empty(); }
  bool isGpt() const { return label == "gpt"; }
};

/** What syncKernel() changed. */
struct KernelSyncReport {
  std::vector<uint32_t> added;    // kernel numbers
  std::vector<uint32_t> removed;  // kernel numbers
  std::vector<uint32_t> resized;  // kernel numbers
  bool changed() const { return !added.empty() || !removed.empty() || !resized.empty(); }
};

/** A new partition: explicit start and size, nothing is chosen by the library. */
struct NewPartition {
  std::optional<uint32_t> partno;  // 0-based slot; nullopt = lowest free slot
  uint64_t start = 0;              // logical sectors
  uint64_t size = 0;               // logical sectors
  std::string type_guid;
  std::string name;
};

/** "/dev/sdb" + 3 -> "/dev/sdb3"; "/dev/loop7" or "/dev/nvme0n1" + 3 -> ".../loop7p3" (a "p"
 *  when the disk name ends in a digit). @p number is the 1-based kernel partition number. */
inline std::string partitionDevnode(const std::string& disk_devnode, uint32_t number) {
  const bool digit =
      !disk_devnode.empty() && disk_devnode.back() >= '0' && disk_devnode.back() <= '9';
  return disk_devnode + (digit ? "p" : "") + std::to_string(number);
}

class PartitionTable {
public:
  virtual ~PartitionTable() = default;

  /** The device or image path this table was opened on. */
  virtual const std::string& path() const = 0;

  /** The table including unwritten in-memory edits. Cheap (no I/O). Never fails on a device
   *  without a label (label == ""). */
  virtual absl::StatusOr<TableInfo> read() = 0;

  /** Replaces the in-memory table with an empty GPT (write() commits it).
   *  @return FailedPrecondition when the device already has a label (we never relabel a disk
   *          that has one), Internal on library errors. */
  virtual absl::Status createGptLabel() = 0;

  /** Adds a partition exactly as given, in memory. The result is read back: any change of
   *  start or size (libfdisk silently aligns and clamps) is undone and reported.
   *  @return the 0-based slot. FailedPrecondition without a GPT label; InvalidArgument for a
   *          zero size or a bad GUID/name; OutOfRange when the range is outside the usable area,
   *          overlaps a partition or would be clamped; AlreadyExists when the slot is used. */
  virtual absl::StatusOr<uint32_t> addPartition(const NewPartition& partition) = 0;

  /** Deletes slot @p partno in memory. NotFound when the slot is unused. Slots are not
   *  renumbered. */
  virtual absl::Status deletePartition(uint32_t partno) = 0;

  /** Changes the size of slot @p partno in memory; start, type and name are kept.
   *  @return NotFound (unused slot), OutOfRange (overlap or beyond the usable area, or the result
   *          read back differs), InvalidArgument (size 0). */
  virtual absl::Status resizePartition(uint32_t partno, uint64_t new_size) = 0;

  /** Schedules a wipe of all known filesystem/RAID/LVM signatures inside slot @p partno; it runs
   *  during write(), before the table itself is written. NotFound for an unused slot. */
  virtual absl::Status wipePartition(uint32_t partno) = 0;

  /** Writes the in-memory table (and pending wipes) to the device and fsyncs it. OK and no I/O
   *  when there is nothing to write. Internal/errno codes on I/O errors. */
  virtual absl::Status write() = 0;

  /** True when there is a kernel view to keep in sync (a block device); false for image files. */
  virtual bool hasKernelView() const = 0;

  /** The kernel's partitions of this device, from /sys/class/block/<disk>/<part>/{partition,
   *  start,size}, sorted by number. Empty for image files. */
  virtual absl::StatusOr<std::vector<KernelPartition>> kernelPartitions() = 0;

  /** Makes the kernel's view equal to the WRITTEN table: BLKPG deletes of stale partitions
   *  (kernel only, or at another start), resizes, then adds of missing ones; then re-reads sysfs
   *  and verifies every partition (number, start, size) and that nothing else is left.
   *  Idempotent: with nothing to change it issues no ioctl. This is both "tell the kernel after a
   *  write" and the start-up repair after a crash. No-op for image files.
   *  @return FailedPrecondition when there are unwritten edits or a stale partition is in use
   *          (EBUSY), Internal when sysfs does not show the expected result after the ioctls
   *          (message lists the differences). */
  virtual absl::StatusOr<KernelSyncReport> syncKernel() = 0;

  /** Whether the kernel partition for slot @p partno is in use (mounted, held by dm/md, or open
   *  O_EXCL elsewhere): an O_EXCL open of its device node fails with EBUSY. False when the
   *  kernel does not know the partition or for image files. */
  virtual absl::StatusOr<bool> partitionInUse(uint32_t partno) = 0;

  /** The device node of slot @p partno ("/dev/loop3p1"). */
  virtual std::string partitionPath(uint32_t partno) const = 0;
};

using PartitionTablePtr = std::unique_ptr<PartitionTable>;

/** Opens partition tables. Thread-safe: may be called from several threads for different
 *  devices. */
class PartitionTableFactory {
public:
  virtual ~PartitionTableFactory() = default;

  /** Opens @p path (a block device node or a regular image file) read-write and reads its
   *  table. Blocking. The device is NOT opened O_EXCL (it must stay usable while partitions are
   *  mounted): callers serialize per disk.
   *  @return NotFound (no such device), PermissionDenied, Internal (unreadable table). */
  virtual absl::StatusOr<PartitionTablePtr> open(const std::string& path) = 0;

  /** The caller no longer uses @p path (the disk went away or is no longer managed): drop any
   *  per-device state (the production factory keeps one read-only fd per block device open so
   *  that the kernel keeps the device's page cache between operations; without it every open
   *  re-reads the GPT and libfdisk's probes from the disk). Thread-safe. */
  virtual void forget(const std::string& path) { (void)path; }
};

using PartitionTableFactoryPtr = std::shared_ptr<PartitionTableFactory>;

}  // namespace carina::os
