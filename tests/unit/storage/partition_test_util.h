#pragma once

// Shared helpers of the partition engine unit tests.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/core/constants.h"
#include "agent/storage/disk_types.h"
#include "agent/storage/partition_engine.h"
#include "tests/fakes/fake_partition_table.h"

namespace carina::test::partition {

inline constexpr uint64_t MiB = 1024ULL * 1024ULL;
inline constexpr uint64_t GiB = 1024ULL * MiB;

inline storage::DiskInfo diskInfo(const std::string& name, uint64_t bytes,
                                  const std::string& group = "raw", uint32_t sector = 512) {
  storage::DiskInfo d;
  d.name = name;
  d.devnode = "/dev/" + name;
  d.group = group;
  d.policy = core::DiskPolicy::Raw;
  d.size_bytes = bytes;
  d.logical_sector_size = sector;
  d.eligible = true;
  return d;
}

inline storage::VolumeSpec spec(const std::string& name, uint64_t bytes, bool exclusive = false,
                                const std::string& group = "") {
  storage::VolumeSpec s;
  s.name = name;
  s.required_bytes = bytes;
  s.exclusive = exclusive;
  s.group = group;
  return s;
}

/** Checks the invariants every state must satisfy: partitions sorted without overlap inside
 *  the usable area, all ours, unique names, and the kernel view equal to the table. */
inline void checkConsistent(const FakeDisk& d) {
  auto parts = d.partitions;
  std::sort(parts.begin(), parts.end(),
            [](const auto& a, const auto& b) { return a.start < b.start; });
  std::set<std::string> names;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    INFO("partition " << parts[i].name);
    CHECK(parts[i].start >= FakePartitionTableFactory::firstUsable(d));
    CHECK(parts[i].end() - 1 <= FakePartitionTableFactory::lastUsable(d));
    CHECK((parts[i].start * d.sector_size) % MiB == 0);
    CHECK((parts[i].size * d.sector_size) % MiB == 0);
    if (i > 0) {
      CHECK(parts[i - 1].end() <= parts[i].start);
    }
    CHECK(names.insert(parts[i].name).second);
  }
  std::vector<os::KernelPartition> want;
  for (const auto& e : d.partitions) {
    want.push_back({e.partno + 1, FakePartitionTableFactory::kernelName(d.devnode, e.partno + 1),
                    e.start * d.sector_size, e.size * d.sector_size});
  }
  std::sort(want.begin(), want.end(),
            [](const auto& a, const auto& b) { return a.number < b.number; });
  CHECK(d.kernel == want);
}

}  // namespace carina::test::partition
