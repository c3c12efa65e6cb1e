#pragma once

// `carinactl score --pod FILE`: the pure parts. The pod file (YAML or JSON; several documents, or
// a `kind: List`) may also carry PersistentVolumeClaims and StorageClasses that are not in the
// cluster yet; all of it becomes the JSON body of the agent's POST /debug/score, which judges the
// pod on every node with the same code as the scheduler extender. The reply is rendered as a
// table. yaml-cpp and Boost.JSON stay in score.cc.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

namespace carina::ctl {

/** The agent endpoint carinactl score posts to. */
inline constexpr std::string_view kScoreTarget = "/debug/score";

/** Builds the /debug/score request body from the pod file's text: {"pod":..,"claims":[..],
 *  "storageClasses":[..]}. Documents of kind Pod (exactly one), PersistentVolumeClaim,
 *  StorageClass and List (whose items are read the same way); a single document without a kind
 *  is taken as the pod. InvalidArgument naming the document and field for a bad file. */
absl::StatusOr<std::string> scoreRequestFromText(std::string_view text);

/** Converts one YAML (or JSON) document to JSON text: plain scalars that read as null, booleans
 *  or numbers become those, everything else (and every quoted scalar) a string. Exposed for
 *  tests. InvalidArgument for a parse error (with line and column) or several documents. */
absl::StatusOr<std::string> yamlToJson(std::string_view text);

struct ScoreRow {
  std::string node;
  bool fits = false;
  std::string reason;
  int score = 0;
};

struct ScoreVolume {
  std::string claim;
  std::string storage_class;
  std::string group;
  uint64_t bytes = 0;
  bool exclusive = false;
  std::string strategy;  // the StorageClass's scheduler-strategy, "" = the agent's default
};

/** The agent's reply. */
struct ScoreReport {
  std::string pod;  // "ns/name"
  std::string strategy;
  std::string default_strategy;
  bool relevant = false;
  std::vector<ScoreVolume> volumes;
  std::vector<std::pair<std::string, std::string>> pins;  // (node, claim)
  std::vector<ScoreRow> nodes;
  std::string error;  // the pod could not be judged
};

/** Parses the /debug/score reply. InvalidArgument naming the field. */
absl::StatusOr<ScoreReport> parseScoreReply(std::string_view text);

/** People: a summary line, the pod's volumes, then NODE FITS SCORE REASON with the fitting nodes
 *  first (best score first). JSON: the reply, normalised. */
std::string renderScore(const ScoreReport& report, bool json);

}  // namespace carina::ctl
