#pragma once

// Sample inventory and volume shared by the cluster object tests (conversions, CRD schema).

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "agent/core/constants.h"
#include "agent/storage/disk_types.h"
#include "agent/storage/volume_backend.h"

namespace carina::cluster::test {

inline storage::DiskSnapshot sampleDisk(const std::string& name, uint64_t size,
                                        std::vector<storage::Segment> free, uint32_t partitions,
                                        bool exclusive, bool eligible = true) {
  storage::DiskSnapshot d;
  d.info.name = name;
  d.info.devnode = "/dev/" + name;
  d.info.group = "raw-ssd";
  d.info.size_bytes = size;
  d.info.eligible = eligible;
  if (!eligible) {
    d.info.reason = "has a filesystem signature (ext4)";
    return d;
  }
  d.space.name = name;
  d.space.size_bytes = size;
  d.space.free = std::move(free);
  d.space.partitions = partitions;
  d.space.exclusive = exclusive;
  for (const auto& s : d.space.free) {
    d.largest_free_bytes = std::max(d.largest_free_bytes, s.length);
  }
  return d;
}

/** A RAW group (two eligible disks, one ineligible) and an LVM group. */
inline storage::InventorySnapshot sampleInventory() {
  storage::InventorySnapshot inv;
  storage::GroupSnapshot raw;
  raw.name = "raw-ssd";
  raw.policy = core::DiskPolicy::Raw;
  raw.total_bytes = 300 * kGiB;
  raw.free_bytes = 250 * kGiB;
  raw.largest_allocatable_bytes = 200 * kGiB;
  raw.empty_disks = 1;
  raw.disks.push_back(
      sampleDisk("sdb", 100 * kGiB, {{kMiB, 10 * kGiB}, {60 * kGiB, 40 * kGiB - kMiB}}, 2, false));
  raw.disks.push_back(sampleDisk("sdc", 200 * kGiB, {{kMiB, 200 * kGiB - 2 * kMiB}}, 0, false));
  raw.disks.push_back(sampleDisk("sdz", 50 * kGiB, {}, 0, false, false));
  inv.groups.push_back(std::move(raw));

  storage::GroupSnapshot lvm;
  lvm.name = "vg-hdd";
  lvm.policy = core::DiskPolicy::Lvm;
  lvm.total_bytes = 500 * kGiB;
  lvm.free_bytes = 123 * kGiB;
  lvm.largest_allocatable_bytes = 123 * kGiB;
  inv.groups.push_back(std::move(lvm));
  inv.generation = 9;
  return inv;
}

inline storage::Volume sampleVolume() {
  storage::Volume v;
  v.id = storage::volumeIdForName("pvc-0b7c1e2a-8f7d-4c36-9a55-3f1d2e4c5b6a");
  v.group = "raw-ssd";
  v.disk = "sdb";
  v.device = "/dev/sdb3";
  v.size_bytes = 10 * kGiB;
  v.max_bytes = 10 * kGiB;
  return v;
}

}  // namespace carina::cluster::test
