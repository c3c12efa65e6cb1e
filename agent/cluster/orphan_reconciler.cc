#include "agent/cluster/orphan_reconciler.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/core/blocking.h"
#include "agent/core/log.h"
#include "agent/core/status.h"

namespace carina::cluster {

namespace net = boost::asio;

namespace {

log::Logger& logger() {
  static log::Logger& l = log::get("orphan");
  return l;
}

int64_t seconds(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::seconds>(d).count();
}

/** The keys by which a LogicVolume may refer to a volume: status.volumeID, its name, and the
 *  volume id derived from its name (a LogicVolume named after the CSI volume name, as Carina
 *  does, refers to volumeIdForName(name) even before its status is filled). */
std::vector<std::string> logicVolumeKeys(const LogicVolumeRef& lv) {
  std::vector<std::string> keys;
  if (!lv.volume_id.empty()) {
    keys.push_back(lv.volume_id);
  }
  if (!lv.name.empty()) {
    keys.push_back(lv.name);
    keys.push_back(storage::volumeIdForName(lv.name));
  }
  return keys;
}

std::set<std::string> referencedByLogicVolumes(const ClusterView& view) {
  std::set<std::string> refs;
  for (const auto& lv : view.logic_volumes) {
    for (auto& k : logicVolumeKeys(lv)) {
      refs.insert(std::move(k));
    }
  }
  return refs;
}

std::set<std::string> localIds(const std::vector<LocalVolume>& local) {
  std::set<std::string> ids;
  for (const auto& v : local) {
    ids.insert(v.id);
  }
  return ids;
}

bool anyIn(const std::vector<std::string>& keys, const std::set<std::string>& set) {
  return std::any_of(keys.begin(), keys.end(), [&](const auto& k) { return set.count(k) > 0; });
}

OrphanCheck checkLogicVolumeWith(const LogicVolumeRef& lv, const std::string& node_name,
                                 const std::set<std::string>& pv_handles,
                                 const std::set<std::string>& local_ids) {
  if (lv.node != node_name || node_name.empty()) {
    return OrphanCheck::OtherNode;
  }
  auto keys = logicVolumeKeys(lv);
  if (anyIn(keys, pv_handles)) {
    return OrphanCheck::HasPersistentVolume;
  }
  if (anyIn(keys, local_ids)) {
    return OrphanCheck::HasLocalVolume;
  }
  return OrphanCheck::Orphan;
}

}  // namespace

OrphanOptions orphanOptionsFromConfig(const core::ReconcilerConfig& config, std::string node_name) {
  OrphanOptions o;
  o.interval = std::chrono::seconds(config.interval_seconds);
  o.grace = std::chrono::seconds(config.grace_period_seconds);
  o.dry_run = config.dry_run;
  o.enabled = config.enabled;
  o.node_name = std::move(node_name);
  return o;
}

std::string_view toString(OrphanActionKind kind) {
  switch (kind) {
    case OrphanActionKind::DeleteVolume:
      return "delete-volume";
    case OrphanActionKind::DeleteLogicVolume:
      return "delete-logicvolume";
    case OrphanActionKind::Skip:
      return "skip";
  }
  return "skip";
}

std::string_view toString(SkipReason reason) {
  switch (reason) {
    case SkipReason::None:
      return "";
    case SkipReason::CachesUnsynced:
      return "caches not synced";
    case SkipReason::WaitingForGrace:
      return "waiting for the grace period";
    case SkipReason::InUse:
      return "in use";
    case SkipReason::DeletionInProgress:
      return "deletion in progress";
  }
  return "";
}

std::string_view toString(OrphanTarget target) {
  return target == OrphanTarget::Volume ? "volume" : "logicvolume";
}

std::string_view toString(OrphanCheck check) {
  switch (check) {
    case OrphanCheck::Orphan:
      return "orphan";
    case OrphanCheck::Unsynced:
      return "caches not synced";
    case OrphanCheck::Gone:
      return "gone";
    case OrphanCheck::HasPersistentVolume:
      return "a PersistentVolume refers to it";
    case OrphanCheck::HasLogicVolume:
      return "a LogicVolume refers to it";
    case OrphanCheck::HasLocalVolume:
      return "its volume exists on the node";
    case OrphanCheck::InUse:
      return "in use";
    case OrphanCheck::OtherNode:
      return "belongs to another node";
  }
  return "";
}

OrphanCheck checkVolume(const OrphanInputs& inputs, const std::string& id) {
  if (!inputs.cluster.caches_synced) {
    return OrphanCheck::Unsynced;
  }
  auto it = std::find_if(inputs.local.begin(), inputs.local.end(),
                         [&](const LocalVolume& v) { return v.id == id; });
  if (id.empty() || it == inputs.local.end()) {
    return OrphanCheck::Gone;
  }
  if (inputs.cluster.pv_volume_handles.count(id) > 0) {
    return OrphanCheck::HasPersistentVolume;
  }
  if (referencedByLogicVolumes(inputs.cluster).count(id) > 0) {
    return OrphanCheck::HasLogicVolume;
  }
  if (it->in_use) {
    return OrphanCheck::InUse;
  }
  return OrphanCheck::Orphan;
}

OrphanCheck checkLogicVolume(const OrphanInputs& inputs, const std::string& name,
                             const std::string& node_name) {
  if (!inputs.cluster.caches_synced) {
    return OrphanCheck::Unsynced;
  }
  const auto& lvs = inputs.cluster.logic_volumes;
  auto it = std::find_if(lvs.begin(), lvs.end(),
                         [&](const LogicVolumeRef& lv) { return lv.name == name; });
  if (name.empty() || it == lvs.end()) {
    return OrphanCheck::Gone;
  }
  return checkLogicVolumeWith(*it, node_name, inputs.cluster.pv_volume_handles,
                              localIds(inputs.local));
}

// ---------------------------------------------------------------------------------------------
// OrphanTracker

std::vector<OrphanAction> OrphanTracker::decide(SteadyTime now, WallTime wall_now,
                                                const OrphanInputs& inputs,
                                                const OrphanOptions& options) {
  std::vector<OrphanAction> actions;
  if (!inputs.cluster.caches_synced) {
    OrphanAction a;
    a.reason = SkipReason::CachesUnsynced;
    actions.push_back(std::move(a));
    return actions;  // unreliable data: no timer starts, none is dropped
  }
  const auto& pv = inputs.cluster.pv_volume_handles;
  const std::set<std::string> lv_refs = referencedByLogicVolumes(inputs.cluster);
  const std::set<std::string> local_ids = localIds(inputs.local);
  const auto grace = std::max(options.grace, std::chrono::milliseconds(0));
  std::set<std::pair<OrphanTarget, std::string>> orphans;

  auto age = [&](OrphanTarget target, const std::string& name) {
    auto key = std::make_pair(target, name);
    orphans.insert(key);
    auto [it, inserted] = first_seen_.try_emplace(key, now);
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(now - it->second);
    return std::max(d, std::chrono::milliseconds(0));
  };

  // Volumes, by id (duplicates, which the backend should never report, are decided once).
  std::vector<const LocalVolume*> local;
  for (const auto& v : inputs.local) {
    local.push_back(&v);
  }
  std::sort(local.begin(), local.end(),
            [](const LocalVolume* a, const LocalVolume* b) { return a->id < b->id; });
  std::set<std::string> seen;
  for (const LocalVolume* v : local) {
    if (v->id.empty() || !seen.insert(v->id).second) {
      continue;
    }
    if (pv.count(v->id) > 0 || lv_refs.count(v->id) > 0) {
      continue;  // not an orphan (its timer, if any, is dropped below)
    }
    OrphanAction a;
    a.target = OrphanTarget::Volume;
    a.name = v->id;
    a.volume_id = v->id;
    a.device = v->device;
    a.group = v->group;
    a.size_bytes = v->size_bytes;
    if (v->in_use) {
      // Never delete what is in use, and restart its clock: it must be an unused orphan for a
      // whole grace period before anything happens.
      a.reason = SkipReason::InUse;
      a.detail = v->in_use_reason;
    } else {
      a.orphaned_for = age(OrphanTarget::Volume, v->id);
      if (a.orphaned_for < grace) {
        a.reason = SkipReason::WaitingForGrace;
      } else {
        a.kind = OrphanActionKind::DeleteVolume;
      }
    }
    actions.push_back(std::move(a));
  }

  // LogicVolumes of this node, by name.
  std::vector<const LogicVolumeRef*> lvs;
  for (const auto& lv : inputs.cluster.logic_volumes) {
    lvs.push_back(&lv);
  }
  std::sort(lvs.begin(), lvs.end(),
            [](const LogicVolumeRef* a, const LogicVolumeRef* b) { return a->name < b->name; });
  seen.clear();
  for (const LogicVolumeRef* lv : lvs) {
    if (lv->name.empty() || !seen.insert(lv->name).second) {
      continue;
    }
    if (checkLogicVolumeWith(*lv, options.node_name, pv, local_ids) != OrphanCheck::Orphan) {
      continue;
    }
    OrphanAction a;
    a.target = OrphanTarget::LogicVolume;
    a.name = lv->name;
    a.volume_id = lv->volume_id;
    a.orphaned_for = age(OrphanTarget::LogicVolume, lv->name);
    bool young = lv->created && wall_now - *lv->created < grace;
    if (lv->deleting) {
      a.reason = SkipReason::DeletionInProgress;
    } else if (a.orphaned_for < grace || young) {
      a.reason = SkipReason::WaitingForGrace;
    } else {
      a.kind = OrphanActionKind::DeleteLogicVolume;
    }
    actions.push_back(std::move(a));
  }

  // Whatever is not an orphan now is forgotten: if it becomes one again, it starts from zero.
  for (auto it = first_seen_.begin(); it != first_seen_.end();) {
    if (orphans.count(it->first) == 0) {
      it = first_seen_.erase(it);
    } else {
      ++it;
    }
  }
  return actions;
}

void OrphanTracker::forget(OrphanTarget target, const std::string& name) {
  first_seen_.erase(std::make_pair(target, name));
}

std::optional<OrphanTracker::SteadyTime> OrphanTracker::firstSeen(OrphanTarget target,
                                                                  const std::string& name) const {
  auto it = first_seen_.find(std::make_pair(target, name));
  if (it == first_seen_.end()) {
    return std::nullopt;
  }
  return it->second;
}

// ---------------------------------------------------------------------------------------------
// OrphanReconciler

struct OrphanReconciler::State : std::enable_shared_from_this<OrphanReconciler::State> {
  State(Executor ex, net::thread_pool& p, OrphanOptions o, OrphanDeps d)
      : strand(net::make_strand(ex)),
        pool(p),
        options(std::move(o)),
        deps(std::move(d)),
        timer(strand) {}

  net::strand<Executor> strand;
  net::thread_pool& pool;
  // Written on the strand only (updateOptions), under options_mu so that other threads can copy
  // it (options()); the strand reads it without the lock.
  OrphanOptions options;
  mutable std::mutex options_mu;
  const OrphanDeps deps;
  // Strand-only.
  net::steady_timer timer;
  OrphanTracker tracker;
  bool busy = false;
  bool started = false;
  bool waiting = false;  // the loop waits for its timer
  bool rearm = false;    // the wait was cut short to apply a new interval: wait again
  // Any thread.
  std::atomic<bool> stopped{false};
  struct Counters {
    std::atomic<uint64_t> runs{0}, volumes_deleted{0}, logic_volumes_deleted{0}, skipped_in_use{0},
        skipped_unsynced{0}, failures{0}, dry_run_reports{0}, recheck_aborts{0};
  } counters;

  std::chrono::steady_clock::time_point steadyNow() const {
    return deps.steady_now ? deps.steady_now() : std::chrono::steady_clock::now();
  }
  std::chrono::system_clock::time_point wallNow() const {
    return deps.wall_now ? deps.wall_now() : std::chrono::system_clock::now();
  }

  void emit(bool warning, std::string reason, const OrphanAction& a, std::string message) const {
    if (!deps.report) {
      return;
    }
    OrphanEvent e;
    e.warning = warning;
    e.reason = std::move(reason);
    e.target = a.target;
    e.name = a.name;
    e.volume_id = a.volume_id;
    e.message = std::move(message);
    try {
      deps.report(e);
    } catch (const std::exception& ex) {
      CARINA_LOG_WARN(logger(), "cannot report orphan event", {{"error", ex.what()}});
    }
  }

  /** local_volumes on the pool; exceptions become Internal. */
  Task<absl::StatusOr<std::vector<LocalVolume>>> listLocal() {
    auto work = [list = deps.local_volumes]() -> absl::StatusOr<std::vector<LocalVolume>> {
      try {
        return list();
      } catch (const std::exception& e) {
        return absl::InternalError(std::string("listing local volumes: ") + e.what());
      }
    };  // named: see agent/core/blocking.h
    co_return co_await runBlocking(pool, work);
  }

  /** The cluster view, exceptions become an unsynced view. */
  ClusterView clusterView() const {
    try {
      return deps.cluster_view();
    } catch (const std::exception& e) {
      CARINA_LOG_ERROR(logger(), "cluster view failed", {{"error", e.what()}});
      return ClusterView{};
    }
  }

  /** Probes the devices of @p ids in @p local on the pool (one job), when a probe is set. */
  Task<void> probe(std::vector<LocalVolume>& local, const std::set<std::string>& ids) {
    if (!deps.device_use || ids.empty()) {
      co_return;
    }
    std::vector<std::string> devices;
    for (const auto& v : local) {
      if (ids.count(v.id) > 0) {
        devices.push_back(v.device);
      }
    }
    auto work = [use = deps.device_use, devices] {
      std::vector<DeviceUseAnswer> answers;
      for (const auto& d : devices) {
        DeviceUseAnswer a;
        try {
          auto r = use(d);
          if (r.ok()) {
            a = *r;
          } else {
            a.reason = "cannot check: " + std::string(toStd(r.status().message()));
          }
        } catch (const std::exception& e) {
          a.reason = std::string("cannot check: ") + e.what();
        }
        answers.push_back(std::move(a));
      }
      return answers;
    };  // named: see agent/core/blocking.h
    std::vector<DeviceUseAnswer> answers = co_await runBlocking(pool, work);
    size_t i = 0;
    for (auto& v : local) {
      if (ids.count(v.id) > 0 && i < answers.size()) {
        v.in_use = answers[i].in_use;
        v.in_use_reason = answers[i].reason;
        ++i;
      }
    }
  }

  /** For a pass: local volumes (pool), the cluster view (strand), then an in-use probe of the
   *  volumes nothing refers to (pool). */
  Task<absl::StatusOr<OrphanInputs>> passInputs() {
    auto local = co_await listLocal();
    if (!local.ok()) {
      co_return local.status();
    }
    OrphanInputs in;
    in.local = std::move(*local);
    in.cluster = clusterView();
    std::set<std::string> candidates;
    if (in.cluster.caches_synced) {
      std::set<std::string> lv_refs = referencedByLogicVolumes(in.cluster);
      for (const auto& v : in.local) {
        if (in.cluster.pv_volume_handles.count(v.id) == 0 && lv_refs.count(v.id) == 0) {
          candidates.insert(v.id);
        }
      }
    }
    co_await probe(in.local, candidates);
    co_return in;
  }

  /** For a re-check before deleting @p id (or a LogicVolume, id ""): local volumes and the
   *  probe of @p id first (slow, pool), then the cluster view (fast, the one a new PV shows up
   *  in), so that the window before the deletion is as short as it can be. */
  Task<absl::StatusOr<OrphanInputs>> recheckInputs(const std::string& id) {
    auto local = co_await listLocal();
    if (!local.ok()) {
      co_return local.status();
    }
    OrphanInputs in;
    in.local = std::move(*local);
    if (!id.empty()) {
      const std::set<std::string> ids{id};  // named: see agent/core/blocking.h
      co_await probe(in.local, ids);
    }
    in.cluster = clusterView();
    co_return in;
  }

  Task<void> deleteVolume(const OrphanAction& a, OrphanRunReport& report) {
    const std::string ref = "volume/" + a.name;
    if (options.dry_run) {
      counters.dry_run_reports.fetch_add(1);
      report.would_delete.push_back(ref);
      CARINA_LOG_INFO(logger(), "dry-run: would delete orphan volume",
                      {{"volume_id", a.name},
                       {"device", a.device},
                       {"group", a.group},
                       {"size", a.size_bytes},
                       {"orphaned_s", seconds(a.orphaned_for)}});
      emit(false, "OrphanWouldDelete", a,
           "dry-run: volume " + a.name + " on " + a.device +
               " has no PersistentVolume and no LogicVolume and would be deleted");
      co_return;
    }
    auto fresh = co_await recheckInputs(a.name);
    if (stopped) {
      co_return;
    }
    OrphanCheck check = fresh.ok() ? checkVolume(*fresh, a.name) : OrphanCheck::Unsynced;
    if (!fresh.ok()) {
      counters.failures.fetch_add(1);
      report.failed.push_back(ref);
      CARINA_LOG_ERROR(
          logger(), "orphan re-check failed; volume kept",
          {{"volume_id", a.name}, {"error", std::string(toStd(fresh.status().message()))}});
      co_return;
    }
    if (check != OrphanCheck::Orphan) {
      counters.recheck_aborts.fetch_add(1);
      report.rechecked_kept.push_back(ref);
      std::string detail;
      if (check == OrphanCheck::InUse) {
        counters.skipped_in_use.fetch_add(1);
        for (const auto& v : fresh->local) {
          if (v.id == a.name) {
            detail = v.in_use_reason;
          }
        }
      }
      if (check != OrphanCheck::Unsynced) {
        tracker.forget(OrphanTarget::Volume, a.name);
      }
      CARINA_LOG_INFO(logger(), "orphan volume kept at the re-check before deletion",
                      {{"volume_id", a.name}, {"reason", toString(check)}, {"detail", detail}});
      co_return;
    }
    // The last step: the backend re-checks the device itself (FailedPrecondition when busy).
    auto work = [del = deps.delete_volume, id = a.name]() -> absl::Status {
      try {
        return del(id);
      } catch (const std::exception& e) {
        return absl::InternalError(std::string("deleting volume: ") + e.what());
      }
    };  // named: see agent/core/blocking.h
    absl::Status st = co_await runBlocking(pool, work);
    if (st.code() == absl::StatusCode::kAborted) {
      // A CSI call holds the volume (delete_volume takes its lock): it is being worked on,
      // which is not an error; look again next pass.
      counters.skipped_in_use.fetch_add(1);
      report.rechecked_kept.push_back(ref);
      CARINA_LOG_INFO(logger(), "orphan volume busy; retried next pass",
                      {{"volume_id", a.name}, {"detail", std::string(toStd(st.message()))}});
      co_return;
    }
    if (st.ok()) {
      counters.volumes_deleted.fetch_add(1);
      report.volumes_deleted.push_back(a.name);
      tracker.forget(OrphanTarget::Volume, a.name);
      CARINA_LOG_INFO(logger(), "orphan volume deleted",
                      {{"volume_id", a.name},
                       {"device", a.device},
                       {"group", a.group},
                       {"size", a.size_bytes},
                       {"orphaned_s", seconds(a.orphaned_for)}});
      emit(false, "OrphanVolumeDeleted", a,
           "deleted orphan volume " + a.name + " (" + a.device + ", " +
               std::to_string(a.size_bytes) +
               " bytes): no PersistentVolume and no LogicVolume for " +
               std::to_string(seconds(a.orphaned_for)) + "s");
    } else {
      counters.failures.fetch_add(1);
      report.failed.push_back(ref);
      CARINA_LOG_ERROR(logger(), "deleting orphan volume failed; retried next pass",
                       {{"volume_id", a.name},
                        {"device", a.device},
                        {"error", std::string(toStd(st.message()))}});
      emit(true, "OrphanDeleteFailed", a,
           "deleting orphan volume " + a.name + " failed: " + std::string(toStd(st.message())));
    }
  }

  Task<void> deleteLogicVolume(const OrphanAction& a, OrphanRunReport& report) {
    const std::string ref = "logicvolume/" + a.name;
    if (options.dry_run) {
      counters.dry_run_reports.fetch_add(1);
      report.would_delete.push_back(ref);
      CARINA_LOG_INFO(logger(), "dry-run: would delete orphan LogicVolume",
                      {{"logicvolume", a.name},
                       {"volume_id", a.volume_id},
                       {"orphaned_s", seconds(a.orphaned_for)}});
      emit(false, "OrphanWouldDelete", a,
           "dry-run: LogicVolume " + a.name +
               " has no PersistentVolume and no volume on the node and would be deleted");
      co_return;
    }
    auto fresh = co_await recheckInputs("");
    if (stopped) {
      co_return;
    }
    if (!fresh.ok()) {
      counters.failures.fetch_add(1);
      report.failed.push_back(ref);
      CARINA_LOG_ERROR(
          logger(), "orphan re-check failed; LogicVolume kept",
          {{"logicvolume", a.name}, {"error", std::string(toStd(fresh.status().message()))}});
      co_return;
    }
    OrphanCheck check = checkLogicVolume(*fresh, a.name, options.node_name);
    std::string why(toString(check));
    if (check == OrphanCheck::Orphan) {
      for (const auto& lv : fresh->cluster.logic_volumes) {
        if (lv.name == a.name && lv.deleting) {
          check = OrphanCheck::Gone;  // someone else is deleting it now: leave it to them
          why = toString(SkipReason::DeletionInProgress);
        }
      }
    }
    if (check != OrphanCheck::Orphan) {
      counters.recheck_aborts.fetch_add(1);
      report.rechecked_kept.push_back(ref);
      if (check != OrphanCheck::Unsynced) {
        tracker.forget(OrphanTarget::LogicVolume, a.name);
      }
      CARINA_LOG_INFO(logger(), "orphan LogicVolume kept at the re-check before deletion",
                      {{"logicvolume", a.name}, {"reason", why}});
      co_return;
    }
    absl::Status st;
    try {
      st = co_await deps.delete_logic_volume(a.name);
    } catch (const std::exception& e) {
      st = absl::InternalError(std::string("deleting LogicVolume: ") + e.what());
    }
    if (st.ok() || st.code() == absl::StatusCode::kNotFound) {
      counters.logic_volumes_deleted.fetch_add(1);
      report.logic_volumes_deleted.push_back(a.name);
      tracker.forget(OrphanTarget::LogicVolume, a.name);
      CARINA_LOG_INFO(logger(), "orphan LogicVolume deleted",
                      {{"logicvolume", a.name},
                       {"volume_id", a.volume_id},
                       {"orphaned_s", seconds(a.orphaned_for)}});
      emit(false, "OrphanLogicVolumeDeleted", a,
           "deleted orphan LogicVolume " + a.name +
               ": no PersistentVolume and no volume on the node for " +
               std::to_string(seconds(a.orphaned_for)) + "s");
    } else {
      counters.failures.fetch_add(1);
      report.failed.push_back(ref);
      CARINA_LOG_ERROR(logger(), "deleting orphan LogicVolume failed; retried next pass",
                       {{"logicvolume", a.name}, {"error", std::string(toStd(st.message()))}});
      emit(
          true, "OrphanDeleteFailed", a,
          "deleting orphan LogicVolume " + a.name + " failed: " + std::string(toStd(st.message())));
    }
  }

  void noteSkip(const OrphanAction& a) {
    switch (a.reason) {
      case SkipReason::InUse:
        counters.skipped_in_use.fetch_add(1);
        CARINA_LOG_WARN(logger(), "orphan volume in use; not deleted",
                        {{"volume_id", a.name}, {"device", a.device}, {"detail", a.detail}});
        emit(true, "OrphanVolumeInUse", a,
             "volume " + a.name + " on " + a.device +
                 " has no PersistentVolume and no LogicVolume but is in use (" + a.detail +
                 "); it is kept");
        break;
      case SkipReason::WaitingForGrace:
        CARINA_LOG_DEBUG(logger(), "orphan waiting for the grace period",
                         {{"target", toString(a.target)},
                          {"name", a.name},
                          {"orphaned_s", seconds(a.orphaned_for)},
                          {"grace_s", seconds(options.grace)}});
        break;
      case SkipReason::DeletionInProgress:
        CARINA_LOG_DEBUG(logger(), "orphan LogicVolume already being deleted", {{"name", a.name}});
        break;
      case SkipReason::CachesUnsynced:
      case SkipReason::None:
        break;
    }
  }

  static Task<OrphanRunReport> runPass(std::shared_ptr<State> s) {
    OrphanRunReport report;
    if (s->stopped) {
      report.status = absl::CancelledError("orphan reconciler stopped");
      co_return report;
    }
    if (s->busy) {
      report.busy = true;
      co_return report;
    }
    s->busy = true;
    struct Reset {
      State* st;
      ~Reset() { st->busy = false; }
    } reset{s.get()};
    s->counters.runs.fetch_add(1);

    auto unsynced = [&] {
      s->counters.skipped_unsynced.fetch_add(1);
      OrphanAction a;
      a.reason = SkipReason::CachesUnsynced;
      report.actions = {a};
      CARINA_LOG_INFO(logger(), "caches not synced; orphan pass skipped");
    };
    // Cheap check first: no disk work while the caches are not synced.
    if (!s->clusterView().caches_synced) {
      unsynced();
      co_return report;
    }
    auto inputs = co_await s->passInputs();
    if (!inputs.ok()) {
      s->counters.failures.fetch_add(1);
      report.status = annotate(inputs.status(), "orphan pass");
      CARINA_LOG_ERROR(logger(), "orphan pass failed; nothing deleted",
                       {{"error", std::string(toStd(inputs.status().message()))}});
      co_return report;
    }
    if (!inputs->cluster.caches_synced) {
      unsynced();
      co_return report;
    }
    report.synced = true;
    report.actions = s->tracker.decide(s->steadyNow(), s->wallNow(), *inputs, s->options);
    size_t candidates = 0;
    for (const auto& a : report.actions) {
      if (s->stopped) {
        break;
      }
      switch (a.kind) {
        case OrphanActionKind::Skip:
          s->noteSkip(a);
          break;
        case OrphanActionKind::DeleteVolume:
          ++candidates;
          co_await s->deleteVolume(a, report);
          break;
        case OrphanActionKind::DeleteLogicVolume:
          ++candidates;
          co_await s->deleteLogicVolume(a, report);
          break;
      }
    }
    auto level = candidates > 0 ? log::Level::Info : log::Level::Debug;
    CARINA_LOG(logger(), level, "orphan pass done",
               {{"volumes", inputs->local.size()},
                {"logicvolumes", inputs->cluster.logic_volumes.size()},
                {"orphans", report.actions.size()},
                {"volumes_deleted", report.volumes_deleted.size()},
                {"logicvolumes_deleted", report.logic_volumes_deleted.size()},
                {"would_delete", report.would_delete.size()},
                {"failed", report.failed.size()},
                {"dry_run", s->options.dry_run}});
    co_return report;
  }

  static Task<void> loop(std::shared_ptr<State> s) {
    while (!s->stopped) {
      boost::system::error_code ec;
      s->timer.expires_after(s->options.interval);
      s->waiting = true;
      co_await s->timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      s->waiting = false;
      if (s->stopped) {
        co_return;
      }
      if (std::exchange(s->rearm, false)) {
        continue;  // a new interval: the wait starts again from now
      }
      co_await runPass(s);
    }
  }

  /** On the strand: applies new settings (node name and enabled stay as they are). */
  void apply(OrphanOptions next) {
    next.node_name = options.node_name;
    next.enabled = options.enabled;
    const bool new_interval = next.interval != options.interval;
    {
      std::lock_guard lock(options_mu);
      options = std::move(next);
    }
    CARINA_LOG_INFO(logger(), "orphan reconciler settings updated",
                    {{"interval_s", seconds(options.interval)},
                     {"grace_s", seconds(options.grace)},
                     {"dry_run", options.dry_run}});
    if (new_interval && waiting) {
      rearm = true;
      timer.cancel();
    }
  }
};

OrphanReconciler::OrphanReconciler(Executor executor, boost::asio::thread_pool& pool,
                                   OrphanOptions options, OrphanDeps deps)
    : state_(std::make_shared<State>(std::move(executor), pool, std::move(options),
                                     std::move(deps))) {}

OrphanReconciler::~OrphanReconciler() { stop(); }

absl::Status OrphanReconciler::start() {
  auto s = state_;
  const OrphanOptions o = options();
  if (!s->deps.cluster_view || !s->deps.local_volumes || !s->deps.delete_volume ||
      !s->deps.delete_logic_volume) {
    return absl::InvalidArgumentError(
        "orphan reconciler: cluster_view, local_volumes, delete_volume and delete_logic_volume "
        "are required");
  }
  if (o.node_name.empty()) {
    return absl::InvalidArgumentError("orphan reconciler: node name is required");
  }
  if (o.interval <= std::chrono::milliseconds(0)) {
    return absl::InvalidArgumentError("orphan reconciler: interval must be positive");
  }
  if (s->stopped) {
    return absl::FailedPreconditionError("orphan reconciler stopped");
  }
  if (s->started) {
    return absl::FailedPreconditionError("orphan reconciler already started");
  }
  s->started = true;
  if (!o.enabled) {
    CARINA_LOG_INFO(logger(), "orphan reconciler disabled");
    return absl::OkStatus();
  }
  net::co_spawn(s->strand, State::loop(s), [](const std::exception_ptr& e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        CARINA_LOG_ERROR(logger(), "orphan reconciler loop failed", {{"error", ex.what()}});
      }
    }
  });
  CARINA_LOG_INFO(logger(), "orphan reconciler started",
                  {{"interval_s", seconds(o.interval)},
                   {"grace_s", seconds(o.grace)},
                   {"dry_run", o.dry_run},
                   {"node", o.node_name}});
  return absl::OkStatus();
}

void OrphanReconciler::stop() {
  auto s = state_;
  if (s->stopped.exchange(true)) {
    return;
  }
  net::dispatch(s->strand, [s] { s->timer.cancel(); });
}

Task<OrphanRunReport> OrphanReconciler::runOnce() {
  auto s = state_;
  co_return co_await net::co_spawn(s->strand, State::runPass(s), net::use_awaitable);
}

OrphanStats OrphanReconciler::stats() const {
  const auto& c = state_->counters;
  OrphanStats out;
  out.runs = c.runs.load();
  out.volumes_deleted = c.volumes_deleted.load();
  out.logic_volumes_deleted = c.logic_volumes_deleted.load();
  out.skipped_in_use = c.skipped_in_use.load();
  out.skipped_unsynced = c.skipped_unsynced.load();
  out.failures = c.failures.load();
  out.dry_run_reports = c.dry_run_reports.load();
  out.recheck_aborts = c.recheck_aborts.load();
  return out;
}

OrphanOptions OrphanReconciler::options() const {
  std::lock_guard lock(state_->options_mu);
  return state_->options;
}

absl::Status OrphanReconciler::updateOptions(OrphanOptions next) {
  if (next.interval <= std::chrono::milliseconds(0)) {
    return absl::InvalidArgumentError("orphan reconciler: interval must be positive");
  }
  auto s = state_;
  net::post(s->strand, [s, next = std::move(next)]() mutable { s->apply(std::move(next)); });
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Helpers for the wiring

std::vector<LocalVolume> toLocalVolumes(const std::vector<storage::Volume>& volumes) {
  std::vector<LocalVolume> out;
  out.reserve(volumes.size());
  for (const auto& v : volumes) {
    LocalVolume l;
    l.id = v.id;
    l.group = v.group;
    l.size_bytes = v.size_bytes;
    l.device = v.device;
    l.in_use = true;  // until probed: never delete what was not checked
    l.in_use_reason = "not checked";
    out.push_back(std::move(l));
  }
  return out;
}

std::optional<std::chrono::system_clock::time_point> parseKubeTimestamp(std::string_view text) {
  size_t pos = 0;
  auto number = [&](size_t digits, int& out) {
    if (pos + digits > text.size()) {
      return false;
    }
    int v = 0;
    for (size_t i = 0; i < digits; ++i) {
      char c = text[pos + i];
      if (c < '0' || c > '9') {
        return false;
      }
      v = v * 10 + (c - '0');
    }
    pos += digits;
    out = v;
    return true;
  };
  auto expect = [&](char c) {
    if (pos < text.size() && (text[pos] == c || (c == 'T' && text[pos] == 't'))) {
      ++pos;
      return true;
    }
    return false;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (!number(4, y) || !expect('-') || !number(2, mo) || !expect('-') || !number(2, d) ||
      !expect('T') || !number(2, h) || !expect(':') || !number(2, mi) || !expect(':') ||
      !number(2, se)) {
    return std::nullopt;
  }
  std::chrono::nanoseconds frac{0};
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t start = pos;
    int64_t scale = 100'000'000;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      frac += std::chrono::nanoseconds((text[pos] - '0') * scale);
      scale /= 10;
      ++pos;
    }
    if (pos == start) {
      return std::nullopt;
    }
  }
  std::chrono::minutes offset{0};
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    bool negative = text[pos] == '-';
    ++pos;
    int oh = 0, om = 0;
    if (!number(2, oh) || !expect(':') || !number(2, om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = std::chrono::minutes(oh * 60 + om) * (negative ? -1 : 1);
  } else {
    return std::nullopt;
  }
  if (pos != text.size() || h > 23 || mi > 59 || se > 60) {
    return std::nullopt;
  }
  std::chrono::year_month_day ymd{std::chrono::year(y),
                                  std::chrono::month(static_cast<unsigned>(mo)),
                                  std::chrono::day(static_cast<unsigned>(d))};
  if (!ymd.ok()) {
    return std::nullopt;
  }
  auto tp = std::chrono::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(mi) +
            std::chrono::seconds(se) - offset;
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(tp + frac);
}

}  // namespace carina::cluster
