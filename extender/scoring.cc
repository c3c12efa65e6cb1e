#include "extender/scoring.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "agent/core/constants.h"
#include "agent/storage/placement.h"

namespace carina::extender {

namespace {

// lvcreate's default extent size: LVM sizes are rounded up to it, so the extender does too
// (never promise what the LVM engine refuses).
constexpr uint64_t kLvmExtent = 4 * kMiB;

uint64_t alignUpTo(uint64_t bytes, uint64_t unit) { return (bytes + unit - 1) / unit * unit; }

using storage::ClassParams;

/** The one StorageClass parameter parser (shared with CreateVolume), with the class named. */
absl::StatusOr<ClassParams> classParams(const StorageClass& sc) {
  absl::StatusOr<ClassParams> p = storage::parseClassParams(sc.parameters);
  if (!p.ok()) {
    return absl::Status(p.status().code(), "carina: StorageClass " + sc.name + ": " +
                                               std::string(p.status().message()));
  }
  return p;
}

bool isCarina(const StorageClass& sc) { return sc.provisioner == kDriverName; }

NodeVerdict fail(const std::string& node, std::string reason) {
  NodeVerdict v;
  v.node = node;
  v.fits = false;
  v.reason = std::move(reason);
  v.score = 0;
  return v;
}

/** One group of the node the pod uses, with its supply after promises. Reused across the nodes
 *  of one request (the vectors keep their capacity). */
struct GroupWork {
  const GroupSupply* supply = nullptr;
  std::vector<storage::DiskSpace> disks;  // RAW, only when promises are subtracted
  uint64_t vg_free = 0;                   // LVM
  std::vector<const VolumeDemand*> demands;
  std::vector<storage::Demand> promised;  // RAW promises, placed before the pod's demands
};

const GroupSupply* findGroup(const NodeSupply& supply, const std::string& name) {
  for (const GroupSupply& g : supply.groups) {
    if (g.name == name) {
      return &g;
    }
  }
  return nullptr;
}

/** Promised volumes are placed one by one, in placeAll's order (exclusive first, larger first),
 *  with the same best-fit functions; a promise that no longer fits is skipped (its CreateVolume
 *  will fail with RESOURCE_EXHAUSTED and the PVC be rescheduled). */
void subtractPromises(GroupWork& w) {
  auto before = [](const storage::Demand& a, const storage::Demand& b) {
    if (a.exclusive != b.exclusive) {
      return a.exclusive;
    }
    return storage::alignUp(a.bytes) > storage::alignUp(b.bytes);
  };
  // A stable insertion sort: a node has few promises, and std::stable_sort allocates.
  std::vector<storage::Demand>& v = w.promised;
  for (std::size_t i = 1; i < v.size(); ++i) {
    storage::Demand x = std::move(v[i]);
    std::size_t j = i;
    for (; j > 0 && before(x, v[j - 1]); --j) {
      v[j] = std::move(v[j - 1]);
    }
    v[j] = std::move(x);
  }
  for (const storage::Demand& d : w.promised) {
    std::optional<storage::Fit> p = d.exclusive ? storage::fitExclusive(w.disks, d.bytes)
                                                : storage::fitShared(w.disks, d.bytes);
    if (p) {
      storage::consume(w.disks, *p, d.exclusive);
    }
  }
}

/** Judges the nodes of one request against one resolved demand. Everything that does not depend
 *  on the node is done once; the per-node scratch (groups, demand lists, class parameters of
 *  promised claims) is reused, so a passing node costs no allocation beyond its verdict. */
class Evaluator {
public:
  Evaluator(const PodDemand& demand, const ClusterView& view, const ScoringOptions& options)
      : demand_(demand), view_(view), options_(options) {}

  /** Whether judging needs the node's supply and promises (else evaluate() ignores them). */
  bool needsNodeState() const {
    if (!demand_.relevant() || demand_.volumes.empty()) {
      return false;
    }
    return true;
  }

  NodeVerdict evaluate(const std::string& node, const NodeState& state);

private:
  /** The parameters of StorageClass @p name for a promised claim, cached for the request;
   *  nullptr when the class is unknown, not carina's or invalid (such promises are skipped). */
  const ClassParams* promiseParams(const std::string& name);
  GroupWork& addWork(const GroupSupply* g);
  /** @p c is one of the pod's own claims ("ns/name" in demand_.own_claims), without building
   *  the key. */
  bool isOwnClaim(const Claim& c) const {
    for (const std::string& k : demand_.own_claims) {
      if (k.size() == c.ns.size() + 1 + c.name.size() && k.compare(0, c.ns.size(), c.ns) == 0 &&
          k[c.ns.size()] == '/' && k.compare(c.ns.size() + 1, c.name.size(), c.name) == 0) {
        return true;
      }
    }
    return false;
  }
  GroupWork* findWork(const std::string& name);
  /** Utilisation of RAW group @p w after placing its demands, or a failure reason. */
  std::optional<double> placeRaw(GroupWork& w, const std::string& node, NodeVerdict& failed);

  const PodDemand& demand_;
  const ClusterView& view_;
  const ScoringOptions& options_;
  std::vector<GroupWork> work_;  // the first used_ entries are live
  std::size_t used_ = 0;
  std::vector<storage::Demand> scratch_demands_;
  std::vector<std::pair<std::string, std::optional<ClassParams>>> class_cache_;
};

const ClassParams* Evaluator::promiseParams(const std::string& name) {
  for (const auto& [n, p] : class_cache_) {
    if (n == name) {
      return p ? &*p : nullptr;
    }
  }
  std::optional<ClassParams> params;
  if (std::optional<StorageClass> sc = view_.storageClass(name); sc && isCarina(*sc)) {
    if (absl::StatusOr<ClassParams> p = classParams(*sc); p.ok()) {
      params = std::move(*p);
    }
  }
  class_cache_.emplace_back(name, std::move(params));
  const auto& back = class_cache_.back().second;
  return back ? &*back : nullptr;
}

GroupWork& Evaluator::addWork(const GroupSupply* g) {
  if (used_ == work_.size()) {
    work_.emplace_back();
  }
  GroupWork& w = work_[used_++];
  w.supply = g;
  w.vg_free = g->vg_free_bytes;
  w.disks.clear();
  w.demands.clear();
  w.promised.clear();
  return w;
}

GroupWork* Evaluator::findWork(const std::string& name) {
  for (std::size_t i = 0; i < used_; ++i) {
    if (work_[i].supply->name == name) {
      return &work_[i];
    }
  }
  return nullptr;
}

std::optional<double> Evaluator::placeRaw(GroupWork& w, const std::string& node,
                                          NodeVerdict& failed) {
  const GroupSupply& g = *w.supply;
  // The supply's disks are shared and immutable; copy them only when promises must be
  // subtracted first (placeAll works on its own copy).
  const std::vector<storage::DiskSpace>* disks = &g.disks;
  if (!w.promised.empty()) {
    w.disks = g.disks;
    subtractPromises(w);
    disks = &w.disks;
  }
  uint64_t free = storage::freeBytes(*disks);
  uint64_t total = 0;
  for (const storage::DiskSpace& disk : *disks) {
    total += disk.size_bytes;
  }
  // Free space after placement: shared volumes take their bytes, exclusive ones the whole disk
  // (all of its free segments).
  auto take = [&](std::size_t disk_index, uint64_t bytes, bool exclusive) {
    uint64_t taken = bytes;
    if (exclusive && disk_index < disks->size()) {
      taken = storage::usableBytes((*disks)[disk_index]);
    }
    free -= std::min(free, taken);
  };
  bool ok = true;
  const bool single = w.demands.size() == 1;
  if (single) {
    // The common case, without placeAll's copy of the disks: for one demand placeAll is exactly
    // this best fit (same functions, same message).
    const VolumeDemand& d = *w.demands.front();
    std::optional<storage::Fit> p =
        d.exclusive ? storage::fitExclusive(*disks, d.bytes) : storage::fitShared(*disks, d.bytes);
    if (p) {
      take(p->disk_index, p->bytes, d.exclusive);
    } else {
      ok = false;
    }
  } else {
    // Ids are left empty on the hot path (no string copies per node); a failure is placed
    // again with ids for the message.
    scratch_demands_.clear();
    for (const VolumeDemand* d : w.demands) {
      scratch_demands_.push_back(storage::Demand{std::string(), d->bytes, d->exclusive});
    }
    absl::StatusOr<std::vector<storage::Placement>> placed =
        storage::placeAll(*disks, scratch_demands_);
    if (placed.ok()) {
      for (std::size_t i = 0; i < placed->size(); ++i) {
        take((*placed)[i].disk_index, (*placed)[i].bytes, scratch_demands_[i].exclusive);
      }
    } else {
      ok = false;
    }
  }
  if (!ok && single) {
    // The message placeAll would give, without placing again (nodes that fail are common: every
    // node without room for the pod).
    const VolumeDemand& d = *w.demands.front();
    std::string reason;
    reason.reserve(128 + g.name.size() + d.claim.size());
    reason.append("carina: group ").append(g.name).append(": ");
    storage::appendNotPlaced(reason, *disks, storage::Demand{d.claim, d.bytes, d.exclusive});
    failed = fail(node, std::move(reason));
    return std::nullopt;
  }
  if (!ok) {
    std::vector<storage::Demand> demands;
    demands.reserve(w.demands.size());
    for (const VolumeDemand* d : w.demands) {
      demands.push_back(storage::Demand{d->claim, d->bytes, d->exclusive});
    }
    absl::Status why = storage::placeAll(*disks, demands).status();
    failed = fail(node, "carina: group " + g.name + ": " + std::string(why.message()));
    return std::nullopt;
  }
  double u = 1.0;
  if (total > 0) {
    free = std::min(free, total);
    u = static_cast<double>(total - free) / static_cast<double>(total);
  }
  return u;
}

NodeVerdict Evaluator::evaluate(const std::string& node, const NodeState& state) {
  if (!demand_.relevant()) {
    NodeVerdict verdict;
    verdict.node = node;
    verdict.fits = true;  // not our pod: every node passes with equal scores
    return verdict;
  }
  for (const auto& [pin_node, claim] : demand_.pins) {
    if (pin_node != node) {
      return fail(node, "carina: pod is pinned to node " + pin_node + " by bound PVC " + claim);
    }
  }
  if (demand_.volumes.empty()) {
    NodeVerdict verdict;
    verdict.node = node;
    verdict.fits = true;  // only bound volumes: the pinned node passes, nothing to score
    return verdict;
  }
  const NodeSupply* supply = state.supply.get();
  if (supply == nullptr) {
    return fail(node, "carina: no carina storage reported for node " + node +
                          " (not a carina node, agent not running, or unknown node)");
  }

  // Which group of this node serves which demand.
  auto groupFor = [&](const std::string& wanted, const std::string& storage_class,
                      const std::string& claim) -> absl::StatusOr<const GroupSupply*> {
    if (wanted.empty()) {
      if (supply->groups.size() == 1) {
        return &supply->groups.front();
      }
      return absl::FailedPreconditionError("carina: StorageClass " + storage_class + " of PVC " +
                                           claim + " names no disk group and node " + node +
                                           " has " + std::to_string(supply->groups.size()) +
                                           " groups (set " + std::string(kParamDiskGroup) + ")");
    }
    const GroupSupply* g = findGroup(*supply, wanted);
    if (g == nullptr) {
      return absl::NotFoundError("carina: node " + node + " has no disk group " + wanted +
                                 " (needed by PVC " + claim + ")");
    }
    return g;
  };

  used_ = 0;
  for (const VolumeDemand& d : demand_.volumes) {
    absl::StatusOr<const GroupSupply*> g = groupFor(d.group, d.storage_class, d.claim);
    if (!g.ok()) {
      return fail(node, std::string(g.status().message()));
    }
    GroupWork* w = findWork((*g)->name);
    if (w == nullptr) {
      w = &addWork(*g);
    }
    w->demands.push_back(&d);
  }

  // Subtract what is already promised to this node (but not the pod's own claims).
  for (const Claim& p : state.promised) {
    if (p.bound() || p.selected_node != node || isOwnClaim(p)) {
      continue;
    }
    const ClassParams* params = promiseParams(p.storage_class);
    if (params == nullptr) {
      continue;  // not carina's, unknown, or invalid: CreateVolume will refuse it too
    }
    // (The message of a failed lookup is not used: such a promise is simply skipped.)
    absl::StatusOr<const GroupSupply*> g = groupFor(params->group, p.storage_class, p.name);
    if (!g.ok()) {
      continue;
    }
    GroupWork* w = findWork((*g)->name);
    if (w == nullptr) {
      continue;  // a group the pod does not use
    }
    if (w->supply->policy == core::DiskPolicy::Raw) {
      // No id: subtractPromises() only places them.
      w->promised.push_back(storage::Demand{std::string(), p.request_bytes, params->exclusive});
    } else {
      w->vg_free -= std::min(w->vg_free, alignUpTo(p.request_bytes, kLvmExtent));
    }
  }

  double sum = 0;
  for (std::size_t i = 0; i < used_; ++i) {
    GroupWork& w = work_[i];
    const GroupSupply& g = *w.supply;
    core::SchedulerStrategy strategy = options_.strategy;
    for (const VolumeDemand* d : w.demands) {
      if (d->strategy) {
        strategy = *d->strategy;
        break;
      }
    }
    double u = 1.0;
    if (g.policy == core::DiskPolicy::Raw) {
      NodeVerdict failed;
      std::optional<double> placed = placeRaw(w, node, failed);
      if (!placed) {
        return failed;
      }
      u = *placed;
    } else {
      uint64_t need = 0;
      for (const VolumeDemand* d : w.demands) {
        need += alignUpTo(d->bytes, kLvmExtent);
      }
      if (need > w.vg_free) {
        std::string parts;
        for (const VolumeDemand* d : w.demands) {
          parts += (parts.empty() ? "" : " + ") + d->claim + " " + storage::formatBytes(d->bytes);
        }
        return fail(node, "carina: group " + g.name +
                              ": insufficient free space in volume group (need " +
                              storage::formatBytes(need) + " = " + parts + ", free " +
                              storage::formatBytes(w.vg_free) + ")");
      }
      if (g.vg_size_bytes > 0) {
        uint64_t used = g.vg_size_bytes - std::min(w.vg_free, g.vg_size_bytes) + need;
        u = static_cast<double>(used) / static_cast<double>(g.vg_size_bytes);
      }
    }
    u = std::clamp(u, 0.0, 1.0);
    sum += strategy == core::SchedulerStrategy::Binpack ? u : 1.0 - u;
  }
  NodeVerdict verdict;
  verdict.node = node;
  verdict.fits = true;
  double mean = sum / static_cast<double>(used_);
  verdict.score = scoreFromUtilisation(mean, core::SchedulerStrategy::Binpack);
  return verdict;
}

}  // namespace

std::optional<core::SchedulerStrategy> parseStrategy(std::string_view name) {
  return storage::parseSchedulerStrategy(name);
}

std::string_view strategyName(core::SchedulerStrategy strategy) {
  return strategy == core::SchedulerStrategy::Binpack ? "binpack" : "spreadout";
}

int scoreFromUtilisation(double u, core::SchedulerStrategy strategy) {
  u = std::clamp(u, 0.0, 1.0);
  double s = strategy == core::SchedulerStrategy::Binpack ? u : 1.0 - u;
  long r = std::lround(10.0 * s);
  return static_cast<int>(std::clamp<long>(r, kMinScore, kMaxScore));
}

absl::StatusOr<PodDemand> resolveDemand(const Pod& pod, const ClusterView& view) {
  PodDemand out;
  for (const PodVolume& v : pod.volumes) {
    if (v.claim_name.empty()) {
      continue;
    }
    const std::string key = pod.ns + "/" + v.claim_name;
    std::optional<Claim> claim = view.claim(pod.ns, v.claim_name);
    std::string class_name;
    uint64_t bytes = 0;
    if (!claim) {
      if (!v.ephemeral) {
        return absl::UnavailableError("carina: PVC " + key + " not found in cache yet");
      }
      // Generic ephemeral volume whose PVC the ephemeral controller has not created yet.
      if (v.ephemeral->storage_class.empty()) {
        // The default StorageClass will be filled in by admission: wait for the PVC.
        return absl::UnavailableError("carina: PVC " + key + " of ephemeral volume " + v.name +
                                      " not created yet");
      }
      class_name = v.ephemeral->storage_class;
      bytes = v.ephemeral->request_bytes;
    } else {
      if (v.ephemeral && !claim->owner_uid.empty() && !pod.uid.empty() &&
          claim->owner_uid != pod.uid) {
        return absl::FailedPreconditionError("carina: PVC " + key +
                                             " exists but is not owned by pod " + pod.ns + "/" +
                                             pod.name + " (ephemeral volume " + v.name + ")");
      }
      class_name = claim->storage_class;
      bytes = claim->request_bytes;
    }
    if (class_name.empty()) {
      continue;  // no StorageClass: not dynamically provisioned, not ours
    }
    std::optional<StorageClass> sc = view.storageClass(class_name);
    if (!sc) {
      return absl::UnavailableError("carina: StorageClass " + class_name + " of PVC " + key +
                                    " not found in cache yet");
    }
    if (!isCarina(*sc)) {
      continue;
    }
    out.own_claims.push_back(key);
    if (claim && claim->bound()) {
      std::optional<Volume> pv = view.volume(claim->volume_name);
      if (!pv) {
        return absl::UnavailableError("carina: PV " + claim->volume_name + " of PVC " + key +
                                      " not found in cache yet");
      }
      if (!pv->node.empty()) {
        out.pins.emplace_back(pv->node, key);
      }
      continue;
    }
    absl::StatusOr<ClassParams> params = classParams(*sc);
    if (!params.ok()) {
      return params.status();
    }
    if (bytes == 0) {
      return absl::InvalidArgumentError("carina: PVC " + key + " requests no storage");
    }
    VolumeDemand d;
    d.claim = key;
    d.storage_class = class_name;
    d.group = params->group;
    d.bytes = bytes;
    d.exclusive = params->exclusive;
    d.strategy = params->strategy;
    out.volumes.push_back(std::move(d));
  }
  return out;
}

NodeVerdict evaluateNode(const PodDemand& demand, const std::string& node, const ClusterView& view,
                         const ScoringOptions& options) {
  Evaluator ev(demand, view, options);
  NodeState state;
  if (ev.needsNodeState()) {
    state.supply = view.nodeSupply(node);
    if (state.supply) {
      state.promised = view.promisedClaims(node);
    }
  }
  return ev.evaluate(node, state);
}

absl::StatusOr<std::vector<NodeVerdict>> evaluatePod(const Pod& pod,
                                                     std::span<const std::string> nodes,
                                                     const ClusterView& view,
                                                     const ScoringOptions& options) {
  absl::StatusOr<PodDemand> demand = resolveDemand(pod, view);
  if (!demand.ok()) {
    return demand.status();
  }
  Evaluator ev(*demand, view, options);
  std::vector<NodeState> states;
  if (ev.needsNodeState()) {
    view.nodeStates(nodes, states);  // one batch (one lock) for the whole request
  }
  static const NodeState kNone;
  std::vector<NodeVerdict> out;
  out.reserve(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    out.push_back(ev.evaluate(nodes[i], states.empty() ? kNone : states[i]));
  }
  return out;
}

}  // namespace carina::extender
