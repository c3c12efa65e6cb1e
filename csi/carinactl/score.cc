#include "csi/carinactl/score.h"

#include <algorithm>
#include <optional>
#include <regex>

#include <boost/json.hpp>
#include <yaml-cpp/yaml.h>

#include "agent/core/json_string.h"
#include "agent/storage/placement.h"
#include "csi/carinactl/render.h"

namespace carina::ctl {

namespace json = boost::json;

namespace {

absl::Status bad(const std::string& msg) { return absl::InvalidArgumentError(msg); }

bool isPlainNull(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> plainBool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") {
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    return false;
  }
  return std::nullopt;
}

bool isPlainNumber(const std::string& s) {
  // YAML 1.2 core schema integers and floats that are also valid JSON numbers.
  static const std::regex kNumber(R"(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?)");
  return std::regex_match(s, kNumber);
}

void scalarToJson(const YAML::Node& n, std::string& out) {
  const std::string& v = n.Scalar();
  if (n.Tag() == "!") {  // quoted: always a string
    core::appendJsonString(out, v);
    return;
  }
  if (isPlainNull(v)) {
    out += "null";
  } else if (std::optional<bool> b = plainBool(v)) {
    out += *b ? "true" : "false";
  } else if (isPlainNumber(v)) {
    out += v;
  } else {
    core::appendJsonString(out, v);
  }
}

void nodeToJson(const YAML::Node& n, std::string& out) {
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out += "null";
      return;
    case YAML::NodeType::Scalar:
      scalarToJson(n, out);
      return;
    case YAML::NodeType::Sequence: {
      out.push_back('[');
      bool first = true;
      for (const YAML::Node& item : n) {
        if (!first) {
          out.push_back(',');
        }
        first = false;
        nodeToJson(item, out);
      }
      out.push_back(']');
      return;
    }
    case YAML::NodeType::Map: {
      out.push_back('{');
      bool first = true;
      for (const auto& kv : n) {
        if (!first) {
          out.push_back(',');
        }
        first = false;
        // Keys are strings in Kubernetes objects; a non-scalar key is written as its text.
        core::appendJsonString(out, kv.first.IsScalar() ? kv.first.Scalar() : YAML::Dump(kv.first));
        out.push_back(':');
        nodeToJson(kv.second, out);
      }
      out.push_back('}');
      return;
    }
  }
}

std::string yamlError(const YAML::Exception& e) {
  if (e.mark.is_null()) {
    return e.msg;
  }
  return "line " + std::to_string(e.mark.line + 1) + ", column " +
         std::to_string(e.mark.column + 1) + ": " + e.msg;
}

absl::StatusOr<std::vector<YAML::Node>> loadAll(std::string_view text) {
  try {
    return YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return bad("not valid YAML or JSON: " + yamlError(e));
  }
}

/** Scalar string member @p key of map @p n ("" when absent). */
absl::StatusOr<std::string> stringField(const YAML::Node& n, const std::string& key,
                                        const std::string& path) {
  YAML::Node v = n[key];
  if (!v || v.IsNull()) {
    return std::string();
  }
  if (!v.IsScalar()) {
    return bad(path + key + ": expected a string");
  }
  return v.Scalar();
}

struct Collected {
  std::optional<std::string> pod;  // JSON
  std::string pod_where;
  std::vector<std::string> claims;
  std::vector<std::string> classes;
};

absl::Status collect(const YAML::Node& doc, const std::string& where, bool only_document,
                     Collected& out) {
  if (!doc.IsMap()) {
    return bad(where + ": expected a Kubernetes object (a map with kind, metadata, ...)");
  }
  absl::StatusOr<std::string> kind = stringField(doc, "kind", where + ": ");
  if (!kind.ok()) {
    return kind.status();
  }
  if (kind->empty()) {
    if (!only_document) {
      return bad(where + ": kind is missing (Pod, PersistentVolumeClaim, StorageClass or List)");
    }
    *kind = "Pod";
  }
  if (*kind == "List" || (kind->size() > 4 && kind->ends_with("List"))) {
    YAML::Node items = doc["items"];
    if (!items || items.IsNull()) {
      return absl::OkStatus();
    }
    if (!items.IsSequence()) {
      return bad(where + ": items: expected a list");
    }
    for (std::size_t i = 0; i < items.size(); ++i) {
      absl::Status st = collect(items[i], where + ": items[" + std::to_string(i) + "]", false, out);
      if (!st.ok()) {
        return st;
      }
    }
    return absl::OkStatus();
  }
  const std::string at = where + " (" + *kind + "): ";
  YAML::Node meta = doc["metadata"];
  if (meta && !meta.IsNull() && !meta.IsMap()) {
    return bad(at + "metadata: expected a map");
  }
  std::string name;
  if (meta && meta.IsMap()) {
    absl::StatusOr<std::string> n = stringField(meta, "name", at + "metadata.");
    if (!n.ok()) {
      return n.status();
    }
    name = *n;
  }
  std::string text;
  nodeToJson(doc, text);
  if (*kind == "Pod") {
    if (out.pod) {
      return bad(at + "a second Pod (the first is in " + out.pod_where +
                 "); give one pod per file");
    }
    if (name.empty()) {
      return bad(at + "metadata.name: required");
    }
    YAML::Node spec = doc["spec"];
    if (spec && !spec.IsNull() && !spec.IsMap()) {
      return bad(at + "spec: expected a map");
    }
    if (spec && spec.IsMap() && spec["volumes"] && !spec["volumes"].IsNull() &&
        !spec["volumes"].IsSequence()) {
      return bad(at + "spec.volumes: expected a list");
    }
    out.pod = std::move(text);
    out.pod_where = where;
  } else if (*kind == "PersistentVolumeClaim") {
    if (name.empty()) {
      return bad(at + "metadata.name: required");
    }
    YAML::Node spec = doc["spec"];
    if (!spec || !spec.IsMap()) {
      return bad(at + "spec: required");
    }
    out.claims.push_back(std::move(text));
  } else if (*kind == "StorageClass") {
    if (name.empty()) {
      return bad(at + "metadata.name: required");
    }
    absl::StatusOr<std::string> provisioner = stringField(doc, "provisioner", at);
    if (!provisioner.ok()) {
      return provisioner.status();
    }
    if (provisioner->empty()) {
      return bad(at + "provisioner: required");
    }
    YAML::Node params = doc["parameters"];
    if (params && !params.IsNull() && !params.IsMap()) {
      return bad(at + "parameters: expected a map");
    }
    out.classes.push_back(std::move(text));
  } else {
    return bad(where + ": kind " + *kind +
               " is not supported (Pod, PersistentVolumeClaim, StorageClass or List)");
  }
  return absl::OkStatus();
}

std::string_view sv(json::string_view s) { return {s.data(), s.size()}; }

absl::StatusOr<std::string> replyString(const json::object& o, std::string_view key,
                                        const std::string& path) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr || v->is_null()) {
    return std::string();
  }
  if (!v->is_string()) {
    return bad("agent reply: " + path + std::string(key) + ": expected a string");
  }
  return std::string(sv(v->get_string()));
}

bool replyBool(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  return v != nullptr && v->is_bool() && v->get_bool();
}

int64_t replyInt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr) {
    return 0;
  }
  if (v->is_int64()) {
    return v->get_int64();
  }
  if (v->is_uint64()) {
    return static_cast<int64_t>(v->get_uint64());
  }
  return 0;
}

const json::array* replyArray(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  return v != nullptr ? v->if_array() : nullptr;
}

}  // namespace

absl::StatusOr<std::string> yamlToJson(std::string_view text) {
  absl::StatusOr<std::vector<YAML::Node>> docs = loadAll(text);
  if (!docs.ok()) {
    return docs.status();
  }
  if (docs->size() > 1) {
    return bad("expected one document, found " + std::to_string(docs->size()));
  }
  std::string out;
  nodeToJson(docs->empty() ? YAML::Node() : docs->front(), out);
  return out;
}

absl::StatusOr<std::string> scoreRequestFromText(std::string_view text) {
  absl::StatusOr<std::vector<YAML::Node>> docs = loadAll(text);
  if (!docs.ok()) {
    return docs.status();
  }
  std::vector<std::pair<std::size_t, YAML::Node>> present;  // (1-based index, document)
  for (std::size_t i = 0; i < docs->size(); ++i) {
    if ((*docs)[i].IsDefined() && !(*docs)[i].IsNull()) {
      present.emplace_back(i + 1, (*docs)[i]);
    }
  }
  Collected c;
  for (const auto& [index, doc] : present) {
    absl::Status st = collect(doc, "document " + std::to_string(index), present.size() == 1, c);
    if (!st.ok()) {
      return st;
    }
  }
  if (!c.pod) {
    return bad(
        "no Pod in the file (give a Pod, optionally with its PersistentVolumeClaims and "
        "StorageClasses)");
  }
  std::string out = "{\"pod\":" + *c.pod + ",\"claims\":[";
  for (std::size_t i = 0; i < c.claims.size(); ++i) {
    out += (i == 0 ? "" : ",") + c.claims[i];
  }
  out += "],\"storageClasses\":[";
  for (std::size_t i = 0; i < c.classes.size(); ++i) {
    out += (i == 0 ? "" : ",") + c.classes[i];
  }
  out += "]}";
  return out;
}

absl::StatusOr<ScoreReport> parseScoreReply(std::string_view text) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) {
    return bad("agent reply is not JSON: " + ec.message());
  }
  const json::object* top = root.if_object();
  if (top == nullptr) {
    return bad("agent reply: expected a JSON object");
  }
  ScoreReport r;
  auto str = [&](const json::object& o, std::string_view key, const std::string& path,
                 std::string& dst) -> absl::Status {
    absl::StatusOr<std::string> v = replyString(o, key, path);
    if (!v.ok()) {
      return v.status();
    }
    dst = std::move(*v);
    return absl::OkStatus();
  };
  for (auto [key, dst] : {std::pair<std::string_view, std::string*>{"pod", &r.pod},
                          {"strategy", &r.strategy},
                          {"defaultStrategy", &r.default_strategy},
                          {"error", &r.error}}) {
    if (absl::Status st = str(*top, key, "", *dst); !st.ok()) {
      return st;
    }
  }
  r.relevant = replyBool(*top, "relevant");
  if (const json::array* vols = replyArray(*top, "volumes")) {
    for (std::size_t i = 0; i < vols->size(); ++i) {
      const json::object* o = (*vols)[i].if_object();
      if (o == nullptr) {
        return bad("agent reply: volumes[" + std::to_string(i) + "]: expected an object");
      }
      ScoreVolume v;
      const std::string path = "volumes[" + std::to_string(i) + "].";
      for (auto [key, dst] : {std::pair<std::string_view, std::string*>{"claim", &v.claim},
                              {"storageClass", &v.storage_class},
                              {"group", &v.group},
                              {"strategy", &v.strategy}}) {
        if (absl::Status st = str(*o, key, path, *dst); !st.ok()) {
          return st;
        }
      }
      v.bytes = static_cast<uint64_t>(std::max<int64_t>(0, replyInt(*o, "bytes")));
      v.exclusive = replyBool(*o, "exclusive");
      r.volumes.push_back(std::move(v));
    }
  }
  if (const json::array* pins = replyArray(*top, "pins")) {
    for (const json::value& p : *pins) {
      const json::object* o = p.if_object();
      if (o == nullptr) {
        return bad("agent reply: pins: expected objects");
      }
      std::string node;
      std::string claim;
      if (absl::Status st = str(*o, "node", "pins[].", node); !st.ok()) {
        return st;
      }
      if (absl::Status st = str(*o, "claim", "pins[].", claim); !st.ok()) {
        return st;
      }
      r.pins.emplace_back(std::move(node), std::move(claim));
    }
  }
  const json::array* nodes = replyArray(*top, "nodes");
  if (nodes == nullptr && r.error.empty()) {
    return bad("agent reply: nodes: expected an array");
  }
  if (nodes != nullptr) {
    for (std::size_t i = 0; i < nodes->size(); ++i) {
      const json::object* o = (*nodes)[i].if_object();
      if (o == nullptr) {
        return bad("agent reply: nodes[" + std::to_string(i) + "]: expected an object");
      }
      ScoreRow row;
      const std::string path = "nodes[" + std::to_string(i) + "].";
      if (absl::Status st = str(*o, "node", path, row.node); !st.ok()) {
        return st;
      }
      if (absl::Status st = str(*o, "reason", path, row.reason); !st.ok()) {
        return st;
      }
      row.fits = replyBool(*o, "fits");
      row.score = static_cast<int>(std::clamp<int64_t>(replyInt(*o, "score"), 0, 10));
      r.nodes.push_back(std::move(row));
    }
  }
  return r;
}

std::string renderScore(const ScoreReport& report, bool as_json) {
  std::vector<ScoreRow> rows = report.nodes;
  std::stable_sort(rows.begin(), rows.end(), [](const ScoreRow& a, const ScoreRow& b) {
    if (a.fits != b.fits) {
      return a.fits;
    }
    if (a.score != b.score) {
      return a.score > b.score;
    }
    return a.node < b.node;
  });
  if (as_json) {
    json::object o;
    o["pod"] = report.pod;
    o["strategy"] = report.strategy;
    o["defaultStrategy"] = report.default_strategy;
    o["relevant"] = report.relevant;
    json::array vols;
    for (const ScoreVolume& v : report.volumes) {
      vols.push_back(json::object{{"claim", v.claim},
                                  {"storageClass", v.storage_class},
                                  {"group", v.group},
                                  {"bytes", v.bytes},
                                  {"exclusive", v.exclusive},
                                  {"strategy", v.strategy}});
    }
    o["volumes"] = std::move(vols);
    json::array pins;
    for (const auto& [node, claim] : report.pins) {
      pins.push_back(json::object{{"node", node}, {"claim", claim}});
    }
    o["pins"] = std::move(pins);
    json::array nodes;
    for (const ScoreRow& r : rows) {
      nodes.push_back(json::object{
          {"node", r.node}, {"fits", r.fits}, {"score", r.score}, {"reason", r.reason}});
    }
    o["nodes"] = std::move(nodes);
    o["error"] = report.error;
    return json::serialize(o) + "\n";
  }
  std::string out = "pod " + report.pod + ": strategy " + report.strategy;
  if (report.strategy != report.default_strategy && !report.default_strategy.empty()) {
    out += " (StorageClass override; agent default " + report.default_strategy + ")";
  }
  out += "\n";
  bool mixed = false;  // some volumes use the default, others an override: say which is which
  for (const ScoreVolume& v : report.volumes) {
    mixed = mixed || (v.strategy.empty() ? report.default_strategy : v.strategy) != report.strategy;
  }
  if (!report.error.empty()) {
    out += "cannot be judged: " + report.error + "\n";
    return out;
  }
  if (!report.relevant) {
    out += "no unbound carina volume: every node passes with equal scores\n";
  }
  for (const ScoreVolume& v : report.volumes) {
    out += "  needs " + v.claim + ": " + storage::formatBytes(v.bytes) + " of class " +
           v.storage_class + (v.group.empty() ? " (the node's only group)" : ", group " + v.group) +
           (v.exclusive ? ", exclusive disk" : "") +
           (mixed ? ", " + (v.strategy.empty() ? report.default_strategy : v.strategy) : "") + "\n";
  }
  for (const auto& [node, claim] : report.pins) {
    out += "  pinned to " + node + " by bound " + claim + "\n";
  }
  std::size_t fit = 0;
  std::vector<std::vector<std::string>> table;
  for (const ScoreRow& r : rows) {
    fit += r.fits ? 1 : 0;
    table.push_back({r.node, r.fits ? "yes" : "no", std::to_string(r.score), r.reason});
  }
  out += renderTable({"NODE", "FITS", "SCORE", "REASON"}, table);
  out += std::to_string(fit) + " of " + std::to_string(rows.size()) + " nodes fit\n";
  return out;
}

}  // namespace carina::ctl
