#pragma once

// Placement: the one model of "where does a volume go" shared by the partition engine
// (CreateVolume) and the scheduler extender (filter/score), so that the extender never promises
// what CreateVolume then refuses. Pure functions on DiskSpace values; sizes are bytes and every
// allocation is a multiple of 1 MiB starting on a 1 MiB boundary.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include "agent/storage/disk_types.h"

namespace carina::storage {

inline constexpr uint64_t kAlignment = 1024ULL * 1024ULL;

/** @p bytes rounded up to a multiple of 1 MiB (0 stays 0). Inline: the extender's best-fit
 *  loops call these for every segment of every candidate node. */
constexpr uint64_t alignUp(uint64_t bytes) {
  return (bytes + kAlignment - 1) / kAlignment * kAlignment;
}
/** @p bytes rounded down to a multiple of 1 MiB. */
constexpr uint64_t alignDown(uint64_t bytes) { return bytes / kAlignment * kAlignment; }

struct Demand {
  std::string id;          // PVC or volume name, for messages
  uint64_t bytes = 0;      // rounded up to 1 MiB by placement
  bool exclusive = false;  // needs an empty disk of its own
};

struct Placement {
  std::string demand_id;
  std::size_t disk_index = 0;  // index into the DiskSpace list given
  std::string disk;
  uint64_t offset = 0;  // byte offset of the new partition
  uint64_t bytes = 0;   // aligned size
  friend bool operator==(const Placement&, const Placement&) = default;
};

/** Where a best fit lands, by disk index only: what bestFitShared/bestFitExclusive compute before
 *  naming the disk (the scheduler extender runs this for every candidate node of a request and
 *  needs no names). */
struct Fit {
  std::size_t disk_index = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;  // aligned size
};

/** Best fit for a shared volume: the smallest free segment that holds alignUp(bytes), over all
 *  non-exclusive disks; ties go to the earlier disk, then the lower offset. The volume is placed
 *  at the start of the segment. nullopt when nothing fits. */
std::optional<Fit> fitShared(std::span<const DiskSpace> disks, uint64_t bytes);
/** Best fit for an exclusive volume: the smallest disk with no partitions whose usable space
 *  holds alignUp(bytes); placed at the start of its first free segment. */
std::optional<Fit> fitExclusive(std::span<const DiskSpace> disks, uint64_t bytes);

/** fitShared / fitExclusive as a Placement (with the disk's name). */
std::optional<Placement> bestFitShared(std::span<const DiskSpace> disks, uint64_t bytes);
std::optional<Placement> bestFitExclusive(std::span<const DiskSpace> disks, uint64_t bytes);

/** Marks a fit as taken in @p disks: shared fits split their segment, exclusive ones take the
 *  whole disk. */
void consume(std::vector<DiskSpace>& disks, const Fit& fit, bool exclusive);
void consume(std::vector<DiskSpace>& disks, const Placement& placement, bool exclusive);

/** Places all @p demands at once: exclusive demands first (largest first, each on the smallest
 *  empty disk that fits), then shared demands best-fit-decreasing. Returns one placement per
 *  demand in the order given, or ResourceExhausted naming the first demand that does not fit. */
absl::StatusOr<std::vector<Placement>> placeAll(std::vector<DiskSpace> disks,
                                                const std::vector<Demand>& demands);

/** The ResourceExhausted error for demand @p d that does not fit in @p disks (what placeAll
 *  returns for the first demand it cannot place). */
absl::Status notPlaced(std::span<const DiskSpace> disks, const Demand& d);
/** notPlaced()'s message, appended to @p out. */
void appendNotPlaced(std::string& out, std::span<const DiskSpace> disks, const Demand& d);

/** Free bytes of the one disk @p disk (all of its segments). */
uint64_t usableBytes(const DiskSpace& disk);
/** Sum of free bytes over non-exclusive disks. */
uint64_t freeBytes(std::span<const DiskSpace> disks);
/** The largest single free segment over non-exclusive disks. */
uint64_t largestFreeSegment(std::span<const DiskSpace> disks);

/** "1.5GiB"-style rendering for messages. */
std::string formatBytes(uint64_t bytes);

}  // namespace carina::storage
