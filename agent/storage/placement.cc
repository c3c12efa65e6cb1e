#include "agent/storage/placement.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <numeric>

namespace carina::storage {

uint64_t usableBytes(const DiskSpace& disk) {
  uint64_t sum = 0;
  for (const Segment& s : disk.free) {
    sum += s.length;
  }
  return sum;
}

namespace {

bool isEmptyDisk(const DiskSpace& disk) {
  return !disk.exclusive && disk.partitions == 0 && !disk.free.empty();
}

std::optional<Placement> named(std::span<const DiskSpace> disks, std::optional<Fit> fit) {
  if (!fit) {
    return std::nullopt;
  }
  return Placement{"", fit->disk_index, disks[fit->disk_index].name, fit->offset, fit->bytes};
}

}  // namespace

std::optional<Fit> fitShared(std::span<const DiskSpace> disks, uint64_t bytes) {
  const uint64_t need = alignUp(bytes);
  if (need == 0) {
    return std::nullopt;
  }
  std::optional<Fit> best;
  uint64_t best_len = 0;
  for (std::size_t i = 0; i < disks.size(); ++i) {
    const DiskSpace& d = disks[i];
    if (d.exclusive) {
      continue;
    }
    for (const Segment& s : d.free) {
      // Segments are aligned, but be defensive about what callers hand in.
      uint64_t start = alignUp(s.start);
      uint64_t end = alignDown(s.end());
      if (start >= end || end - start < need) {
        continue;
      }
      uint64_t len = end - start;
      if (!best || len < best_len) {
        best = Fit{i, start, need};
        best_len = len;
      }
    }
  }
  return best;
}

std::optional<Fit> fitExclusive(std::span<const DiskSpace> disks, uint64_t bytes) {
  const uint64_t need = alignUp(bytes);
  if (need == 0) {
    return std::nullopt;
  }
  std::optional<Fit> best;
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
      best = Fit{i, start, need};
      best_usable = usable;
    }
  }
  return best;
}

std::optional<Placement> bestFitShared(std::span<const DiskSpace> disks, uint64_t bytes) {
  return named(disks, fitShared(disks, bytes));
}

std::optional<Placement> bestFitExclusive(std::span<const DiskSpace> disks, uint64_t bytes) {
  return named(disks, fitExclusive(disks, bytes));
}

void consume(std::vector<DiskSpace>& disks, const Fit& p, bool exclusive) {
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
    // Replace the segment by its remains in place (no temporary vector).
    auto pos = d.free.begin() + static_cast<std::ptrdiff_t>(i);
    if (before.length >= kAlignment && after.length >= kAlignment) {
      *pos = before;
      d.free.insert(pos + 1, after);
    } else if (before.length >= kAlignment) {
      *pos = before;
    } else if (after.length >= kAlignment) {
      *pos = after;
    } else {
      d.free.erase(pos);
    }
    return;
  }
}

void consume(std::vector<DiskSpace>& disks, const Placement& p, bool exclusive) {
  consume(disks, Fit{p.disk_index, p.offset, p.bytes}, exclusive);
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
      return notPlaced(disks, d);
    }
    p->demand_id = d.id;
    consume(disks, *p, d.exclusive);
    result[idx] = *p;
  }
  return result;
}

void appendNotPlaced(std::string& out, std::span<const DiskSpace> disks, const Demand& d) {
  // Appended piece by piece into one buffer: the scheduler extender words this for every node
  // that cannot take a pod, which on a full cluster is every node of the request.
  if (d.exclusive) {
    out.append("no empty disk of at least ");
    out.append(formatBytes(alignUp(d.bytes)));
    out.append(" for ");
    out.append(d.id);
    out.append(" (exclusive)");
    return;
  }
  out.append("no free segment of ");
  out.append(formatBytes(alignUp(d.bytes)));
  out.append(" for ");
  out.append(d.id);
  out.append(" (largest free segment ");
  out.append(formatBytes(largestFreeSegment(disks)));
  out.append(")");
}

absl::Status notPlaced(std::span<const DiskSpace> disks, const Demand& d) {
  std::string message;
  appendNotPlaced(message, disks, d);
  return absl::ResourceExhaustedError(message);
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
  // Written into one stack buffer (the extender words this twice for every node that fails).
  char buf[48];
  char* end = std::to_chars(buf, buf + 24, whole).ptr;
  if (rem != 0 && unit != 0) {
    // One decimal, rounded down, enough for messages.
    *end++ = '.';
    *end++ = static_cast<char>('0' + rem * 10 / 1024);
  }
  for (const char* u = kUnits[unit]; *u != '\0'; ++u) {
    *end++ = *u;
  }
  return std::string(buf, end);
}

}  // namespace carina::storage
