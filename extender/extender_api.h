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

}  // namespace carina::extender
