#pragma once

// Plain data shared by discovery, the partition engine, the extender and CSI. No OS headers.

#include <cstdint>
#include <string>
#include <vector>

#include "agent/core/config.h"

namespace carina::storage {

/** A whole disk as discovery sees it. */
struct DiskInfo {
  std::string name;     // kernel name: "sdb", "nvme0n1", "loop3"
  std::string devnode;  // "/dev/sdb"
  std::string group;    // the diskSelector that matched; "" when none
  core::DiskPolicy policy = core::DiskPolicy::Raw;
  uint64_t size_bytes = 0;
  uint32_t logical_sector_size = 512;
  bool eligible = false;
  std::string reason;             // why the disk is not eligible; empty when eligible
  bool has_carina_label = false;  // a GPT whose partitions (if any) are all carina's

  friend bool operator==(const DiskInfo&, const DiskInfo&) = default;
};

/** A byte range on a disk. */
struct Segment {
  uint64_t start = 0;
  uint64_t length = 0;
  uint64_t end() const { return start + length; }
  friend bool operator==(const Segment&, const Segment&) = default;
};

/** The allocatable space of one disk: what placement works on. */
struct DiskSpace {
  std::string name;           // disk kernel name
  uint64_t size_bytes = 0;    // whole disk
  std::vector<Segment> free;  // allocatable free segments, 1 MiB aligned, sorted by start
  uint32_t partitions = 0;    // carina partitions on the disk
  bool exclusive = false;     // holds an exclusive volume: nothing else may be placed on it
  friend bool operator==(const DiskSpace&, const DiskSpace&) = default;
};

/** Per-disk view for the rest of the agent (carinactl disks, NodeStorageResource). */
struct DiskSnapshot {
  DiskInfo info;
  DiskSpace space;  // empty for ineligible disks
  uint64_t largest_free_bytes = 0;
};

/** Per-group view. For RAW groups free = sum of free segments and largest_allocatable = the
 *  largest single segment; exclusive-free counts disks with no partition. */
struct GroupSnapshot {
  std::string name;
  core::DiskPolicy policy = core::DiskPolicy::Raw;
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t largest_allocatable_bytes = 0;
  uint32_t empty_disks = 0;
  std::vector<DiskSnapshot> disks;
};

struct InventorySnapshot {
  std::vector<GroupSnapshot> groups;
  std::vector<DiskInfo> unassigned;  // matched by no group, or matched but ineligible
  uint64_t generation = 0;           // increases with every change
};

}  // namespace carina::storage
