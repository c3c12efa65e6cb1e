#pragma once

// In-memory PartitionTable for unit tests: byte-exact GPT arithmetic (same usable area as
// libfdisk: first usable = 1 MiB, last usable = end - backup GPT), a kernel view that is changed
// only by syncKernel() (one "BLKPG" call at a time), signatures that write() wipes, "in use"
// partitions, a call log, and Beast-style fault injection: failAt(n) makes the n-th counted
// step (open, label, add, delete, resize, wipe, the wipe and the table write inside write(), each
// BLKPG call, in-use probes) fail with an "injected fault" error. Everything that happened
// before the failing step stays committed, exactly like a process killed at that point.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "agent/core/status.h"
#include "agent/os/partition_table.h"

namespace carina::test {

/** One fake disk: what is on the "platters" and what the "kernel" knows. */
struct FakeDisk {
  std::string devnode;  // "/dev/fake0"
  bool block = true;    // false: behaves like an image file (no kernel view)
  uint32_t sector_size = 512;
  uint64_t total_sectors = 0;
  std::string label;  // "" or "gpt" (tests may set "dos")
  std::vector<os::PartitionEntry> partitions;
  std::vector<os::KernelPartition> kernel;
  std::set<uint32_t> in_use;                   // kernel numbers that are mounted/held
  std::map<uint64_t, std::string> signatures;  // byte offset -> "ext4" etc.
  uint64_t writes = 0;                         // table writes
};

class FakePartitionTableFactory final
    : public os::PartitionTableFactory,
      public std::enable_shared_from_this<FakePartitionTableFactory> {
public:
  /** Adds an empty disk of @p bytes. */
  void addDisk(const std::string& devnode, uint64_t bytes, uint32_t sector_size = 512,
               bool block = true) {
    std::lock_guard<std::mutex> lock(mu_);
    FakeDisk d;
    d.devnode = devnode;
    d.block = block;
    d.sector_size = sector_size;
    d.total_sectors = bytes / sector_size;
    disks_[devnode] = std::move(d);
  }

  /** A copy of the disk's state. */
  FakeDisk disk(const std::string& devnode) const {
    std::lock_guard<std::mutex> lock(mu_);
    return disks_.at(devnode);
  }
  /** Edits the disk's state directly (simulating other actors / crashes). */
  template <class Fn>
  void editDisk(const std::string& devnode, Fn&& fn) {
    std::lock_guard<std::mutex> lock(mu_);
    fn(disks_.at(devnode));
  }
  void removeDisk(const std::string& devnode) {
    std::lock_guard<std::mutex> lock(mu_);
    disks_.erase(devnode);
  }

  /** The @p n-th counted step from now (0 = the next one) fails. */
  void failAt(uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_at_ = steps_ + n;
  }
  void clearFault() {
    std::lock_guard<std::mutex> lock(mu_);
    fail_at_.reset();
  }
  /** Counted steps so far. */
  uint64_t steps() const {
    std::lock_guard<std::mutex> lock(mu_);
    return steps_;
  }
  bool faultFired() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fired_;
  }
  std::vector<std::string> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  void clearCalls() {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.clear();
  }

  // Used by the tables (mu_ held by the caller).
  absl::Status tickLocked(const std::string& what) {
    calls_.push_back(what);
    const uint64_t n = steps_++;
    if (fail_at_ && *fail_at_ == n) {
      fail_at_.reset();
      fired_ = true;
      return absl::InternalError("injected fault at step " + std::to_string(n) + " (" + what + ")");
    }
    return absl::OkStatus();
  }

  // os::PartitionTableFactory
  absl::StatusOr<os::PartitionTablePtr> open(const std::string& path) override;

  std::mutex& mutex() const { return mu_; }
  FakeDisk* findLocked(const std::string& devnode) {
    auto it = disks_.find(devnode);
    return it == disks_.end() ? nullptr : &it->second;
  }

  static uint64_t firstUsable(const FakeDisk& d) { return (1024ULL * 1024ULL) / d.sector_size; }
  static uint64_t lastUsable(const FakeDisk& d) {
    const uint64_t tail = 2 + 16384ULL / d.sector_size;
    return d.total_sectors > tail ? d.total_sectors - tail : 0;
  }
  static std::string kernelName(const std::string& devnode, uint32_t number) {
    std::string p = os::partitionDevnode(devnode, number);
    return p.substr(p.rfind('/') + 1);
  }

private:
  mutable std::mutex mu_;
  std::map<std::string, FakeDisk> disks_;
  uint64_t steps_ = 0;
  std::optional<uint64_t> fail_at_;
  bool fired_ = false;
  std::vector<std::string> calls_;
};

class FakePartitionTable final : public os::PartitionTable {
public:
  FakePartitionTable(std::shared_ptr<FakePartitionTableFactory> f, std::string path,
                     const FakeDisk& d)
      : f_(std::move(f)),
        path_(std::move(path)),
        label_(d.label),
        parts_(d.partitions),
        sector_size_(d.sector_size),
        total_(d.total_sectors),
        block_(d.block) {}

  const std::string& path() const override { return path_; }

  absl::StatusOr<os::TableInfo> read() override {
    os::TableInfo t;
    t.label = label_;
    t.sector_size = sector_size_;
    t.total_sectors = total_;
    FakeDisk shape;
    shape.sector_size = sector_size_;
    shape.total_sectors = total_;
    t.first_usable = FakePartitionTableFactory::firstUsable(shape);
    t.last_usable = FakePartitionTableFactory::lastUsable(shape);
    t.partitions = parts_;
    std::sort(
        t.partitions.begin(), t.partitions.end(),
        [](const os::PartitionEntry& a, const os::PartitionEntry& b) { return a.start < b.start; });
    return t;
  }

  absl::Status createGptLabel() override {
    CARINA_RETURN_IF_ERROR(tick("label"));
    if (!label_.empty()) {
      return absl::FailedPreconditionError("refusing to create a GPT on " + path_ +
                                           ": it already has a partition table");
    }
    label_ = "gpt";
    parts_.clear();
    dirty_ = true;
    return absl::OkStatus();
  }

  absl::StatusOr<uint32_t> addPartition(const os::NewPartition& np) override {
    CARINA_RETURN_IF_ERROR(tick("add"));
    if (label_ != "gpt") {
      return absl::FailedPreconditionError("no GPT on " + path_);
    }
    if (np.size == 0 || np.type_guid.size() != 36 || np.name.size() > 36) {
      return absl::InvalidArgumentError("bad partition spec");
    }
    auto t = read();
    if (np.start < t->first_usable || np.start + np.size - 1 > t->last_usable) {
      return absl::OutOfRangeError("partition outside the usable area");
    }
    std::set<uint32_t> used;
    for (const os::PartitionEntry& e : parts_) {
      if (np.start < e.end() && e.start < np.start + np.size) {
        return absl::OutOfRangeError("partition overlaps partition " +
                                     std::to_string(e.partno + 1));
      }
      used.insert(e.partno);
    }
    uint32_t no = 0;
    if (np.partno) {
      if (used.count(*np.partno) != 0) {
        return absl::AlreadyExistsError("slot used");
      }
      no = *np.partno;
    } else {
      while (used.count(no) != 0) {
        ++no;
      }
    }
    if (no >= 128) {
      return absl::ResourceExhaustedError("no free GPT slot");
    }
    parts_.push_back(os::PartitionEntry{no, np.start, np.size, np.type_guid, np.name});
    dirty_ = true;
    return no;
  }

  absl::Status deletePartition(uint32_t partno) override {
    CARINA_RETURN_IF_ERROR(tick("delete"));
    auto it = find(partno);
    if (it == parts_.end()) {
      return absl::NotFoundError("partition slot unused");
    }
    parts_.erase(it);
    dirty_ = true;
    return absl::OkStatus();
  }

  absl::Status resizePartition(uint32_t partno, uint64_t new_size) override {
    CARINA_RETURN_IF_ERROR(tick("resize"));
    auto it = find(partno);
    if (it == parts_.end()) {
      return absl::NotFoundError("partition slot unused");
    }
    if (new_size == 0) {
      return absl::InvalidArgumentError("size 0");
    }
    auto t = read();
    const uint64_t end = it->start + new_size;
    if (end - 1 > t->last_usable) {
      return absl::OutOfRangeError("beyond the end");
    }
    for (const os::PartitionEntry& e : parts_) {
      if (e.partno != partno && e.start >= it->start && e.start < end) {
        return absl::OutOfRangeError("overlap");
      }
    }
    it->size = new_size;
    dirty_ = true;
    return absl::OkStatus();
  }

  absl::Status wipePartition(uint32_t partno) override {
    CARINA_RETURN_IF_ERROR(tick("wipe"));
    auto it = find(partno);
    if (it == parts_.end()) {
      return absl::NotFoundError("partition slot unused");
    }
    wipes_.emplace_back(it->start * sector_size_, it->end() * sector_size_);
    dirty_ = true;
    return absl::OkStatus();
  }

  absl::Status write() override {
    if (!dirty_) {
      return absl::OkStatus();
    }
    std::lock_guard<std::mutex> lock(f_->mutex());
    FakeDisk* d = f_->findLocked(path_);
    if (d == nullptr) {
      return absl::NotFoundError(path_ + " gone");
    }
    // libfdisk wipes first, then writes the table: two steps a crash can fall between.
    if (!wipes_.empty()) {
      CARINA_RETURN_IF_ERROR(f_->tickLocked("write.wipe"));
      for (auto [from, to] : wipes_) {
        for (auto it = d->signatures.begin(); it != d->signatures.end();) {
          it = (it->first >= from && it->first < to) ? d->signatures.erase(it) : std::next(it);
        }
      }
      wipes_.clear();
    }
    CARINA_RETURN_IF_ERROR(f_->tickLocked("write.table"));
    d->label = label_;
    d->partitions = parts_;
    d->writes += 1;
    dirty_ = false;
    return absl::OkStatus();
  }

  bool hasKernelView() const override { return block_; }

  absl::StatusOr<std::vector<os::KernelPartition>> kernelPartitions() override {
    std::lock_guard<std::mutex> lock(f_->mutex());
    FakeDisk* d = f_->findLocked(path_);
    if (d == nullptr) {
      return absl::NotFoundError(path_ + " gone");
    }
    return d->kernel;
  }

  absl::StatusOr<os::KernelSyncReport> syncKernel() override {
    os::KernelSyncReport report;
    if (!block_) {
      return report;
    }
    if (dirty_) {
      return absl::FailedPreconditionError("unwritten edits");
    }
    std::lock_guard<std::mutex> lock(f_->mutex());
    FakeDisk* d = f_->findLocked(path_);
    if (d == nullptr) {
      return absl::NotFoundError(path_ + " gone");
    }
    const uint64_t ss = sector_size_;
    std::map<uint32_t, std::pair<uint64_t, uint64_t>> want;
    for (const os::PartitionEntry& e : d->partitions) {  // the WRITTEN table
      want[e.partno + 1] = {e.start * ss, e.size * ss};
    }
    absl::Status first;
    std::set<uint32_t> present;
    for (auto it = d->kernel.begin(); it != d->kernel.end();) {
      auto w = want.find(it->number);
      if (w != want.end() && w->second.first == it->start_bytes) {
        present.insert(it->number);
        ++it;
        continue;
      }
      CARINA_RETURN_IF_ERROR(f_->tickLocked("blkpg.del"));
      if (d->in_use.count(it->number) != 0) {
        if (first.ok()) {
          first = absl::FailedPreconditionError("BLKPG_DEL partition " +
                                                std::to_string(it->number) + ": EBUSY");
        }
        present.insert(it->number);
        ++it;
        continue;
      }
      report.removed.push_back(it->number);
      it = d->kernel.erase(it);
    }
    for (os::KernelPartition& k : d->kernel) {
      auto w = want.find(k.number);
      if (w != want.end() && w->second.first == k.start_bytes && w->second.second != k.size_bytes) {
        CARINA_RETURN_IF_ERROR(f_->tickLocked("blkpg.resize"));
        k.size_bytes = w->second.second;
        report.resized.push_back(k.number);
      }
    }
    for (const auto& [number, range] : want) {
      if (present.count(number) != 0) {
        continue;
      }
      CARINA_RETURN_IF_ERROR(f_->tickLocked("blkpg.add"));
      bool overlap = std::any_of(d->kernel.begin(), d->kernel.end(), [&](const auto& k) {
        return range.first < k.start_bytes + k.size_bytes &&
               k.start_bytes < range.first + range.second;
      });
      if (overlap) {
        if (first.ok()) {
          first = absl::FailedPreconditionError("BLKPG_ADD partition " + std::to_string(number) +
                                                ": EBUSY (overlap)");
        }
        continue;
      }
      d->kernel.push_back(os::KernelPartition{
          number, FakePartitionTableFactory::kernelName(path_, number), range.first, range.second});
      report.added.push_back(number);
    }
    std::sort(d->kernel.begin(), d->kernel.end(),
              [](const auto& a, const auto& b) { return a.number < b.number; });
    if (!first.ok()) {
      return first;
    }
    return report;
  }

  absl::StatusOr<bool> partitionInUse(uint32_t partno) override {
    std::lock_guard<std::mutex> lock(f_->mutex());
    CARINA_RETURN_IF_ERROR(f_->tickLocked("inuse"));
    FakeDisk* d = f_->findLocked(path_);
    if (d == nullptr) {
      return absl::NotFoundError(path_ + " gone");
    }
    return d->in_use.count(partno + 1) != 0;
  }

  std::string partitionPath(uint32_t partno) const override {
    return os::partitionDevnode(path_, partno + 1);
  }

private:
  absl::Status tick(const char* what) {
    std::lock_guard<std::mutex> lock(f_->mutex());
    return f_->tickLocked(what);
  }
  std::vector<os::PartitionEntry>::iterator find(uint32_t partno) {
    return std::find_if(parts_.begin(), parts_.end(),
                        [&](const os::PartitionEntry& e) { return e.partno == partno; });
  }

  std::shared_ptr<FakePartitionTableFactory> f_;
  std::string path_;
  std::string label_;
  std::vector<os::PartitionEntry> parts_;
  uint32_t sector_size_;
  uint64_t total_;
  bool block_;
  bool dirty_ = false;
  std::vector<std::pair<uint64_t, uint64_t>> wipes_;
};

inline absl::StatusOr<os::PartitionTablePtr> FakePartitionTableFactory::open(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  CARINA_RETURN_IF_ERROR(tickLocked("open " + path));
  FakeDisk* d = findLocked(path);
  if (d == nullptr) {
    return absl::NotFoundError("no such device " + path);
  }
  return os::PartitionTablePtr(std::make_unique<FakePartitionTable>(shared_from_this(), path, *d));
}

}  // namespace carina::test
