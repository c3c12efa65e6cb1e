#pragma once

// Is a block device in use? The orphan reconciler asks before it deletes a volume (never delete
// what is mounted, held or open). Blocking (opens the device, reads /proc and /sys): call it on
// the blocking pool.

#include <string>

#include <absl/status/statusor.h>

namespace carina::os {

struct DeviceUse {
  bool in_use = false;
  std::string reason;  // why it is in use ("mounted at /mnt/x", "holders: dm-0", ...)
};

/**
 * Checks, in this order, and stops at the first hit:
 * 1. holders: /sys/dev/block/<maj:min>/holders is not empty (dm, md, bcache on top of it);
 * 2. mounts in our mount namespace (/proc/self/mountinfo): a filesystem of the device, or the
 *    device node itself bind-mounted somewhere (CSI raw block volumes are published that way);
 * 3. an exclusive claim: open(O_RDONLY|O_EXCL) fails with EBUSY when the device is mounted in
 *    ANY mount namespace, or claimed by the kernel (dm/md member, swap);
 * 4. open file descriptors of any process (links in /proc/<pid>/fd pointing at the device: a pod
 * using a raw block volume, dd, a loop device setup in progress). Unreadable processes are skipped.
 * Follows symlinks (/dev/vg/lv, /dev/disk/by-id/...).
 * @return NotFound when @p devnode does not exist, InvalidArgument when it is not a block
 *         device, other errno-derived codes when the device cannot be opened.
 */
absl::StatusOr<DeviceUse> checkBlockDeviceUse(const std::string& devnode);

/** checkBlockDeviceUse(devnode)->in_use. */
absl::StatusOr<bool> blockDeviceInUse(const std::string& devnode);

}  // namespace carina::os
