#pragma once

// PartitionTable on libfdisk (util-linux 2.38) plus BLKPG ioctls and sysfs verification.
// See docs/partition-engine.md and TOOLCHAIN.md §3 for the libfdisk facts this relies on.

#include <string>

#include <absl/status/statusor.h>

#include "agent/os/partition_table.h"

namespace carina::os {

/** Opens @p path (block device or regular image file) with libfdisk. Blocking. */
absl::StatusOr<PartitionTablePtr> openFdiskPartitionTable(const std::string& path);

/** The production factory (calls openFdiskPartitionTable). */
PartitionTableFactoryPtr makeFdiskPartitionTableFactory();

}  // namespace carina::os
