#pragma once

// Private to csi/: what a volume's device holds (blkid -p through the command runner) and how a
// failed external command is described. Shared by the Controller (a repeated CreateVolume must
// not hand out a volume formatted with another filesystem) and the Node service (formats only
// blank devices).

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

#include "agent/os/command_runner.h"

namespace carina::csi {

/** The content signature of a block device. */
struct DeviceContent {
  std::string type;    // blkid TYPE: "xfs", "ext4", "LVM2_member", ... ("" = none)
  std::string pttype;  // blkid PTTYPE: a nested partition table ("" = none)

  bool blank() const { return type.empty() && pttype.empty(); }
  /** "a xfs filesystem", "a gpt partition table", "nothing". */
  std::string describe() const;
};

/** Probes @p device with `blkid -p` (low-level superblock probing, no cache). The partition's
 *  own GPT entry (PART_ENTRY_*) is not content. Blocking: call on the blocking pool. */
absl::StatusOr<DeviceContent> probeDeviceContent(os::CommandRunner& runner,
                                                 const std::string& device,
                                                 std::chrono::milliseconds timeout);

/** "<tool> exited with N: <its diagnostics on one line>". */
std::string commandError(const std::vector<std::string>& argv, const os::CommandResult& r);

}  // namespace carina::csi
