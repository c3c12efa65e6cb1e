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

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) {
             return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
           };
           return lower(x) == lower(y);
         });
}

const std::string* param(const StorageClass& sc, std::string_view key) {
  auto it = sc.parameters.find(std::string(key));
  return it == sc.parameters.end() ? nullptr : &it->second;
}

struct ClassParams {
  std::string group;
  bool exclusive = false;
  std::optional<core::SchedulerStrategy> strategy;
};

absl::StatusOr<ClassParams> classParams(const StorageClass& sc) {
  ClassParams p;
  if (const std::string* g = param(sc, kParamDiskGroup); g != nullptr && !g->empty()) {
    p.group = *g;
  } else if (const std::string* t = param(sc, kParamDiskType); t != nullptr) {
    p.group = *t;
  }
  for (std::string_view key : {kParamExclusive, kParamExclusiveCarina}) {
    const std::string* v = param(sc, key);
    if (v == nullptr || v->empty()) {
      continue;
    }
    if (equalsIgnoreCase(*v, "true")) {
      p.exclusive = true;
    } else if (!equalsIgnoreCase(*v, "false")) {
      return absl::InvalidArgumentError("carina: StorageClass " + sc.name + ": parameter " +
                                        std::string(key) + " must be true or false, not \"" + *v +
                                        "\"");
    }
  }
  if (const std::string* s = param(sc, kParamStrategy); s != nullptr && !s->empty()) {
    p.strategy = parseStrategy(*s);
    if (!p.strategy) {
      return absl::InvalidArgumentError("carina: StorageClass " + sc.name + ": parameter " +
                                        std::string(kParamStrategy) +
                                        " must be binpack or spreadout, not \"" + *s + "\"");
    }
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

/** One group of the node the pod uses, with its supply after promises. */
struct GroupWork {
  const GroupSupply* supply = nullptr;
  std::vector<storage::DiskSpace> disks;  // RAW, only when promises are subtracted
  uint64_t vg_free = 0;                   // LVM
  std::vector<const VolumeDemand*> demands;
  std::vector<storage::Demand> promised;  // RAW promises, placed before the pod's demands
};

GroupWork* findWork(std::vector<GroupWork>& work, const std::string& name) {
  for (GroupWork& w : work) {
    if (w.supply->name == name) {
      return &w;
    }
  }
  return nullptr;
}

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
  std::stable_sort(w.promised.begin(), w.promised.end(),
                   [](const storage::Demand& a, const storage::Demand& b) {
                     if (a.exclusive != b.exclusive) {
                       return a.exclusive;
                     }
                     return storage::alignUp(a.bytes) > storage::alignUp(b.bytes);
                   });
  for (const storage::Demand& d : w.promised) {
    std::optional<storage::Placement> p = d.exclusive ? storage::bestFitExclusive(w.disks, d.bytes)
                                                      : storage::bestFitShared(w.disks, d.bytes);
    if (p) {
      storage::consume(w.disks, *p, d.exclusive);
    }
  }
}

}  // namespace

std::optional<core::SchedulerStrategy> parseStrategy(std::string_view name) {
  if (equalsIgnoreCase(name, "binpack")) {
    return core::SchedulerStrategy::Binpack;
  }
  if (equalsIgnoreCase(name, "spreadout")) {
    return core::SchedulerStrategy::Spreadout;
  }
  return std::nullopt;
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
  NodeVerdict verdict;
  verdict.node = node;
  if (!demand.relevant()) {
    verdict.fits = true;  // not our pod: every node passes with equal scores
    return verdict;
  }
  for (const auto& [pin_node, claim] : demand.pins) {
    if (pin_node != node) {
      return fail(node, "carina: pod is pinned to node " + pin_node + " by bound PVC " + claim);
    }
  }
  if (demand.volumes.empty()) {
    verdict.fits = true;  // only bound volumes: the pinned node passes, nothing to score
    return verdict;
  }
  NodeSupplyPtr supply = view.nodeSupply(node);
  if (!supply) {
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

  std::vector<GroupWork> work;
  work.reserve(demand.volumes.size());
  for (const VolumeDemand& d : demand.volumes) {
    absl::StatusOr<const GroupSupply*> g = groupFor(d.group, d.storage_class, d.claim);
    if (!g.ok()) {
      return fail(node, std::string(g.status().message()));
    }
    GroupWork* w = findWork(work, (*g)->name);
    if (w == nullptr) {
      GroupWork fresh;
      fresh.supply = *g;
      fresh.vg_free = (*g)->vg_free_bytes;
      work.push_back(std::move(fresh));
      w = &work.back();
    }
    w->demands.push_back(&d);
  }

  // Subtract what is already promised to this node (but not the pod's own claims).
  for (const Claim& p : view.promisedClaims(node)) {
    if (p.bound() || p.selected_node != node) {
      continue;
    }
    const std::string key = p.key();
    if (std::find(demand.own_claims.begin(), demand.own_claims.end(), key) !=
        demand.own_claims.end()) {
      continue;
    }
    std::optional<StorageClass> sc = view.storageClass(p.storage_class);
    if (!sc || !isCarina(*sc)) {
      continue;
    }
    absl::StatusOr<ClassParams> params = classParams(*sc);
    if (!params.ok()) {
      continue;  // CreateVolume will refuse it too
    }
    absl::StatusOr<const GroupSupply*> g = groupFor(params->group, p.storage_class, key);
    if (!g.ok()) {
      continue;
    }
    GroupWork* w = findWork(work, (*g)->name);
    if (w == nullptr) {
      continue;  // a group the pod does not use
    }
    if (w->supply->policy == core::DiskPolicy::Raw) {
      w->promised.push_back(storage::Demand{key, p.request_bytes, params->exclusive});
    } else {
      w->vg_free -= std::min(w->vg_free, alignUpTo(p.request_bytes, kLvmExtent));
    }
  }

  double sum = 0;
  for (GroupWork& w : work) {
    const GroupSupply& g = *w.supply;
    core::SchedulerStrategy strategy = options.strategy;
    for (const VolumeDemand* d : w.demands) {
      if (d->strategy) {
        strategy = *d->strategy;
        break;
      }
    }
    double u = 1.0;
    if (g.policy == core::DiskPolicy::Raw) {
      // The supply's disks are shared and immutable; copy them only when promises must be
      // subtracted first (placeAll works on its own copy).
      const std::vector<storage::DiskSpace>* disks = &g.disks;
      if (!w.promised.empty()) {
        w.disks = g.disks;
        subtractPromises(w);
        disks = &w.disks;
      }
      // Ids are left empty on the hot path (no string copies per node); a failure is placed
      // again with ids for the message.
      std::vector<storage::Demand> demands;
      demands.reserve(w.demands.size());
      for (const VolumeDemand* d : w.demands) {
        demands.push_back(storage::Demand{std::string(), d->bytes, d->exclusive});
      }
      absl::StatusOr<std::vector<storage::Placement>> placed;
      if (demands.size() == 1) {
        // The common case, without placeAll's copy of the disks: for one demand placeAll is
        // exactly this best fit (same functions, same message).
        const storage::Demand& d = demands.front();
        std::optional<storage::Placement> p = d.exclusive
                                                  ? storage::bestFitExclusive(*disks, d.bytes)
                                                  : storage::bestFitShared(*disks, d.bytes);
        if (p) {
          placed = std::vector<storage::Placement>{*p};
        } else {
          placed = absl::ResourceExhaustedError("");  // the message is made below
        }
      } else {
        placed = storage::placeAll(*disks, demands);
      }
      if (!placed.ok()) {
        for (std::size_t i = 0; i < demands.size(); ++i) {
          demands[i].id = w.demands[i]->claim;
        }
        absl::Status why = storage::placeAll(*disks, demands).status();
        return fail(node, "carina: group " + g.name + ": " + std::string(why.message()));
      }
      // Free space after placement: shared volumes take their bytes, exclusive ones the whole
      // disk (all of its free segments).
      uint64_t free = storage::freeBytes(*disks);
      for (std::size_t i = 0; i < placed->size(); ++i) {
        const storage::Placement& pl = (*placed)[i];
        uint64_t taken = pl.bytes;
        if (demands[i].exclusive && pl.disk_index < disks->size()) {
          taken = 0;
          for (const storage::Segment& seg : (*disks)[pl.disk_index].free) {
            taken += seg.length;
          }
        }
        free -= std::min(free, taken);
      }
      uint64_t total = 0;
      for (const storage::DiskSpace& disk : *disks) {
        total += disk.size_bytes;
      }
      if (total > 0) {
        free = std::min(free, total);
        u = static_cast<double>(total - free) / static_cast<double>(total);
      }
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
  verdict.fits = true;
  double mean = sum / static_cast<double>(work.size());
  verdict.score = scoreFromUtilisation(mean, core::SchedulerStrategy::Binpack);
  return verdict;
}

absl::StatusOr<std::vector<NodeVerdict>> evaluatePod(const Pod& pod,
                                                     std::span<const std::string> nodes,
                                                     const ClusterView& view,
                                                     const ScoringOptions& options) {
  absl::StatusOr<PodDemand> demand = resolveDemand(pod, view);
  if (!demand.ok()) {
    return demand.status();
  }
  std::vector<NodeVerdict> out;
  out.reserve(nodes.size());
  for (const std::string& node : nodes) {
    out.push_back(evaluateNode(*demand, node, view, options));
  }
  return out;
}

}  // namespace carina::extender
