#pragma once

// Builders for extender tests: disks, groups, StorageClasses and pods.

#include <string>
#include <vector>

#include "agent/core/constants.h"
#include "extender/cluster_view.h"
#include "extender/scoring.h"

namespace carina::extender::testing {

constexpr uint64_t GiB = kGiB;
constexpr uint64_t MiB = kMiB;

/** A disk of @p size with the given free segments (byte offsets/lengths). */
inline storage::DiskSpace disk(std::string name, uint64_t size, std::vector<storage::Segment> free,
                               uint32_t partitions = 0, bool exclusive = false) {
  storage::DiskSpace d;
  d.name = std::move(name);
  d.size_bytes = size;
  d.free = std::move(free);
  d.partitions = partitions;
  d.exclusive = exclusive;
  return d;
}

/** An empty disk: one free segment from 1 MiB to size - 1 MiB. */
inline storage::DiskSpace emptyDisk(std::string name, uint64_t size) {
  return disk(std::move(name), size, {{MiB, size - 2 * MiB}});
}

inline GroupSupply rawGroup(std::string name, std::vector<storage::DiskSpace> disks) {
  GroupSupply g;
  g.name = std::move(name);
  g.policy = core::DiskPolicy::Raw;
  g.disks = std::move(disks);
  return g;
}

inline GroupSupply lvmGroup(std::string name, uint64_t size, uint64_t free) {
  GroupSupply g;
  g.name = std::move(name);
  g.policy = core::DiskPolicy::Lvm;
  g.vg_size_bytes = size;
  g.vg_free_bytes = free;
  return g;
}

inline NodeSupply node(std::string name, std::vector<GroupSupply> groups) {
  return NodeSupply{std::move(name), std::move(groups)};
}

inline StorageClass carinaClass(std::string name, std::map<std::string, std::string> params) {
  return StorageClass{std::move(name), std::string(kDriverName), std::move(params)};
}

inline Claim claim(std::string name, std::string sc, uint64_t bytes, std::string ns = "default") {
  Claim c;
  c.ns = std::move(ns);
  c.name = std::move(name);
  c.storage_class = std::move(sc);
  c.request_bytes = bytes;
  return c;
}

inline Pod pod(std::string name, std::vector<std::string> claims) {
  Pod p;
  p.name = std::move(name);
  p.uid = "uid-" + p.name;
  for (std::size_t i = 0; i < claims.size(); ++i) {
    p.volumes.push_back(PodVolume{"v" + std::to_string(i), claims[i], std::nullopt});
  }
  return p;
}

/** The usual classes: raw (group ssd), raw exclusive, lvm (group vg), another driver's. */
inline void addClasses(InMemoryClusterView& view) {
  view.upsertStorageClass(carinaClass("raw", {{"carina.storage.io/disk-group-name", "ssd"}}));
  view.upsertStorageClass(
      carinaClass("raw-excl", {{"carina.storage.io/disk-group-name", "ssd"},
                               {"carina.storage.io/exclusivity-disk", "true"}}));
  view.upsertStorageClass(
      carinaClass("raw-excl-carina", {{"carina.storage.io/disk-type", "ssd"},
                                      {"carina.storage.io/exclusively-raw-disk", "true"}}));
  view.upsertStorageClass(carinaClass("lvm", {{"carina.storage.io/disk-group-name", "vg"}}));
  view.upsertStorageClass(carinaClass("nogroup", {}));
  view.upsertStorageClass(StorageClass{"other", "ebs.csi.aws.com", {}});
}

}  // namespace carina::extender::testing
