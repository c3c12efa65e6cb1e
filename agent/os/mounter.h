#pragma once

// The kernel mount table: mount(2), bind mounts, umount2(2), and what is mounted where (from
// /proc/self/mountinfo), plus the few stat-like queries the CSI node service needs (statvfs,
// block device size). Filesystem tools (blkid, mkfs, growfs) are run through CommandRunner by
// their callers. Production: os/linux/linux_mounter.h; fake: tests/fakes/fake_mounter.h.
//
// Every method is BLOCKING (mount(2) can wait on I/O): call it from the blocking pool through
// carina::runBlocking. All methods are thread-safe. Paths are absolute.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

namespace carina::os {

/** One mount as the node service sees it. */
struct MountPoint {
  std::string path;     // the mount point
  std::string device;   // the block device behind it ("/dev/loop3"); for a bind mount of a
                        // device node (block volume) the device node itself
  std::string fs_type;  // "ext4", "xfs"; "devtmpfs" for a bound device node
  bool readonly = false;
  bool device_node = false;  // a block device node bound onto a file (block volume)
};

struct FsStats {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;  // for unprivileged users (f_bavail)
  uint64_t used_bytes = 0;       // total - free
  uint64_t total_inodes = 0;
  uint64_t free_inodes = 0;
  uint64_t used_inodes = 0;
};

class Mounter {
public:
  virtual ~Mounter() = default;

  /**
   * Mounts the filesystem on @p device at @p target (an existing directory) with @p fs_type.
   * @p options are mount(8) style flags: the generic ones (ro, noatime, nodev, nosuid, noexec,
   * sync, dirsync, relatime, nodiratime, strictatime, lazytime) become MS_* bits; the rest is
   * passed as the filesystem's data string. Not idempotent: the caller checks findMount() first.
   * @return InvalidArgument (bad option), NotFound (device or target missing),
   *         FailedPrecondition (EBUSY), PermissionDenied, Internal; the message has the errno.
   */
  virtual absl::Status mount(const std::string& device, const std::string& target,
                             const std::string& fs_type,
                             const std::vector<std::string>& options) = 0;

  /**
   * Bind-mounts @p source (a directory, or a block device node for block volumes) onto
   * @p target (an existing directory, or an existing regular file for a device node). With
   * @p readonly the bind is remounted read-only (MS_REMOUNT|MS_BIND|MS_RDONLY); if that fails
   * the bind is undone. Errors as mount().
   */
  virtual absl::Status bindMount(const std::string& source, const std::string& target,
                                 bool readonly) = 0;

  /** Unmounts @p target (the topmost mount there). OK when nothing is mounted there or the path
   *  does not exist (idempotent). FailedPrecondition when busy (EBUSY). */
  virtual absl::Status unmount(const std::string& target) = 0;

  /** The topmost mount whose mount point is exactly @p path; nullopt when @p path is not a
   *  mount point. Internal when the mount table cannot be read. */
  virtual absl::StatusOr<std::optional<MountPoint>> findMount(const std::string& path) = 0;

  /** Every mount of @p device (its filesystem mounted anywhere, or its node bound onto a file).
   *  Empty when none or when the device does not exist. */
  virtual absl::StatusOr<std::vector<MountPoint>> mountsOfDevice(const std::string& device) = 0;

  /** statvfs(@p path). NotFound when missing. */
  virtual absl::StatusOr<FsStats> statFs(const std::string& path) = 0;

  /** True when @p device exists and is a block device node. */
  virtual bool isBlockDevice(const std::string& device) = 0;

  /** Size of the block device in bytes (BLKGETSIZE64). NotFound when it does not exist,
   *  InvalidArgument when it is not a block device. */
  virtual absl::StatusOr<uint64_t> blockDeviceSize(const std::string& device) = 0;
};

using MounterPtr = std::unique_ptr<Mounter>;

}  // namespace carina::os
