#pragma once

// The kube-scheduler extender wire format (k8s.io/kube-scheduler/extender/v1): ExtenderArgs in,
// ExtenderFilterResult / HostPriorityList out. The Go structs have no json tags, so replies use
// the exact Go field names (NodeNames, FailedNodes, FailedAndUnresolvableNodes, Error, Host,
// Score) and request keys are matched case-insensitively (old releases sent "nodenames").
// Boost.JSON stays in extender_api.cc.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

#include "agent/core/json_string.h"
#include "extender/cluster_view.h"
#include "extender/scoring.h"

namespace carina::extender {

/** A parsed ExtenderArgs. Nodes items keep their exact source text for the byte-for-byte echo
 *  that nodeCacheCapable: false requires. */
struct ExtenderArgs {
  Pod pod;
  std::optional<std::vector<std::string>> node_names;  // "NodeNames" (null/absent = nullopt)
  struct RawNode {
    std::string name;       // metadata.name
    std::size_t begin = 0;  // the item's byte range in the request body
    std::size_t length = 0;
  };
  std::optional<std::vector<RawNode>> nodes;  // "Nodes".items (null/absent = nullopt)
  std::string nodes_metadata = "{}";          // "Nodes".metadata, raw text

  /** Candidate node names: NodeNames if present, else the Nodes items' names. */
  std::vector<std::string> candidates() const;
};

/** Parses an ExtenderArgs body. InvalidArgument (with a message fit for an HTTP 400) when the
 *  body is not JSON, not an object, lacks Pod, or carries neither Nodes nor NodeNames. */
absl::StatusOr<ExtenderArgs> parseExtenderArgs(std::string_view body);

/** Parses a v1.Pod object (JSON) into the parts the extender reads (carinactl score). */
absl::StatusOr<Pod> parsePodJson(std::string_view json);

/** The filter reply for @p verdicts (same order as args.candidates()): passing nodes in the form
 *  the request used (NodeNames, and/or Nodes with the unmodified items echoed), failures in
 *  FailedAndUnresolvableNodes (evicting pods never frees a bound local disk, so preemption must
 *  not be tried). */
std::string renderFilterResult(const ExtenderArgs& args, std::string_view body,
                               const std::vector<NodeVerdict>& verdicts);

/** A whole-call error reply: {"NodeNames":null,...,"Error":"message"}. */
std::string renderFilterError(std::string_view message);

/** The prioritize reply: a bare JSON array [{"Host":..,"Score":n}] with integer scores; failed
 *  nodes score 0. */
std::string renderHostPriorities(const std::vector<NodeVerdict>& verdicts);

/** Writes @p s as a JSON string literal (with quotes) to @p out (the one in agent/core). */
using core::appendJsonString;

/** A complete answer to one extender HTTP request. */
struct ApiReply {
  unsigned status = 200;
  std::string body;
};

/** Filter: parse, evaluate, render. 400 for malformed bodies; domain errors (claim not in the
 *  view yet) are a 200 with Error set, which kube-scheduler retries with backoff. */
ApiReply handleFilter(std::string_view body, const ClusterView& view,
                      const ScoringOptions& options);
/** Prioritize: as filter; on a domain error every node scores 0 (equal, so no influence). */
ApiReply handlePrioritize(std::string_view body, const ClusterView& view,
                          const ScoringOptions& options);

/** `carinactl score` (POST /debug/score). The request is a JSON object:
 *    {"pod": v1.Pod, "claims": [v1.PersistentVolumeClaim...], "storageClasses":
 * [v1.StorageClass...], "nodes": ["name", ...]} where only "pod" is required. The pod is judged
 * with evaluatePod() against @p view with the given claims and classes overlaid
 * (OverlayClusterView: they win over the cluster's), on "nodes" or else every node the view has a
 * supply for (ClusterView::nodeNames()). Reply (200):
 *    {"pod":"ns/name","strategy":"binpack","defaultStrategy":"binpack","relevant":true,
 *     "volumes":[{"claim","storageClass","group","bytes","exclusive","strategy"}],"pins":[{"node","claim"}],
 *     "nodes":[{"node","fits","reason","score"}],"error":""}
 *  "strategy" is the effective one (the first StorageClass override, else the default; each
 *  group uses the override of its first volume that has one, see evaluateNode()). A pod
 *  that cannot be judged (claim or class unknown, bad parameter) gets 200 with "error" set and no
 *  nodes; a malformed request gets 400 with a message naming the field. */
ApiReply handleScore(std::string_view body, const ClusterView& view, const ScoringOptions& options);

/** Claim and StorageClass from their Kubernetes JSON (carinactl score's overlay). A claim
 *  without a namespace gets @p default_ns. InvalidArgument naming @p path and the field. */
absl::StatusOr<Claim> parseClaimJson(std::string_view json, const std::string& default_ns);
absl::StatusOr<StorageClass> parseStorageClassJson(std::string_view json);

}  // namespace carina::extender
