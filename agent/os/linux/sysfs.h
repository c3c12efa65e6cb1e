#pragma once

// Small readers for sysfs/procfs files (/sys/class/block/<dev>/size, ...). Shared by discovery
// and the partition engine. Synchronous: sysfs reads do not block on I/O.

#include <cstdint>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

namespace carina::os {

/** Whole file contents, trailing newline removed. NotFound when missing. */
absl::StatusOr<std::string> readSysfs(const std::string& path);
/** The file parsed as an unsigned decimal number. */
absl::StatusOr<uint64_t> readSysfsU64(const std::string& path);
/** Entry names of a directory (without . and ..), sorted. NotFound when missing. */
absl::StatusOr<std::vector<std::string>> listDir(const std::string& path);

/** sysfs root, "/sys" unless overridden for tests. */
std::string sysRoot();
void setSysRootForTest(std::string root);

}  // namespace carina::os
