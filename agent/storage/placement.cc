#include "agent/storage/placement.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace carina::storage {

uint64_t alignUp(uint64_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

uint64_t alignDown(uint64_t bytes) { return bytes / kAlignment * kAlignment; }

namespace {

uint64_t usableBytes(const DiskSpace& disk) {
  uint64_t sum = 0;
  for (const Segment& s : disk.free) {
    sum += s.length;
  }
  return sum;
}

bool isEmptyDisk(const DiskSpace& disk) {
  return !disk.exclusive && disk.partitions == 0 && !disk.free.empty();
}

}  // namespace

std::optional<Placement> bestFitShared(std::span<const DiskSpace> disks, uint64_t bytes) {
  const uint64_t need = alignUp(bytes);
  if (need == 0) {
    return std::nullopt;
  }
  // The winner is remembered by index and only turned into a Placement (with its disk name) at
  // the end: the scheduler extender calls this for every node of every request.
  std::size_t best_disk = disks.size();
  uint64_t best_start = 0;
  uint64_t best_len = 0;
  for (std::size_t i = 0; i < disks.size(); ++i) {
    const DiskSpace& d = disks[i];
    if (d.exclusive) {
      continue;
    }
    for (const Segment& s : d.free) {
      // Segments are aligned, but be defensive about what callers hand in.
      uint64_t start = alignUp(s.start);
      if (start >= s.end() || alignDown(s.end()) - start < need) {
        continue;
      }
      uint64_t len = alignDown(s.end()) - start;
      if (best_disk == disks.size() || len < best_len) {
        best_disk = i;
        best_start = start;
        best_len = len;
      }
    }
  }
  if (best_disk == disks.size()) {
    return std::nullopt;
  }
  return Placement{"", best_disk, disks[best_disk].name, best_start, need};
}

std::optional<Placement> bestFitExclusive(std::span<const DiskSpace> disks, uint64_t bytes) {
  const uint64_t need = alignUp(bytes);
  if (need == 0) {
    return std::nullopt;
  }
  std::optional<Placement> best;
  uint64_t best_usable = 0;
  for (std::size_t i = 0; i < disks.size(); ++i) {
    const DiskSpace& d = disks[i];
    if (!isEmptyDisk(d)) {
      continue;
    }
    // An exclusive volume starts at the first free byte and may grow to the end of the disk,
    // so its first segment must hold it.
    const Segment& first = d.free.front();
    uint64_t start = alignUp(first.start);
    if (start >= first.end() || alignDown(first.end()) - start < need) {
      continue;
    }
    uint64_t usable = usableBytes(d);
    if (!best || usable < best_usable) {
      best = Placement{"", i, d.name, start, need};
      best_usable = usable;
    }
  }
  return best;
}

void consume(std::vector<DiskSpace>& disks, const Placement& p, bool exclusive) {
  if (p.disk_index >= disks.size()) {
    return;
  }
  DiskSpace& d = disks[p.disk_index];
  d.partitions += 1;
  if (exclusive) {
    d.exclusive = true;
    d.free.clear();
    return;
  }
  for (std::size_t i = 0; i < d.free.size(); ++i) {
    Segment& s = d.free[i];
    if (p.offset < s.start || p.offset + p.bytes > s.end()) {
      continue;
    }
    Segment before{s.start, p.offset - s.start};
    Segment after{p.offset + p.bytes, s.end() - (p.offset + p.bytes)};
    d.free.erase(d.free.begin() + static_cast<std::ptrdiff_t>(i));
    std::vector<Segment> pieces;
    if (before.length >= kAlignment) {
      pieces.push_back(before);
    }
    if (after.length >= kAlignment) {
      pieces.push_back(after);
    }
    d.free.insert(d.free.begin() + static_cast<std::ptrdiff_t>(i), pieces.begin(), pieces.end());
    return;
  }
}

absl::StatusOr<std::vector<Placement>> placeAll(std::vector<DiskSpace> disks,
                                                const std::vector<Demand>& demands) {
  std::vector<std::size_t> order(demands.size());
  std::iota(order.begin(), order.end(), 0);
  // Exclusive demands first, then larger before smaller (best-fit-decreasing); stable so that
  // equal demands keep their given order.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (demands[a].exclusive != demands[b].exclusive) {
      return demands[a].exclusive;
    }
    return alignUp(demands[a].bytes) > alignUp(demands[b].bytes);
  });
  std::vector<Placement> result(demands.size());
  for (std::size_t idx : order) {
    const Demand& d = demands[idx];
    std::optional<Placement> p =
        d.exclusive ? bestFitExclusive(disks, d.bytes) : bestFitShared(disks, d.bytes);
    if (!p) {
      if (d.exclusive) {
        return absl::ResourceExhaustedError("no empty disk of at least " +
                                            formatBytes(alignUp(d.bytes)) + " for " + d.id +
                                            " (exclusive)");
      }
      return absl::ResourceExhaustedError("no free segment of " + formatBytes(alignUp(d.bytes)) +
                                          " for " + d.id + " (largest free segment " +
                                          formatBytes(largestFreeSegment(disks)) + ")");
    }
    p->demand_id = d.id;
    consume(disks, *p, d.exclusive);
    result[idx] = *p;
  }
  return result;
}

uint64_t freeBytes(std::span<const DiskSpace> disks) {
  uint64_t sum = 0;
  for (const DiskSpace& d : disks) {
    if (!d.exclusive) {
      sum += usableBytes(d);
    }
  }
  return sum;
}

uint64_t largestFreeSegment(std::span<const DiskSpace> disks) {
  uint64_t largest = 0;
  for (const DiskSpace& d : disks) {
    if (d.exclusive) {
      continue;
    }
    for (const Segment& s : d.free) {
      largest = std::max(largest, s.length);
    }
  }
  return largest;
}

std::string formatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  std::size_t unit = 0;
  uint64_t whole = bytes;
  uint64_t rem = 0;
  while (whole >= 1024 && unit + 1 < std::size(kUnits)) {
    rem = whole % 1024;
    whole /= 1024;
    ++unit;
  }
  if (rem == 0 || unit == 0) {
    return std::to_string(whole) + kUnits[unit];
  }
  // One decimal, rounded down, enough for messages.
  uint64_t tenth = rem * 10 / 1024;
  return std::to_string(whole) + "." + std::to_string(tenth) + kUnits[unit];
}

}  // namespace carina::storage
