#pragma once

// Mounter on mount(2) / umount2(2), /proc/self/mountinfo (parsed by core/mountinfo.h), statvfs
// and BLKGETSIZE64.

#include <string>

#include "agent/os/mounter.h"

namespace carina::os {

class LinuxMounter : public Mounter {
public:
  /** @param mountinfo_path the mount table to read; tests may point it elsewhere. */
  explicit LinuxMounter(std::string mountinfo_path = "/proc/self/mountinfo");

  // Mounter
  absl::Status mount(const std::string& device, const std::string& target,
                     const std::string& fs_type, const std::vector<std::string>& options) override;
  absl::Status bindMount(const std::string& source, const std::string& target,
                         bool readonly) override;
  absl::Status unmount(const std::string& target) override;
  absl::StatusOr<std::optional<MountPoint>> findMount(const std::string& path) override;
  absl::StatusOr<std::vector<MountPoint>> mountsOfDevice(const std::string& device) override;
  absl::StatusOr<FsStats> statFs(const std::string& path) override;
  bool isBlockDevice(const std::string& device) override;
  absl::StatusOr<uint64_t> blockDeviceSize(const std::string& device) override;

private:
  std::string mountinfo_path_;
};

/** Splits mount(8) style options into MS_* flags and the data string. InvalidArgument for
 *  options that must not come from a request (bind, rbind, remount, move, shared, ...). Exposed
 *  for tests. */
absl::Status splitMountOptions(const std::vector<std::string>& options, unsigned long& flags,
                               std::string& data);

}  // namespace carina::os
