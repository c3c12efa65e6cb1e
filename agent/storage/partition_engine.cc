#include "agent/storage/partition_engine.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "agent/core/constants.h"
#include "agent/core/log.h"
#include "agent/core/status.h"
#include "agent/storage/placement.h"

namespace carina::storage {

struct PartitionEngine::DiskState {
  std::mutex op_mu;  // serializes table operations on this disk
  // Guarded by the engine's mu_:
  DiskInfo info;
  os::TableInfo table;  // as last read from the disk
  bool loaded = false;
  bool kernel_ok = false;  // the last kernel sync succeeded
};

namespace {

log::Logger& logger() { return log::get("partition"); }

std::string upper(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'a' && c <= 'z') {
      c = static_cast<char>(c - 'a' + 'A');
    }
  }
  return r;
}

const std::string& sharedGuid() {
  static const std::string kGuid = upper(kSharedPartitionTypeGuid);
  return kGuid;
}
const std::string& exclusiveGuid() {
  static const std::string kGuid = upper(kExclusivePartitionTypeGuid);
  return kGuid;
}

bool isOurs(const os::PartitionEntry& e) {
  const std::string t = upper(e.type_guid);
  return t == sharedGuid() || t == exclusiveGuid();
}
bool isExclusive(const os::PartitionEntry& e) { return upper(e.type_guid) == exclusiveGuid(); }

/** Byte range partitions may use: [start, end), both 1 MiB aligned. */
std::pair<uint64_t, uint64_t> usableBytes(const os::TableInfo& t) {
  const uint64_t ss = t.sector_size;
  const uint64_t start = alignUp(t.first_usable * ss);
  const uint64_t end = t.last_usable == 0 ? 0 : alignDown((t.last_usable + 1) * ss);
  return {start, std::max(start, end)};
}

DiskSpace spaceOf(const DiskInfo& info, const os::TableInfo& t) {
  DiskSpace space;
  space.name = info.name;
  space.size_bytes = info.size_bytes != 0 ? info.size_bytes : t.total_sectors * t.sector_size;
  const uint64_t ss = t.sector_size;
  auto [cursor, end] = usableBytes(t);
  for (const os::PartitionEntry& e : t.partitions) {  // sorted by start
    space.partitions += 1;
    space.exclusive = space.exclusive || isExclusive(e);
    const uint64_t pstart = alignDown(e.start * ss);
    if (pstart > cursor && pstart - cursor >= kAlignment) {
      space.free.push_back(Segment{cursor, std::min(pstart, end) - cursor});
    }
    cursor = std::max(cursor, alignUp(e.end() * ss));
  }
  if (end > cursor && end - cursor >= kAlignment) {
    space.free.push_back(Segment{cursor, end - cursor});
  }
  if (space.exclusive) {
    space.free.clear();  // the rest of an exclusive disk is reserved for its volume
  }
  return space;
}

/** How far partition @p e can end (bytes, exclusive bound): the next partition or the end of
 *  the usable area, aligned down. */
uint64_t growLimit(const os::TableInfo& t, const os::PartitionEntry& e, bool* blocked_by_next) {
  const uint64_t ss = t.sector_size;
  uint64_t limit = usableBytes(t).second;
  *blocked_by_next = false;
  for (const os::PartitionEntry& o : t.partitions) {
    if (o.partno != e.partno && o.start >= e.end() && o.start * ss < limit) {
      limit = alignDown(o.start * ss);
      *blocked_by_next = true;
    }
  }
  return limit;
}

Volume volumeOf(const DiskInfo& info, const os::TableInfo& t, const os::PartitionEntry& e) {
  Volume v;
  v.id = e.name;
  v.group = info.group;
  v.disk = info.name;
  v.device = os::partitionDevnode(info.devnode, e.partno + 1);
  const uint64_t ss = t.sector_size;
  v.size_bytes = e.size * ss;
  v.exclusive = isExclusive(e);
  bool blocked = false;
  const uint64_t limit = growLimit(t, e, &blocked);
  const uint64_t start = e.start * ss;
  v.max_bytes = limit > start ? std::max(v.size_bytes, limit - start) : v.size_bytes;
  return v;
}

const os::PartitionEntry* findEntry(const os::TableInfo& t, const std::string& id) {
  for (const os::PartitionEntry& e : t.partitions) {
    if (e.name == id && isOurs(e)) {
      return &e;
    }
  }
  return nullptr;
}

/** Why a disk's table makes it unusable for us; "" when it is fine. */
std::string tableProblem(const os::TableInfo& t) {
  if (t.hasLabel() && !t.isGpt()) {
    return "has a " + t.label + " partition table";
  }
  for (const os::PartitionEntry& e : t.partitions) {
    if (!isOurs(e)) {
      return "holds partition " + std::to_string(e.partno + 1) + " of type " + e.type_guid +
             " that is not carina's";
    }
  }
  return "";
}

bool managedCandidate(const DiskInfo& d) {
  return d.eligible && d.policy == core::DiskPolicy::Raw && !d.group.empty();
}

}  // namespace

PartitionEngine::PartitionEngine(os::PartitionTableFactoryPtr tables,
                                 PartitionEngineOptions options)
    : tables_(std::move(tables)), options_(std::move(options)) {}

PartitionEngine::~PartitionEngine() {
  for (auto& [name, state] : disks_) {
    tables_->forget(state->info.devnode);
  }
}

absl::Status PartitionEngine::step(std::string_view name) const {
  if (options_.step_hook_for_test) {
    return options_.step_hook_for_test(name);
  }
  return absl::OkStatus();
}

absl::StatusOr<os::PartitionTablePtr> PartitionEngine::openTable(DiskState& disk) {
  std::string devnode;
  {
    std::lock_guard<std::mutex> lock(mu_);
    devnode = disk.info.devnode;
  }
  auto table = tables_->open(devnode);
  if (!table.ok()) {
    return annotate(table.status(), "opening the partition table of " + devnode);
  }
  return table;
}

void PartitionEngine::publish(DiskState& disk, const os::TableInfo& table, bool kernel_ok) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool same = disk.loaded && disk.kernel_ok == kernel_ok && disk.table.label == table.label &&
                    disk.table.total_sectors == table.total_sectors &&
                    disk.table.partitions == table.partitions;
  disk.table = table;
  disk.loaded = true;
  disk.kernel_ok = kernel_ok;
  if (!same) {
    ++generation_;  // only real changes: consumers publish NodeStorageResource on a change
  }
}

absl::Status PartitionEngine::loadDisk(DiskState& disk, bool repair) {
  CARINA_ASSIGN_OR_RETURN(os::PartitionTablePtr table, openTable(disk));
  CARINA_ASSIGN_OR_RETURN(os::TableInfo info, table->read());
  std::string problem = tableProblem(info);
  if (!problem.empty()) {
    return absl::FailedPreconditionError(problem);
  }
  bool kernel_ok = true;
  absl::Status result;
  if (repair) {
    auto report = table->syncKernel();
    if (!report.ok()) {
      kernel_ok = false;
      result = report.status();
      CARINA_LOG_ERROR(logger(), "kernel view repair failed",
                       {{"disk", table->path()}, {"error", toStd(report.status().message())}});
    } else if (report->changed()) {
      CARINA_LOG_WARN(logger(), "kernel view repaired",
                      {{"disk", table->path()},
                       {"added", report->added.size()},
                       {"removed", report->removed.size()},
                       {"resized", report->resized.size()}});
    }
  }
  publish(disk, info, kernel_ok);
  CARINA_LOG_INFO(logger(), "disk loaded",
                  {{"disk", table->path()},
                   {"label", info.label.empty() ? std::string("none") : info.label},
                   {"partitions", info.partitions.size()},
                   {"kernel_ok", kernel_ok}});
  return result;
}

absl::Status PartitionEngine::setDisks(const std::vector<DiskInfo>& disks) {
  std::lock_guard<std::mutex> set_lock(set_disks_mu_);
  std::vector<DiskInfo> unassigned;
  std::vector<DiskInfo> wanted;
  std::set<std::string> seen;
  for (const DiskInfo& d : disks) {
    if (!seen.insert(d.name).second) {
      continue;  // duplicate name: keep the first
    }
    if (managedCandidate(d)) {
      wanted.push_back(d);
    } else if (!d.eligible || d.group.empty()) {
      unassigned.push_back(d);  // eligible LVM disks belong to the LVM engine
    }
  }
  // Drop disks that are gone or no longer ours to manage.
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = disks_.begin(); it != disks_.end();) {
      bool keep = std::any_of(wanted.begin(), wanted.end(),
                              [&](const DiskInfo& d) { return d.name == it->first; });
      if (!keep) {
        CARINA_LOG_INFO(logger(), "disk dropped", {{"disk", it->first}});
        tables_->forget(it->second->info.devnode);
        it = disks_.erase(it);
        ++generation_;
      } else {
        ++it;
      }
    }
  }
  absl::Status first_error;
  for (const DiskInfo& d : wanted) {
    DiskStatePtr state;
    bool fresh = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = disks_.find(d.name);
      if (it != disks_.end() && it->second->info == d && it->second->loaded &&
          it->second->kernel_ok) {
        continue;  // unchanged
      }
      if (it != disks_.end()) {
        state = it->second;
      } else {
        state = std::make_shared<DiskState>();
        fresh = true;
      }
      state->info = d;
    }
    absl::Status st;
    {
      std::lock_guard<std::mutex> op_lock(state->op_mu);
      st = loadDisk(*state, /*repair=*/true);
    }
    bool loaded = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      loaded = state->loaded;
    }
    if (!st.ok() && !loaded) {
      // Unreadable or foreign table: report it, never touch it.
      DiskInfo bad = d;
      bad.eligible = false;
      bad.reason = std::string(toStd(st.message()));
      CARINA_LOG_WARN(logger(), "disk not usable", {{"disk", d.name}, {"reason", bad.reason}});
      unassigned.push_back(std::move(bad));
      tables_->forget(d.devnode);
      std::lock_guard<std::mutex> lock(mu_);
      disks_.erase(d.name);
      ++generation_;
    } else if (fresh) {
      std::lock_guard<std::mutex> lock(mu_);
      disks_[d.name] = state;
      ++generation_;
    }
    if (!st.ok() && first_error.ok()) {
      first_error = annotate(st, "disk " + d.name);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (unassigned != unassigned_) {
      unassigned_ = std::move(unassigned);
      ++generation_;
    }
  }
  return first_error;
}

absl::Status PartitionEngine::rescan() {
  std::lock_guard<std::mutex> set_lock(set_disks_mu_);
  std::vector<DiskStatePtr> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [name, state] : disks_) {
      all.push_back(state);
    }
  }
  absl::Status first_error;
  for (const DiskStatePtr& s : all) {
    std::lock_guard<std::mutex> op_lock(s->op_mu);
    absl::Status st = loadDisk(*s, /*repair=*/true);
    if (!st.ok() && first_error.ok()) {
      first_error = st;
    }
  }
  return first_error;
}

absl::StatusOr<std::string> PartitionEngine::resolveGroup(const std::string& group) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<std::string> groups;
  for (const auto& [name, s] : disks_) {
    groups.insert(s->info.group);
  }
  if (group.empty()) {
    if (groups.size() == 1) {
      return *groups.begin();
    }
    if (groups.empty()) {
      return absl::InvalidArgumentError("no RAW disk group on this node");
    }
    std::string names;
    for (const std::string& g : groups) {
      names += (names.empty() ? "" : ", ") + g;
    }
    return absl::InvalidArgumentError("no disk group named and the node has several RAW groups (" +
                                      names + "): set carina.storage.io/disk-group-name");
  }
  if (groups.count(group) == 0) {
    return absl::InvalidArgumentError("unknown RAW disk group \"" + group +
                                      "\" (or none of its disks is usable)");
  }
  return group;
}

std::vector<PartitionEngine::DiskStatePtr> PartitionEngine::groupDisks(const std::string& group) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DiskStatePtr> result;
  for (const auto& [name, s] : disks_) {
    if (s->info.group == group) {
      result.push_back(s);
    }
  }
  return result;
}

std::optional<std::pair<PartitionEngine::DiskStatePtr, os::PartitionEntry>> PartitionEngine::locate(
    const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, s] : disks_) {
    if (const os::PartitionEntry* e = findEntry(s->table, id)) {
      return std::make_pair(s, *e);
    }
  }
  return std::nullopt;
}

std::shared_ptr<std::mutex> PartitionEngine::idLock(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = id_locks_[id];
  if (!slot.first) {
    slot.first = std::make_shared<std::mutex>();
  }
  slot.second += 1;
  return slot.first;
}

void PartitionEngine::releaseIdLock(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = id_locks_.find(id);
  if (it != id_locks_.end() && --it->second.second == 0) {
    id_locks_.erase(it);
  }
}

/** Holds the per-volume-id mutex for the scope. */
class PartitionEngine::IdGuard {
public:
  IdGuard(PartitionEngine& engine, std::string id)
      : engine_(engine), id_(std::move(id)), mu_(engine.idLock(id_)), lock_(*mu_) {}
  ~IdGuard() {
    lock_.unlock();
    engine_.releaseIdLock(id_);
  }
  IdGuard(const IdGuard&) = delete;
  IdGuard& operator=(const IdGuard&) = delete;

private:
  PartitionEngine& engine_;
  std::string id_;
  std::shared_ptr<std::mutex> mu_;
  std::unique_lock<std::mutex> lock_;
};

absl::StatusOr<Volume> PartitionEngine::createVolume(const VolumeSpec& spec) {
  if (spec.name.empty()) {
    return absl::InvalidArgumentError("volume name is empty");
  }
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max() - kAlignment;
  if (spec.required_bytes > kMax || spec.limit_bytes > kMax) {
    return absl::OutOfRangeError("volume size out of range");
  }
  uint64_t bytes = 0;
  if (spec.required_bytes == 0) {
    bytes = options_.default_bytes;
    if (spec.limit_bytes != 0) {
      bytes = std::min(bytes, alignDown(spec.limit_bytes));
    }
    if (bytes == 0) {
      return absl::OutOfRangeError("limit_bytes " + std::to_string(spec.limit_bytes) +
                                   " is below the 1MiB allocation unit");
    }
  } else {
    if (spec.limit_bytes != 0 && spec.required_bytes > spec.limit_bytes) {
      return absl::OutOfRangeError("required_bytes " + std::to_string(spec.required_bytes) +
                                   " > limit_bytes " + std::to_string(spec.limit_bytes));
    }
    bytes = alignUp(spec.required_bytes);
    if (spec.limit_bytes != 0 && bytes > spec.limit_bytes) {
      return absl::OutOfRangeError("no multiple of 1MiB between required_bytes " +
                                   std::to_string(spec.required_bytes) + " and limit_bytes " +
                                   std::to_string(spec.limit_bytes));
    }
  }
  CARINA_ASSIGN_OR_RETURN(std::string group, resolveGroup(spec.group));
  const std::string id = volumeIdForName(spec.name);
  IdGuard guard(*this, id);
  auto result = createLocked(spec, id, group, bytes);
  if (!result.ok()) {
    CARINA_LOG_WARN(logger(), "create volume failed",
                    {{"name", spec.name},
                     {"volume_id", id},
                     {"bytes", bytes},
                     {"exclusive", spec.exclusive},
                     {"error", toStd(result.status().message())}});
  }
  return result;
}

absl::StatusOr<Volume> PartitionEngine::createLocked(const VolumeSpec& spec, const std::string& id,
                                                     const std::string& group, uint64_t bytes) {
  auto compatible = [&](const Volume& v) -> absl::StatusOr<Volume> {
    if (v.group != group || v.exclusive != spec.exclusive || v.size_bytes < spec.required_bytes ||
        (spec.limit_bytes != 0 && v.size_bytes > spec.limit_bytes)) {
      return absl::AlreadyExistsError("volume " + spec.name + " (" + id + ") exists with group " +
                                      v.group + ", size " + formatBytes(v.size_bytes) +
                                      ", exclusive " + (v.exclusive ? "true" : "false") +
                                      ", incompatible with the request");
    }
    return v;
  };

  // Runs one operation on @p disk with a freshly read table, after making the kernel view match
  // it (so that nothing is written to a disk whose kernel view is inconsistent). On failure the
  // cached table is refreshed so that a retry does not work from a stale view.
  const int kAttempts = 16;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    // Same name, already there (a retry, or created before a crash)?
    if (auto found = locate(id)) {
      DiskStatePtr disk = found->first;
      std::lock_guard<std::mutex> op_lock(disk->op_mu);
      CARINA_RETURN_IF_ERROR(step("create.existing.open"));
      CARINA_ASSIGN_OR_RETURN(os::PartitionTablePtr table, openTable(*disk));
      CARINA_ASSIGN_OR_RETURN(os::TableInfo t, table->read());
      const os::PartitionEntry* e = findEntry(t, id);
      if (e == nullptr) {
        publish(*disk, t, disk->kernel_ok);
        continue;  // deleted meanwhile (by an earlier crash's repair); place it again
      }
      CARINA_RETURN_IF_ERROR(step("create.existing.kernel"));
      auto sync = table->syncKernel();
      publish(*disk, t, sync.ok());
      CARINA_RETURN_IF_ERROR(sync.status());
      DiskInfo info;
      {
        std::lock_guard<std::mutex> lock(mu_);
        info = disk->info;
      }
      return compatible(volumeOf(info, t, *e));
    }

    // Place on the cached view of the group, then confirm on the fresh table of that disk.
    std::vector<DiskStatePtr> states = groupDisks(group);
    std::vector<DiskSpace> spaces;
    std::vector<DiskStatePtr> usable;
    uint64_t largest_disk = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const DiskStatePtr& s : states) {
        if (!s->loaded || !s->kernel_ok) {
          continue;
        }
        DiskSpace sp = spaceOf(s->info, s->table);
        auto [ustart, uend] = usableBytes(s->table);
        largest_disk = std::max(largest_disk, uend - ustart);
        spaces.push_back(std::move(sp));
        usable.push_back(s);
      }
    }
    std::optional<Placement> p =
        spec.exclusive ? bestFitExclusive(spaces, bytes) : bestFitShared(spaces, bytes);
    if (!p) {
      if (bytes > largest_disk) {
        return absl::OutOfRangeError("volume of " + formatBytes(bytes) +
                                     " is larger than any disk of group " + group + " (" +
                                     formatBytes(largest_disk) + " usable)");
      }
      if (spec.exclusive) {
        return absl::ResourceExhaustedError("no empty disk of at least " + formatBytes(bytes) +
                                            " in group " + group + " for exclusive volume " +
                                            spec.name);
      }
      return absl::ResourceExhaustedError("no free segment of " + formatBytes(bytes) +
                                          " in group " + group + " (largest free segment " +
                                          formatBytes(largestFreeSegment(spaces)) + ")");
    }
    DiskStatePtr disk = usable[p->disk_index];
    std::lock_guard<std::mutex> op_lock(disk->op_mu);
    DiskInfo info;
    {
      std::lock_guard<std::mutex> lock(mu_);
      info = disk->info;
    }
    CARINA_RETURN_IF_ERROR(step("create.open"));
    CARINA_ASSIGN_OR_RETURN(os::PartitionTablePtr table, openTable(*disk));
    CARINA_ASSIGN_OR_RETURN(os::TableInfo t, table->read());
    if (std::string problem = tableProblem(t); !problem.empty()) {
      publish(*disk, t, false);
      return absl::FailedPreconditionError("disk " + info.name + " " + problem);
    }
    CARINA_RETURN_IF_ERROR(step("create.sync"));
    if (auto sync = table->syncKernel(); !sync.ok()) {
      publish(*disk, t, false);
      return annotate(sync.status(), "disk " + info.name);
    }
    if (const os::PartitionEntry* e = findEntry(t, id)) {  // cache was stale
      publish(*disk, t, true);
      return compatible(volumeOf(info, t, *e));
    }
    DiskSpace fresh = spaceOf(info, t);
    std::span<const DiskSpace> one(&fresh, 1);
    std::optional<Placement> here =
        spec.exclusive ? bestFitExclusive(one, bytes) : bestFitShared(one, bytes);
    if (!here) {
      publish(*disk, t, true);  // our cache was stale: refresh and place again
      continue;
    }
    const uint64_t ss = t.sector_size;
    if (here->offset % ss != 0 || here->bytes % ss != 0) {
      return absl::InternalError("placement not sector aligned on " + info.name);
    }
    auto fail = [&](const absl::Status& st) {
      refreshAfterError(*disk);
      return st;
    };
    if (!t.hasLabel()) {
      CARINA_RETURN_IF_ERROR(step("create.label"));  // a crash: nothing is cleaned up
      if (absl::Status st = table->createGptLabel(); !st.ok()) {
        return fail(st);
      }
    }
    CARINA_RETURN_IF_ERROR(step("create.add"));  // a crash: nothing is cleaned up
    os::NewPartition np;
    np.start = here->offset / ss;
    np.size = here->bytes / ss;
    np.type_guid = spec.exclusive ? exclusiveGuid() : sharedGuid();
    np.name = id;
    auto partno = table->addPartition(np);
    if (!partno.ok()) {
      return fail(annotate(partno.status(), "adding partition to " + info.name));
    }
    CARINA_RETURN_IF_ERROR(step("create.wipe"));  // a crash: nothing is cleaned up
    if (absl::Status st = table->wipePartition(*partno); !st.ok()) {
      return fail(st);
    }
    CARINA_RETURN_IF_ERROR(step("create.write"));  // a crash: nothing is cleaned up
    if (absl::Status st = table->write(); !st.ok()) {
      return fail(annotate(st, "writing the partition table of " + info.name));
    }
    CARINA_RETURN_IF_ERROR(step("create.kernel"));  // a crash: nothing is cleaned up
    auto sync = table->syncKernel();
    if (!sync.ok()) {
      return fail(annotate(sync.status(), "telling the kernel about the new partition"));
    }
    CARINA_ASSIGN_OR_RETURN(os::TableInfo after, table->read());
    publish(*disk, after, true);
    const os::PartitionEntry* e = findEntry(after, id);
    if (e == nullptr) {
      return absl::InternalError("partition " + id + " missing after write on " + info.name);
    }
    Volume v = volumeOf(info, after, *e);
    CARINA_LOG_INFO(logger(), "volume created",
                    {{"name", spec.name},
                     {"volume_id", id},
                     {"disk", info.name},
                     {"device", v.device},
                     {"offset", here->offset},
                     {"bytes", v.size_bytes},
                     {"exclusive", v.exclusive}});
    return v;
  }
  return absl::AbortedError("disk space changed too often while placing " + spec.name + ": retry");
}

void PartitionEngine::refreshAfterError(DiskState& disk) {
  if (auto again = openTable(disk); again.ok()) {
    if (auto rt = (*again)->read(); rt.ok()) {
      publish(disk, *rt, (*again)->syncKernel().ok());
    }
  }
}

absl::Status PartitionEngine::deleteVolume(const std::string& id) {
  if (id.empty()) {
    return absl::InvalidArgumentError("volume id is empty");
  }
  IdGuard guard(*this, id);
  auto found = locate(id);
  if (!found) {
    CARINA_LOG_DEBUG(logger(), "delete: volume not found (already deleted)", {{"volume_id", id}});
    return absl::OkStatus();
  }
  DiskStatePtr disk = found->first;
  std::lock_guard<std::mutex> op_lock(disk->op_mu);
  DiskInfo info;
  {
    std::lock_guard<std::mutex> lock(mu_);
    info = disk->info;
  }
  CARINA_RETURN_IF_ERROR(step("delete.open"));
  CARINA_ASSIGN_OR_RETURN(os::PartitionTablePtr table, openTable(*disk));
  CARINA_ASSIGN_OR_RETURN(os::TableInfo t, table->read());
  auto fail = [&](const absl::Status& st) {
    refreshAfterError(*disk);
    CARINA_LOG_WARN(logger(), "delete volume failed",
                    {{"volume_id", id}, {"disk", info.name}, {"error", toStd(st.message())}});
    return st;
  };
  const os::PartitionEntry* found_entry = findEntry(t, id);
  if (found_entry == nullptr) {
    auto sync = table->syncKernel();
    publish(*disk, t, sync.ok());
    return absl::OkStatus();
  }
  const os::PartitionEntry entry = *found_entry;
  CARINA_RETURN_IF_ERROR(step("delete.inuse"));  // a crash: nothing is cleaned up
  auto in_use = table->partitionInUse(entry.partno);
  if (!in_use.ok()) {
    return fail(in_use.status());
  }
  if (*in_use) {
    return fail(absl::FailedPreconditionError("volume " + id + " (" +
                                              table->partitionPath(entry.partno) +
                                              ") is in use (mounted or open)"));
  }
  CARINA_RETURN_IF_ERROR(step("delete.table"));  // a crash: nothing is cleaned up
  if (absl::Status st = table->deletePartition(entry.partno); !st.ok()) {
    return fail(st);
  }
  CARINA_RETURN_IF_ERROR(step("delete.write"));  // a crash: nothing is cleaned up
  if (absl::Status st = table->write(); !st.ok()) {
    return fail(annotate(st, "writing the partition table of " + info.name));
  }
  CARINA_RETURN_IF_ERROR(step("delete.kernel"));  // a crash: nothing is cleaned up
  auto sync = table->syncKernel();
  if (!sync.ok() && sync.status().code() == absl::StatusCode::kFailedPrecondition) {
    // Became busy between the check and the BLKPG delete: put the partition back.
    CARINA_LOG_WARN(logger(), "partition became busy during delete: restoring it",
                    {{"volume_id", id}, {"disk", info.name}});
    os::NewPartition np{entry.partno, entry.start, entry.size, entry.type_guid, entry.name};
    if (table->addPartition(np).ok() && table->write().ok()) {
      (void)table->syncKernel();
    }
    return fail(annotate(sync.status(), "volume " + id + " is in use"));
  }
  if (!sync.ok()) {
    return fail(sync.status());
  }
  CARINA_ASSIGN_OR_RETURN(os::TableInfo after, table->read());
  publish(*disk, after, true);
  CARINA_LOG_INFO(logger(), "volume deleted",
                  {{"volume_id", id},
                   {"disk", info.name},
                   {"partition", entry.partno + 1},
                   {"bytes", entry.size * t.sector_size}});
  return absl::OkStatus();
}

absl::StatusOr<Volume> PartitionEngine::expandVolume(const std::string& id, uint64_t new_bytes) {
  if (id.empty()) {
    return absl::InvalidArgumentError("volume id is empty");
  }
  if (new_bytes == 0 || new_bytes > std::numeric_limits<uint64_t>::max() - kAlignment) {
    return absl::InvalidArgumentError("bad new size " + std::to_string(new_bytes));
  }
  IdGuard guard(*this, id);
  auto found = locate(id);
  if (!found) {
    return absl::NotFoundError("volume " + id + " not found");
  }
  DiskStatePtr disk = found->first;
  std::lock_guard<std::mutex> op_lock(disk->op_mu);
  DiskInfo info;
  {
    std::lock_guard<std::mutex> lock(mu_);
    info = disk->info;
  }
  CARINA_RETURN_IF_ERROR(step("expand.open"));
  CARINA_ASSIGN_OR_RETURN(os::PartitionTablePtr table, openTable(*disk));
  CARINA_ASSIGN_OR_RETURN(os::TableInfo t, table->read());
  auto fail = [&](const absl::Status& st) {
    refreshAfterError(*disk);
    CARINA_LOG_WARN(logger(), "expand volume failed",
                    {{"volume_id", id}, {"disk", info.name}, {"error", toStd(st.message())}});
    return st;
  };
  CARINA_RETURN_IF_ERROR(step("expand.sync"));
  if (auto sync = table->syncKernel(); !sync.ok()) {
    publish(*disk, t, false);
    return annotate(sync.status(), "disk " + info.name);
  }
  const os::PartitionEntry* found_entry = findEntry(t, id);
  if (found_entry == nullptr) {
    publish(*disk, t, true);
    return absl::NotFoundError("volume " + id + " not found on " + info.name);
  }
  const os::PartitionEntry entry = *found_entry;
  const uint64_t ss = t.sector_size;
  const uint64_t need = alignUp(new_bytes);
  if (entry.size * ss >= need) {
    publish(*disk, t, true);
    return volumeOf(info, t, entry);
  }
  bool blocked = false;
  const uint64_t limit = growLimit(t, entry, &blocked);
  const uint64_t start = entry.start * ss;
  if (start + need > limit) {
    const uint64_t max = limit > start ? limit - start : 0;
    const std::string msg = "volume " + id + " cannot grow in place to " + formatBytes(need) +
                            ": at most " + formatBytes(std::max(max, entry.size * ss));
    publish(*disk, t, true);
    if (blocked && !isExclusive(entry)) {
      return absl::ResourceExhaustedError(msg + " (the space after it is taken by another volume)");
    }
    return absl::OutOfRangeError(msg + " (end of disk " + info.name + ")");
  }
  CARINA_RETURN_IF_ERROR(step("expand.table"));  // a crash: nothing is cleaned up
  if (absl::Status st = table->resizePartition(entry.partno, need / ss); !st.ok()) {
    return fail(st);
  }
  CARINA_RETURN_IF_ERROR(step("expand.write"));  // a crash: nothing is cleaned up
  if (absl::Status st = table->write(); !st.ok()) {
    return fail(annotate(st, "writing the partition table of " + info.name));
  }
  CARINA_RETURN_IF_ERROR(step("expand.kernel"));  // a crash: nothing is cleaned up
  if (auto sync = table->syncKernel(); !sync.ok()) {
    return fail(annotate(sync.status(), "telling the kernel about the new size"));
  }
  CARINA_ASSIGN_OR_RETURN(os::TableInfo after, table->read());
  publish(*disk, after, true);
  const os::PartitionEntry* e = findEntry(after, id);
  if (e == nullptr) {
    return absl::InternalError("partition " + id + " missing after resize");
  }
  Volume v = volumeOf(info, after, *e);
  CARINA_LOG_INFO(logger(), "volume expanded",
                  {{"volume_id", id},
                   {"disk", info.name},
                   {"from_bytes", entry.size * ss},
                   {"bytes", v.size_bytes}});
  return v;
}

std::optional<Volume> PartitionEngine::findVolume(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, s] : disks_) {
    if (const os::PartitionEntry* e = findEntry(s->table, id)) {
      return volumeOf(s->info, s->table, *e);
    }
  }
  return std::nullopt;
}

std::vector<Volume> PartitionEngine::listVolumes() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Volume> result;
  for (const auto& [name, s] : disks_) {
    for (const os::PartitionEntry& e : s->table.partitions) {
      if (isOurs(e)) {
        result.push_back(volumeOf(s->info, s->table, e));
      }
    }
  }
  return result;
}

InventorySnapshot PartitionEngine::snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  InventorySnapshot snap;
  snap.generation = generation_;
  snap.unassigned = unassigned_;
  std::map<std::string, GroupSnapshot> groups;
  for (const auto& [name, s] : disks_) {
    GroupSnapshot& g = groups[s->info.group];
    g.name = s->info.group;
    g.policy = core::DiskPolicy::Raw;
    DiskSnapshot d;
    d.info = s->info;
    d.space = spaceOf(s->info, s->table);
    for (const Segment& seg : d.space.free) {
      d.largest_free_bytes = std::max(d.largest_free_bytes, seg.length);
    }
    g.total_bytes += d.space.size_bytes;
    if (!d.space.exclusive && d.space.partitions == 0) {
      g.empty_disks += 1;
    }
    g.disks.push_back(std::move(d));
  }
  for (auto& [name, g] : groups) {
    std::vector<DiskSpace> spaces;
    for (const DiskSnapshot& d : g.disks) {
      spaces.push_back(d.space);
    }
    g.free_bytes = freeBytes(spaces);
    g.largest_allocatable_bytes = largestFreeSegment(spaces);
    snap.groups.push_back(std::move(g));
  }
  return snap;
}

}  // namespace carina::storage
