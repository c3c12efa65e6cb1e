#pragma once

// Pure placement and scoring for the kube-scheduler extender: given a pod (its volumes), a
// ClusterView and candidate node names, decide per node whether all of the pod's carina volumes
// fit at once and how well (0..10). All fitting goes through agent/storage/placement.h, the same
// module the partition engine uses, so that the extender never promises what CreateVolume
// refuses. No HTTP, no JSON here (check-deps enforces it).

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

#include "agent/core/config.h"
#include "agent/storage/class_params.h"
#include "extender/cluster_view.h"

namespace carina::extender {

// Contract names (StorageClass parameters: agent/storage/class_params.h, the one parser shared
// with CreateVolume; annotations).
inline constexpr std::string_view kParamDiskGroup = storage::kParamDiskGroup;
inline constexpr std::string_view kParamDiskType = storage::kParamDiskType;
inline constexpr std::string_view kParamExclusive = storage::kParamExclusive;
inline constexpr std::string_view kParamExclusiveCarina = storage::kParamExclusiveCarina;
inline constexpr std::string_view kParamStrategy = storage::kParamSchedulerStrategy;
inline constexpr std::string_view kAnnSelectedNode = "volume.kubernetes.io/selected-node";

inline constexpr int kMinScore = 0;
inline constexpr int kMaxScore = 10;

/** A generic ephemeral volume's claim template (the PVC may not exist yet). */
struct ClaimTemplate {
  std::string storage_class;
  uint64_t request_bytes = 0;
};

/** One volume of a pod that may refer to a PVC. */
struct PodVolume {
  std::string name;        // pod.spec.volumes[].name
  std::string claim_name;  // persistentVolumeClaim.claimName, or "<pod>-<volume>" for ephemeral
  std::optional<ClaimTemplate> ephemeral;  // set for generic ephemeral volumes
};

/** The parts of a pod the extender reads. */
struct Pod {
  std::string ns = "default";
  std::string name;
  std::string uid;
  std::vector<PodVolume> volumes;  // only volumes referring to claims
};

/** One unbound carina PVC of the pod. */
struct VolumeDemand {
  std::string claim;  // "ns/name", for messages
  std::string storage_class;
  std::string group;  // "" = the node's only group
  uint64_t bytes = 0;
  bool exclusive = false;
  std::optional<core::SchedulerStrategy> strategy;  // StorageClass override
};

/** What the pod asks of a node. */
struct PodDemand {
  std::vector<VolumeDemand> volumes;  // unbound carina PVCs
  // Bound carina PVCs pin the pod: the node their PV lives on, with the claim for messages.
  std::vector<std::pair<std::string, std::string>> pins;  // (node, "ns/name")
  std::vector<std::string> own_claims;                    // "ns/name" of every carina claim
  /** false: the pod has no carina volume at all; every node passes with equal scores. */
  bool relevant() const { return !volumes.empty() || !pins.empty(); }
};

/** Resolves the pod's volumes against the view. Volumes of other provisioners are ignored.
 *  Errors: Unavailable when a claim, its StorageClass or a bound PV is not in the view yet
 *  (retryable: the view lags the API server); InvalidArgument for a bad StorageClass parameter
 *  or a claim without a size. */
absl::StatusOr<PodDemand> resolveDemand(const Pod& pod, const ClusterView& view);

/** Verdict for one node. */
struct NodeVerdict {
  std::string node;
  bool fits = false;
  std::string reason;  // set when !fits, starts with "carina: "
  int score = 0;       // 0..10; 0 when !fits
};

struct ScoringOptions {
  core::SchedulerStrategy strategy = core::SchedulerStrategy::Binpack;
};

/** Judges one node for an already resolved demand. Never fails: every problem is a reason. */
NodeVerdict evaluateNode(const PodDemand& demand, const std::string& node, const ClusterView& view,
                         const ScoringOptions& options);

/** The pure entry point shared by the HTTP handlers and `carinactl score`: resolves the pod and
 *  judges every node in @p nodes (same order). Errors as resolveDemand(). */
absl::StatusOr<std::vector<NodeVerdict>> evaluatePod(const Pod& pod,
                                                     std::span<const std::string> nodes,
                                                     const ClusterView& view,
                                                     const ScoringOptions& options);

/** "binpack" / "spreadout" (case-insensitive); nullopt otherwise. */
std::optional<core::SchedulerStrategy> parseStrategy(std::string_view name);
std::string_view strategyName(core::SchedulerStrategy strategy);

/** The utilisation score: round(10·u) for binpack, round(10·(1−u)) for spreadout, clamped. */
int scoreFromUtilisation(double u, core::SchedulerStrategy strategy);

/** The configured default strategy, changeable at runtime (config reload). Thread-safe. */
class StrategyHolder {
public:
  explicit StrategyHolder(core::SchedulerStrategy s = core::SchedulerStrategy::Binpack)
      : value_(s) {}
  void set(core::SchedulerStrategy s) { value_.store(s, std::memory_order_relaxed); }
  core::SchedulerStrategy get() const { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<core::SchedulerStrategy> value_;
};

}  // namespace carina::extender
