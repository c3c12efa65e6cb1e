#include "agent/os/linux/fdisk_partition_table.h"

#include <fcntl.h>
#include <libfdisk.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <linux/blkpg.h>
#include <linux/fs.h>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <vector>

#include "agent/core/log.h"
#include "agent/core/status.h"
#include "agent/os/linux/sysfs.h"

namespace carina::os {
namespace {

log::Logger& logger() { return log::get("partition"); }

struct ContextDeleter {
  void operator()(fdisk_context* c) const { fdisk_unref_context(c); }
};
struct PartitionDeleter {
  void operator()(fdisk_partition* p) const { fdisk_unref_partition(p); }
};
struct TableDeleter {
  void operator()(fdisk_table* t) const { fdisk_unref_table(t); }
};
struct IterDeleter {
  void operator()(fdisk_iter* i) const { fdisk_free_iter(i); }
};
struct ParttypeDeleter {
  void operator()(fdisk_parttype* t) const { fdisk_unref_parttype(t); }
};
using ContextPtr = std::unique_ptr<fdisk_context, ContextDeleter>;
using FdiskPartitionPtr = std::unique_ptr<fdisk_partition, PartitionDeleter>;
using FdiskTablePtr = std::unique_ptr<fdisk_table, TableDeleter>;
using IterPtr = std::unique_ptr<fdisk_iter, IterDeleter>;
using ParttypePtr = std::unique_ptr<fdisk_parttype, ParttypeDeleter>;

/** Owned file descriptor. */
class Fd {
public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

private:
  int fd_ = -1;
};

std::string upper(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return s;
}

std::string baseName(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

bool validGuid(const std::string& g) {
  if (g.size() != 36) {
    return false;
  }
  for (std::size_t i = 0; i < g.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (g[i] != '-') {
        return false;
      }
    } else if (std::isxdigit(static_cast<unsigned char>(g[i])) == 0) {
      return false;
    }
  }
  return true;
}

// libfdisk reports warnings only through the ask callback; we log them, keep the last few for
// error messages, and refuse every interactive question (we never want a default answered).
struct AskState {
  std::string path;
  std::vector<std::string> messages;
};

int askCallback(fdisk_context* /*cxt*/, fdisk_ask* ask, void* data) {
  auto* state = static_cast<AskState*>(data);
  const int type = fdisk_ask_get_type(ask);
  switch (type) {
    case FDISK_ASKTYPE_WARN:
    case FDISK_ASKTYPE_WARNX:
    case FDISK_ASKTYPE_INFO: {
      const char* msg = fdisk_ask_print_get_mesg(ask);
      std::string text = msg != nullptr ? msg : "";
      if (type == FDISK_ASKTYPE_WARN) {
        text += std::string(": ") + std::string(errnoName(fdisk_ask_print_get_errno(ask)));
      }
      if (type == FDISK_ASKTYPE_INFO) {
        CARINA_LOG_DEBUG(logger(), "libfdisk", {{"device", state->path}, {"info", text}});
      } else {
        CARINA_LOG_WARN(logger(), "libfdisk warning", {{"device", state->path}, {"warning", text}});
      }
      state->messages.push_back(std::move(text));
      if (state->messages.size() > 8) {
        state->messages.erase(state->messages.begin());
      }
      return 0;
    }
    default:
      CARINA_LOG_WARN(logger(), "libfdisk question refused",
                      {{"device", state->path}, {"type", type}});
      return -EINVAL;
  }
}

absl::Status fdiskError(std::string_view what, const std::string& path, int rc) {
  return errnoStatus(std::string(what) + " on " + path, -rc);
}

class FdiskPartitionTable final : public PartitionTable {
public:
  FdiskPartitionTable(std::string path, bool block, std::string disk_name, int fd)
      : path_(std::move(path)), block_(block), disk_name_(std::move(disk_name)), fd_(fd) {
    ask_.path = path_;
  }

  // No fdisk_deassign_device(): it fsync()s the device again (and sync()s globally unless
  // nosync), although fdisk_write_disklabel already fsync()s after each GPT structure it writes,
  // and a table that was only read needs no flush. The fd is ours (assign_device_by_fd):
  // unref_context leaves it alone and Fd closes it after the context is gone.
  ~FdiskPartitionTable() override { ctx_.reset(); }

  absl::Status init() {
    ctx_.reset(fdisk_new_context());
    if (!ctx_) {
      return absl::ResourceExhaustedError("fdisk_new_context failed");
    }
    fdisk_set_ask(ctx_.get(), askCallback, &ask_);
    // By fd, not by name: libfdisk would open O_EXCL (silently retried without on EBUSY). Our
    // own non-exclusive fd keeps the behaviour explicit and lets partitionInUse()'s O_EXCL
    // probe of a partition work while this table is open.
    int rc = fdisk_assign_device_by_fd(ctx_.get(), fd_.get(), path_.c_str(), 0);
    if (rc < 0) {
      ctx_.reset();
      return fdiskError("fdisk_assign_device", path_, rc);
    }
    return absl::OkStatus();
  }

  // PartitionTable
  const std::string& path() const override { return path_; }

  absl::StatusOr<TableInfo> read() override {
    TableInfo info;
    info.sector_size = static_cast<uint32_t>(fdisk_get_sector_size(ctx_.get()));
    info.total_sectors = fdisk_get_nsectors(ctx_.get());
    if (fdisk_has_label(ctx_.get()) == 0) {
      // What a new GPT would give: 1 MiB first, backup header + 16 KiB of entries at the end.
      info.first_usable = (1024ULL * 1024ULL) / info.sector_size;
      const uint64_t tail = 2 + 16384ULL / info.sector_size;
      info.last_usable = info.total_sectors > tail ? info.total_sectors - tail : 0;
      return info;
    }
    fdisk_label* lb = fdisk_get_label(ctx_.get(), nullptr);
    info.label =
        lb != nullptr && fdisk_label_get_name(lb) != nullptr ? fdisk_label_get_name(lb) : "unknown";
    info.first_usable = fdisk_get_first_lba(ctx_.get());
    info.last_usable = fdisk_get_last_lba(ctx_.get());
    fdisk_table* raw = nullptr;  // MUST be null: get_partitions appends to a non-null table
    int rc = fdisk_get_partitions(ctx_.get(), &raw);
    FdiskTablePtr tb(raw);
    if (rc < 0) {
      return fdiskError("fdisk_get_partitions", path_, rc);
    }
    if (tb) {
      IterPtr it(fdisk_new_iter(FDISK_ITER_FORWARD));
      fdisk_partition* pa = nullptr;
      while (fdisk_table_next_partition(tb.get(), it.get(), &pa) == 0) {
        if (fdisk_partition_is_used(pa) == 0 || fdisk_partition_has_partno(pa) == 0) {
          continue;
        }
        PartitionEntry e;
        e.partno = static_cast<uint32_t>(fdisk_partition_get_partno(pa));
        e.start = fdisk_partition_get_start(pa);
        e.size = fdisk_partition_get_size(pa);
        if (fdisk_parttype* t = fdisk_partition_get_type(pa)) {
          const char* s = fdisk_parttype_get_string(t);
          e.type_guid = upper(s != nullptr ? s : "");
        }
        const char* name = fdisk_partition_get_name(pa);
        e.name = name != nullptr ? name : "";
        info.partitions.push_back(std::move(e));
      }
    }
    std::sort(info.partitions.begin(), info.partitions.end(),
              [](const PartitionEntry& a, const PartitionEntry& b) { return a.start < b.start; });
    return info;
  }

  absl::Status createGptLabel() override {
    if (fdisk_has_label(ctx_.get()) != 0) {
      return absl::FailedPreconditionError("refusing to create a GPT on " + path_ +
                                           ": it already has a partition table");
    }
    int rc = fdisk_create_disklabel(ctx_.get(), "gpt");
    if (rc < 0) {
      return fdiskError("fdisk_create_disklabel(gpt)", path_, rc);
    }
    dirty_ = true;
    CARINA_LOG_INFO(logger(), "gpt label created in memory", {{"device", path_}});
    return absl::OkStatus();
  }

  absl::StatusOr<uint32_t> addPartition(const NewPartition& np) override {
    CARINA_ASSIGN_OR_RETURN(TableInfo info, read());
    if (!info.isGpt()) {
      return absl::FailedPreconditionError("no GPT on " + path_);
    }
    if (np.size == 0) {
      return absl::InvalidArgumentError("partition size 0 on " + path_);
    }
    if (!validGuid(np.type_guid)) {
      return absl::InvalidArgumentError("bad partition type GUID \"" + np.type_guid + "\"");
    }
    if (np.name.size() > 36) {
      return absl::InvalidArgumentError("GPT partition name longer than 36: " + np.name);
    }
    const std::string range =
        "[" + std::to_string(np.start) + ", +" + std::to_string(np.size) + ") on " + path_;
    if (np.start < info.first_usable || np.start + np.size - 1 > info.last_usable ||
        np.start + np.size < np.start) {
      return absl::OutOfRangeError("partition " + range + " outside the usable area [" +
                                   std::to_string(info.first_usable) + ", " +
                                   std::to_string(info.last_usable) + "]");
    }
    for (const PartitionEntry& e : info.partitions) {
      if (np.start < e.end() && e.start < np.start + np.size) {
        return absl::OutOfRangeError("partition " + range + " overlaps partition " +
                                     std::to_string(e.partno + 1));
      }
      if (np.partno && *np.partno == e.partno) {
        return absl::AlreadyExistsError("slot " + std::to_string(e.partno + 1) + " used on " +
                                        path_);
      }
    }
    FdiskPartitionPtr pa(fdisk_new_partition());
    if (np.partno) {
      fdisk_partition_set_partno(pa.get(), *np.partno);
    } else {
      fdisk_partition_partno_follow_default(pa.get(), 1);
    }
    fdisk_partition_set_start(pa.get(), np.start);
    fdisk_partition_set_size(pa.get(), np.size);
    if (!np.name.empty()) {
      fdisk_partition_set_name(pa.get(), np.name.c_str());
    }
    ParttypePtr type(fdisk_label_get_parttype_from_string(fdisk_get_label(ctx_.get(), nullptr),
                                                          np.type_guid.c_str()));
    if (!type) {
      // Not in libfdisk's table of known GPT types (ours never are): an "unknown" type whose
      // string is the GUID is written as that GUID.
      type.reset(fdisk_new_unknown_parttype(0, np.type_guid.c_str()));
    }
    if (!type) {
      return absl::InvalidArgumentError("libfdisk rejects type GUID " + np.type_guid);
    }
    fdisk_partition_set_type(pa.get(), type.get());
    size_t no = 0;
    int rc = fdisk_add_partition(ctx_.get(), pa.get(), &no);
    if (rc < 0) {
      return fdiskError("fdisk_add_partition " + range, path_, rc);
    }
    dirty_ = true;
    // libfdisk aligns the end down and clamps to the free segment with rc 0: read back.
    fdisk_partition* got_raw = nullptr;
    rc = fdisk_get_partition(ctx_.get(), no, &got_raw);
    FdiskPartitionPtr got(got_raw);
    if (rc < 0) {
      fdisk_delete_partition(ctx_.get(), no);
      return fdiskError("fdisk_get_partition after add", path_, rc);
    }
    const uint64_t got_start = fdisk_partition_get_start(got.get());
    const uint64_t got_size = fdisk_partition_get_size(got.get());
    if (got_start != np.start || got_size != np.size) {
      fdisk_delete_partition(ctx_.get(), no);
      return absl::OutOfRangeError("libfdisk changed partition " + range + " to [" +
                                   std::to_string(got_start) + ", +" + std::to_string(got_size) +
                                   "): refused");
    }
    return static_cast<uint32_t>(no);
  }

  absl::Status deletePartition(uint32_t partno) override {
    if (fdisk_is_partition_used(ctx_.get(), partno) == 0) {
      return absl::NotFoundError("partition slot " + std::to_string(partno + 1) + " unused on " +
                                 path_);
    }
    int rc = fdisk_delete_partition(ctx_.get(), partno);
    if (rc < 0) {
      return fdiskError("fdisk_delete_partition", path_, rc);
    }
    dirty_ = true;
    return absl::OkStatus();
  }

  absl::Status resizePartition(uint32_t partno, uint64_t new_size) override {
    if (new_size == 0) {
      return absl::InvalidArgumentError("partition size 0");
    }
    CARINA_ASSIGN_OR_RETURN(TableInfo info, read());
    auto self = std::find_if(info.partitions.begin(), info.partitions.end(),
                             [&](const PartitionEntry& e) { return e.partno == partno; });
    if (self == info.partitions.end()) {
      return absl::NotFoundError("partition slot " + std::to_string(partno + 1) + " unused on " +
                                 path_);
    }
    const uint64_t end = self->start + new_size;
    if (end - 1 > info.last_usable) {
      return absl::OutOfRangeError("partition " + std::to_string(partno + 1) + " of " +
                                   std::to_string(new_size) + " sectors would pass the end of " +
                                   path_);
    }
    for (const PartitionEntry& e : info.partitions) {
      if (e.partno != partno && e.start >= self->start && e.start < end) {
        return absl::OutOfRangeError("partition " + std::to_string(partno + 1) + " of " +
                                     std::to_string(new_size) + " sectors would overlap " +
                                     std::to_string(e.partno + 1) + " on " + path_);
      }
    }
    FdiskPartitionPtr pa(fdisk_new_partition());
    fdisk_partition_set_size(pa.get(), new_size);  // only size: start/name/type are kept
    int rc = fdisk_set_partition(ctx_.get(), partno, pa.get());
    if (rc < 0) {
      return fdiskError("fdisk_set_partition", path_, rc);
    }
    dirty_ = true;
    fdisk_partition* got_raw = nullptr;
    rc = fdisk_get_partition(ctx_.get(), partno, &got_raw);
    FdiskPartitionPtr got(got_raw);
    if (rc < 0) {
      return fdiskError("fdisk_get_partition after resize", path_, rc);
    }
    if (fdisk_partition_get_size(got.get()) != new_size ||
        fdisk_partition_get_start(got.get()) != self->start) {
      return absl::OutOfRangeError("libfdisk did not resize partition " +
                                   std::to_string(partno + 1) + " exactly");
    }
    return absl::OkStatus();
  }

  absl::Status wipePartition(uint32_t partno) override {
    if (fdisk_is_partition_used(ctx_.get(), partno) == 0) {
      return absl::NotFoundError("partition slot " + std::to_string(partno + 1) + " unused on " +
                                 path_);
    }
    int rc = fdisk_wipe_partition(ctx_.get(), partno, 1);
    if (rc < 0) {
      return fdiskError("fdisk_wipe_partition", path_, rc);
    }
    dirty_ = true;
    return absl::OkStatus();
  }

  absl::Status write() override {
    if (!dirty_) {
      return absl::OkStatus();
    }
    if (block_) {
      // The whole disk's page cache is not coherent with its partitions' caches: a filesystem
      // written through /dev/sdb1 can still read as zeros through /dev/sdb. libfdisk finds the
      // signatures to wipe by probing through the whole disk, so drop that cache first or the
      // wipe of a re-used range sees nothing and the next volume inherits the old filesystem.
      if (::ioctl(fd_.get(), BLKFLSBUF, 0) != 0) {
        CARINA_LOG_WARN(logger(), "cannot drop the page cache of a disk",
                        {{"device", path_}, {"errno", errno}});
      }
    }
    int rc = fdisk_write_disklabel(ctx_.get());  // wipes first, then the table; fsync()s
    if (rc < 0) {
      return fdiskError("fdisk_write_disklabel", path_, rc);
    }
    dirty_ = false;
    return absl::OkStatus();
  }

  bool hasKernelView() const override { return block_; }

  absl::StatusOr<std::vector<KernelPartition>> kernelPartitions() override {
    std::vector<KernelPartition> result;
    if (!block_) {
      return result;
    }
    const std::string dir = sysRoot() + "/class/block/" + disk_name_;
    CARINA_ASSIGN_OR_RETURN(std::vector<std::string> entries, listDir(dir));
    for (const std::string& entry : entries) {
      // Partition directories are named after the disk ("loop3p1", "sdb1"); skipping the other
      // entries (queue, holders, power, ...) saves most of the failed opens.
      if (entry.size() <= disk_name_.size() ||
          entry.compare(0, disk_name_.size(), disk_name_) != 0) {
        continue;
      }
      auto number = readSysfsU64(dir + "/" + entry + "/partition");
      auto start = readSysfsU64(dir + "/" + entry + "/start");
      auto size = readSysfsU64(dir + "/" + entry + "/size");
      if (!number.ok() || !start.ok() || !size.ok()) {
        continue;  // not a partition, or removed while we were reading
      }
      result.push_back(
          KernelPartition{static_cast<uint32_t>(*number), entry, *start * 512, *size * 512});
    }
    std::sort(result.begin(), result.end(), [](const KernelPartition& a, const KernelPartition& b) {
      return a.number < b.number;
    });
    kernel_cache_ = result;
    return result;
  }

  absl::StatusOr<KernelSyncReport> syncKernel() override {
    KernelSyncReport report;
    if (!block_) {
      return report;
    }
    if (dirty_) {
      return absl::FailedPreconditionError("syncKernel with unwritten edits on " + path_);
    }
    CARINA_ASSIGN_OR_RETURN(TableInfo info, read());
    const uint64_t ss = info.sector_size;
    std::map<uint32_t, std::pair<uint64_t, uint64_t>> want;  // number -> (start, size) bytes
    for (const PartitionEntry& e : info.partitions) {
      want[e.partno + 1] = {e.start * ss, e.size * ss};
    }
    // The view read by the previous sync of this object (same operation, disk mutex held) is
    // reused: only BLKPG changes it, and every change is verified by a fresh read below.
    CARINA_ASSIGN_OR_RETURN(std::vector<KernelPartition> have, currentKernel());
    std::vector<std::string> errors;
    absl::StatusCode code = absl::StatusCode::kOk;
    auto fail = [&](absl::Status st) {
      if (code == absl::StatusCode::kOk) {
        code = st.code();
      }
      errors.emplace_back(toStd(st.message()));
    };
    std::map<uint32_t, bool> present;
    // 1. Deletes: stale numbers and partitions that moved (a different start needs del+add).
    for (const KernelPartition& k : have) {
      auto w = want.find(k.number);
      if (w != want.end() && w->second.first == k.start_bytes) {
        present[k.number] = true;
        continue;
      }
      absl::Status st = blkpg(BLKPG_DEL_PARTITION, k.number, 0, 0);
      if (st.ok()) {
        report.removed.push_back(k.number);
      } else {
        present[k.number] = true;
        fail(st);
      }
    }
    // 2. Resizes (BLKPG_RESIZE works on mounted partitions; the start must stay the same).
    for (const KernelPartition& k : have) {
      auto w = want.find(k.number);
      if (w == want.end() || w->second.first != k.start_bytes || w->second.second == k.size_bytes) {
        continue;
      }
      absl::Status st = blkpg(BLKPG_RESIZE_PARTITION, k.number, w->second.first, w->second.second);
      if (st.ok()) {
        report.resized.push_back(k.number);
      } else {
        fail(st);
      }
    }
    // 3. Adds.
    for (const auto& [number, range] : want) {
      if (present.count(number) != 0) {
        continue;
      }
      absl::Status st = blkpg(BLKPG_ADD_PARTITION, number, range.first, range.second);
      if (st.ok()) {
        report.added.push_back(number);
        dropPageCache(number);
      } else {
        fail(st);
      }
    }
    // 4. Verify: the ioctls are the only way in, and sysfs is the truth.
    const bool issued = report.changed() || !errors.empty();
    std::vector<KernelPartition> now;
    if (issued) {
      CARINA_ASSIGN_OR_RETURN(now, kernelPartitions());
    } else {
      now = have;
    }
    std::vector<std::string> diffs;
    for (const KernelPartition& k : now) {
      auto w = want.find(k.number);
      if (w == want.end()) {
        diffs.push_back("stale kernel partition " + std::to_string(k.number));
      } else if (w->second.first != k.start_bytes || w->second.second != k.size_bytes) {
        diffs.push_back("kernel partition " + std::to_string(k.number) + " is [" +
                        std::to_string(k.start_bytes) + ", +" + std::to_string(k.size_bytes) +
                        ") bytes, table says [" + std::to_string(w->second.first) + ", +" +
                        std::to_string(w->second.second) + ")");
      }
    }
    for (const auto& [number, range] : want) {
      if (std::none_of(now.begin(), now.end(),
                       [n = number](const KernelPartition& k) { return k.number == n; })) {
        diffs.push_back("kernel lacks partition " + std::to_string(number));
      }
    }
    if (report.changed()) {
      CARINA_LOG_INFO(logger(), "kernel partitions updated",
                      {{"device", path_},
                       {"added", report.added.size()},
                       {"removed", report.removed.size()},
                       {"resized", report.resized.size()}});
    }
    if (!diffs.empty() || !errors.empty()) {
      std::string msg = "kernel view of " + path_ + " does not match its partition table:";
      for (const std::string& e : errors) {
        msg += " " + e + ";";
      }
      for (const std::string& d : diffs) {
        msg += " " + d + ";";
      }
      if (code == absl::StatusCode::kOk) {
        code = absl::StatusCode::kInternal;
      }
      CARINA_LOG_WARN(logger(), "kernel sync incomplete", {{"device", path_}, {"error", msg}});
      kernel_cache_.reset();
      return absl::Status(code, msg);
    }
    return report;
  }

  absl::StatusOr<bool> partitionInUse(uint32_t partno) override {
    if (!block_) {
      return false;
    }
    CARINA_ASSIGN_OR_RETURN(std::vector<KernelPartition> have, currentKernel());
    auto k = std::find_if(have.begin(), have.end(),
                          [&](const KernelPartition& p) { return p.number == partno + 1; });
    if (k == have.end()) {
      return false;
    }
    const std::string node = "/dev/" + k->name;
    int fd = ::open(node.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
    if (fd >= 0) {
      ::close(fd);
      return false;
    }
    const int err = errno;
    if (err == EBUSY) {
      return true;
    }
    if (err == ENOENT || err == ENXIO || err == ENODEV) {
      return false;
    }
    return errnoStatus("open O_EXCL " + node, err);
  }

  std::string partitionPath(uint32_t partno) const override {
    return partitionDevnode(block_ ? "/dev/" + disk_name_ : path_, partno + 1);
  }

private:
  absl::StatusOr<std::vector<KernelPartition>> currentKernel() {
    if (kernel_cache_) {
      return *kernel_cache_;
    }
    return kernelPartitions();
  }

  // A partition node that reuses the device number of an earlier partition can still serve
  // that partition's cached blocks (seen on kernel 6.18 with loop devices: a new volume showed
  // the deleted volume's ext4 superblock, so it would have been refused as "not blank", or worse,
  // mounted from stale metadata). Drop the new node's page cache before anyone reads it.
  void dropPageCache(uint32_t number) {
    const std::string node = partitionPath(number - 1);
    int fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 || ::ioctl(fd, BLKFLSBUF, 0) != 0) {
      CARINA_LOG_WARN(logger(), "cannot drop the page cache of a new partition",
                      {{"partition", node}, {"errno", errno}});
    }
    if (fd >= 0) {
      ::close(fd);
    }
  }

  absl::Status blkpg(int op, uint32_t number, uint64_t start, uint64_t length) {
    blkpg_partition part{};
    part.pno = static_cast<int>(number);
    part.start = static_cast<long long>(start);
    part.length = static_cast<long long>(length);
    blkpg_ioctl_arg arg{};
    arg.op = op;
    arg.datalen = sizeof(part);
    arg.data = &part;
    const char* what = op == BLKPG_ADD_PARTITION   ? "BLKPG_ADD"
                       : op == BLKPG_DEL_PARTITION ? "BLKPG_DEL"
                                                   : "BLKPG_RESIZE";
    if (::ioctl(fd_.get(), BLKPG, &arg) != 0) {
      const int err = errno;
      return errnoStatus(
          std::string(what) + " partition " + std::to_string(number) + " of " + path_, err);
    }
    CARINA_LOG_DEBUG(
        logger(), "blkpg",
        {{"device", path_}, {"op", what}, {"number", number}, {"start", start}, {"bytes", length}});
    return absl::OkStatus();
  }

  std::string path_;
  bool block_;
  std::string disk_name_;
  Fd fd_;
  AskState ask_;
  ContextPtr ctx_;
  bool dirty_ = false;
  std::optional<std::vector<KernelPartition>> kernel_cache_;  // last sysfs read of this object
};

class FdiskFactory final : public PartitionTableFactory {
public:
  ~FdiskFactory() override {
    for (auto& [path, fd] : held_) {
      ::close(fd);
    }
  }

  absl::StatusOr<PartitionTablePtr> open(const std::string& path) override {
    auto table = openFdiskPartitionTable(path);
    if (table.ok() && (*table)->hasKernelView()) {
      hold(path);
    }
    return table;
  }

  void forget(const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = held_.find(path);
    if (it != held_.end()) {
      ::close(it->second);
      held_.erase(it);
    }
  }

private:
  // A block device's page cache is dropped when its last opener closes it, so every operation
  // would re-read the GPT and libfdisk's signature probes from the disk. One idle read-only fd
  // (no O_EXCL: it blocks nothing) keeps the cache warm between operations.
  void hold(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    if (held_.count(path) != 0) {
      return;
    }
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      held_[path] = fd;
    }
  }

  std::mutex mu_;
  std::map<std::string, int> held_;
};

}  // namespace

absl::StatusOr<PartitionTablePtr> openFdiskPartitionTable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return errnoStatus("stat " + path, errno);
  }
  const bool block = S_ISBLK(st.st_mode);
  if (!block && !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(path + " is neither a block device nor a regular file");
  }
  std::string disk_name;
  if (block) {
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved) == nullptr) {
      return errnoStatus("realpath " + path, errno);
    }
    disk_name = baseName(resolved);
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return errnoStatus("open " + path, errno);
  }
  auto table = std::make_unique<FdiskPartitionTable>(path, block, disk_name, fd);
  CARINA_RETURN_IF_ERROR(table->init());
  return PartitionTablePtr(std::move(table));
}

PartitionTableFactoryPtr makeFdiskPartitionTableFactory() {
  return std::make_shared<FdiskFactory>();
}

}  // namespace carina::os
