#pragma once

// Block devices as discovery sees them: facts read from sysfs, /proc/self/mountinfo and on-disk
// signatures, plus a stream of hot-plug events. Interfaces only; the production implementations
// are libudev (agent/os/linux/udev_block_devices.h) and libblkid (agent/os/linux/blkid_probe.h),
// the fakes live in tests/fakes/fake_block_devices.h. Nothing here ever writes to a device.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include "agent/os/kernel_partition.h"

namespace carina::os {

/** Facts about one whole disk (devtype "disk"), read without opening the device. */
struct BlockDeviceFacts {
  std::string name;     // kernel name: "sdb", "nvme0n1", "loop7"
  std::string devnode;  // "/dev/sdb"
  uint32_t major = 0;
  uint32_t minor = 0;
  uint64_t size_bytes = 0;  // sysfs size x 512; 0 = no medium (e.g. a detached loop device)
  uint32_t logical_sector_size = 512;     // queue/logical_block_size
  bool read_only = false;                 // sysfs ro
  bool removable = false;                 // sysfs removable (reported only, not a rule)
  std::vector<std::string> holders;       // /sys/class/block/<disk>/holders ("dm-0")
  std::vector<std::string> mount_points;  // the disk itself mounted (by major:minor or source)
  std::vector<KernelPartition> partitions;

  friend bool operator==(const BlockDeviceFacts&, const BlockDeviceFacts&) = default;
};

/** One partition of an on-disk partition table, as libblkid reads it. */
struct TablePartition {
  uint32_t number = 0;  // 1-based, as the kernel names it (loop7p<number>)
  std::string type;     // GPT: type GUID, upper case; MBR: "0x83"
  std::string name;     // GPT partition name ("" for MBR)
  uint64_t start_bytes = 0;
  uint64_t size_bytes = 0;

  friend bool operator==(const TablePartition&, const TablePartition&) = default;
};

/** What is written on a device: superblock signatures and the partition table. */
struct DeviceSignatures {
  std::string type;         // blkid TYPE: "ext4", "xfs", "LVM2_member", "crypto_LUKS", "swap",
                            // "linux_raid_member", ...; "" when none
  std::string usage;        // blkid USAGE: "filesystem", "raid", "crypto", "other"; "" when none
  bool ambivalent = false;  // more than one signature (blkid_do_safeprobe returned -2)
  std::string pttype;       // "gpt", "dos", "PMBR", ...; "" when no partition table
  std::vector<TablePartition> partitions;

  bool empty() const { return type.empty() && !ambivalent && pttype.empty(); }
  friend bool operator==(const DeviceSignatures&, const DeviceSignatures&) = default;
};

enum class BlockEventAction { Add, Remove, Change, Other };

/** One hot-plug event (a kernel uevent of subsystem "block"). */
struct BlockDeviceEvent {
  BlockEventAction action = BlockEventAction::Other;
  std::string name;  // "loop7", "loop7p1", "dm-0"
  bool partition = false;

  friend bool operator==(const BlockDeviceEvent&, const BlockDeviceEvent&) = default;
};

/**
 * Lists block devices and delivers hot-plug events.
 *
 * The event side is fd-based so that the async layer can wait on it without a thread:
 * startMonitor() once, then wait until monitorFd() is readable (boost::asio
 * posix::stream_descriptor::async_wait(wait_read) on a dup() of it) and call drainEvents().
 * Start the monitor before the first enumerate() so that nothing happening in between is
 * missed.
 *
 * Thread affinity: enumerate() may run on any thread (it creates its own libudev context) and
 * concurrently with drainEvents(); startMonitor(), monitorFd() and drainEvents() must be called
 * from one strand.
 */
class BlockDeviceSource {
public:
  virtual ~BlockDeviceSource() = default;

  /**
   * Opens the event monitor. Idempotent: a second call is a no-op.
   * @return Unavailable if no monitor could be opened (netlink refused); discovery then relies
   *         on the periodic rescan only.
   */
  virtual absl::Status startMonitor() = 0;

  /**
   * A file descriptor that becomes readable when events are pending; -1 before startMonitor()
   * or when it failed. Owned by the source: callers may dup() it but never close it.
   */
  virtual int monitorFd() const = 0;

  /**
   * Returns the events received so far, without blocking; empty when none. Events of every
   * block device (not just matched ones) are returned: holders (dm, md) appear as new devices.
   */
  virtual std::vector<BlockDeviceEvent> drainEvents() = 0;

  /**
   * Lists every whole disk with its partitions, holders and mount points. Partitions are not
   * listed on their own. Blocking (sysfs and /proc reads), but it never opens a device.
   * @return Internal/Unavailable when the device list cannot be read at all; a device whose
   *         attributes vanish while reading (hot-unplug) is skipped, not an error.
   */
  virtual absl::StatusOr<std::vector<BlockDeviceFacts>> enumerate() = 0;
};
using BlockDeviceSourcePtr = std::unique_ptr<BlockDeviceSource>;

/**
 * Reads signatures and the partition table of a device (libblkid in production). Opens the
 * device read-only and never writes to it. Blocking: run it on a thread pool. Thread-safe.
 */
class SignatureProber {
public:
  virtual ~SignatureProber() = default;

  /**
   * Probes @p devnode ("/dev/sdb").
   * @return the signatures found (DeviceSignatures::empty() when none); NotFound when the device
   *         is gone, PermissionDenied when it cannot be opened, Internal when libblkid fails.
   */
  virtual absl::StatusOr<DeviceSignatures> probe(const std::string& devnode) = 0;
};
using SignatureProberPtr = std::unique_ptr<SignatureProber>;

}  // namespace carina::os
