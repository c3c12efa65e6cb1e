#pragma once

// A partition as the kernel knows it (/sys/class/block/<disk>/<part>): shared by discovery
// (holders, mounts of a disk's partitions) and the partition engine (BLKPG sync, verification).

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace carina::os {

struct KernelPartition {
  KernelPartition() = default;
  KernelPartition(uint32_t number_in, std::string name_in, uint64_t start, uint64_t size)
      : number(number_in), name(std::move(name_in)), start_bytes(start), size_bytes(size) {}

  uint32_t number = 0;       // 1-based kernel partition number (sysfs "partition" = partno + 1)
  std::string name;          // "loop3p1", "sdb1"
  uint64_t start_bytes = 0;  // sysfs start * 512
  uint64_t size_bytes = 0;   // sysfs size * 512
  uint32_t major = 0;
  uint32_t minor = 0;
  std::vector<std::string> holders;       // /sys/class/block/<part>/holders
  std::vector<std::string> mount_points;  // where it is mounted (mountinfo, by major:minor)

  friend bool operator==(const KernelPartition&, const KernelPartition&) = default;
};

}  // namespace carina::os
