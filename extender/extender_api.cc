#include "extender/extender_api.h"

#include <algorithm>
#include <cstdio>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include "agent/core/quantity.h"
#include "agent/core/status.h"

namespace carina::extender {

namespace json = boost::json;

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view sv(json::string_view s) { return {s.data(), s.size()}; }

/** Member @p key of @p obj: the exact spelling first, else case-insensitively (Go's decoder). */
const json::value* member(const json::object& obj, std::string_view key) {
  if (auto it = obj.find(json::string_view(key.data(), key.size())); it != obj.end()) {
    return &it->value();
  }
  for (const auto& kv : obj) {
    if (iequals(sv(kv.key()), key)) {
      return &kv.value();
    }
  }
  return nullptr;
}

const json::object* memberObject(const json::object& obj, std::string_view key) {
  const json::value* v = member(obj, key);
  return v != nullptr ? v->if_object() : nullptr;
}

absl::StatusOr<std::string> memberString(const json::object& obj, std::string_view key,
                                         std::string_view path) {
  const json::value* v = member(obj, key);
  if (v == nullptr || v->is_null()) {
    return std::string();
  }
  if (!v->is_string()) {
    return absl::InvalidArgumentError(std::string(path) + "." + std::string(key) +
                                      ": expected a string");
  }
  return std::string(sv(v->get_string()));
}

absl::StatusOr<Pod> podFromJson(const json::value& v) {
  const json::object* obj = v.if_object();
  if (obj == nullptr) {
    return absl::InvalidArgumentError("Pod: expected an object");
  }
  Pod pod;
  if (const json::object* meta = memberObject(*obj, "metadata"); meta != nullptr) {
    CARINA_ASSIGN_OR_RETURN(pod.name, memberString(*meta, "name", "Pod.metadata"));
    CARINA_ASSIGN_OR_RETURN(std::string ns, memberString(*meta, "namespace", "Pod.metadata"));
    if (!ns.empty()) {
      pod.ns = std::move(ns);
    }
    CARINA_ASSIGN_OR_RETURN(pod.uid, memberString(*meta, "uid", "Pod.metadata"));
  }
  const json::object* spec = memberObject(*obj, "spec");
  if (spec == nullptr) {
    return pod;
  }
  const json::value* vols = member(*spec, "volumes");
  if (vols == nullptr || vols->is_null()) {
    return pod;
  }
  const json::array* arr = vols->if_array();
  if (arr == nullptr) {
    return absl::InvalidArgumentError("Pod.spec.volumes: expected an array");
  }
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string path = "Pod.spec.volumes[" + std::to_string(i) + "]";
    const json::object* vol = (*arr)[i].if_object();
    if (vol == nullptr) {
      return absl::InvalidArgumentError(path + ": expected an object");
    }
    PodVolume pv;
    CARINA_ASSIGN_OR_RETURN(pv.name, memberString(*vol, "name", path));
    if (const json::object* pvc = memberObject(*vol, "persistentVolumeClaim"); pvc != nullptr) {
      CARINA_ASSIGN_OR_RETURN(pv.claim_name,
                              memberString(*pvc, "claimName", path + ".persistentVolumeClaim"));
      if (pv.claim_name.empty()) {
        return absl::InvalidArgumentError(path + ".persistentVolumeClaim.claimName: required");
      }
    } else if (const json::object* eph = memberObject(*vol, "ephemeral"); eph != nullptr) {
      if (pv.name.empty()) {
        return absl::InvalidArgumentError(path + ".name: required for an ephemeral volume");
      }
      pv.claim_name = pod.name + "-" + pv.name;  // ephemeral.VolumeClaimName
      ClaimTemplate tmpl;
      const json::object* t = memberObject(*eph, "volumeClaimTemplate");
      const json::object* tspec = t != nullptr ? memberObject(*t, "spec") : nullptr;
      if (tspec != nullptr) {
        const std::string tpath = path + ".ephemeral.volumeClaimTemplate.spec";
        CARINA_ASSIGN_OR_RETURN(tmpl.storage_class,
                                memberString(*tspec, "storageClassName", tpath));
        const json::object* res = memberObject(*tspec, "resources");
        const json::object* req = res != nullptr ? memberObject(*res, "requests") : nullptr;
        const json::value* storage = req != nullptr ? member(*req, "storage") : nullptr;
        if (storage != nullptr && storage->is_string()) {
          absl::StatusOr<uint64_t> bytes = core::parseQuantityBytes(sv(storage->get_string()));
          if (!bytes.ok()) {
            return absl::InvalidArgumentError(
                tpath + ".resources.requests.storage: " + std::string(bytes.status().message()));
          }
          tmpl.request_bytes = *bytes;
        } else if (storage != nullptr && storage->is_int64() && storage->get_int64() >= 0) {
          tmpl.request_bytes = static_cast<uint64_t>(storage->get_int64());
        } else if (storage != nullptr && !storage->is_null()) {
          return absl::InvalidArgumentError(tpath + ".resources.requests.storage: bad quantity");
        }
      }
      pv.ephemeral = std::move(tmpl);
    } else {
      continue;  // hostPath, configMap, projected, ...: not a claim
    }
    pod.volumes.push_back(std::move(pv));
  }
  return pod;
}

/** A scalar as text: strings as they are, numbers and booleans spelled out (YAML files often
 *  carry `exclusivity-disk: true` unquoted). */
absl::StatusOr<std::string> scalarText(const json::value& v, const std::string& path) {
  if (v.is_string()) {
    return std::string(sv(v.get_string()));
  }
  if (v.is_bool()) {
    return std::string(v.get_bool() ? "true" : "false");
  }
  if (v.is_int64()) {
    return std::to_string(v.get_int64());
  }
  if (v.is_uint64()) {
    return std::to_string(v.get_uint64());
  }
  return absl::InvalidArgumentError(path + ": expected a string");
}

absl::StatusOr<uint64_t> quantityOf(const json::value& v, const std::string& path) {
  if (v.is_string()) {
    absl::StatusOr<uint64_t> bytes = core::parseQuantityBytes(sv(v.get_string()));
    if (!bytes.ok()) {
      return absl::InvalidArgumentError(path + ": " + std::string(bytes.status().message()));
    }
    return *bytes;
  }
  if (v.is_int64() && v.get_int64() >= 0) {
    return static_cast<uint64_t>(v.get_int64());
  }
  if (v.is_uint64()) {
    return v.get_uint64();
  }
  return absl::InvalidArgumentError(path + ": bad quantity");
}

absl::StatusOr<Claim> claimFromJson(const json::value& v, const std::string& path,
                                    const std::string& default_ns) {
  const json::object* obj = v.if_object();
  if (obj == nullptr) {
    return absl::InvalidArgumentError(path + ": expected a PersistentVolumeClaim object");
  }
  Claim c;
  const json::object* meta = memberObject(*obj, "metadata");
  if (meta == nullptr) {
    return absl::InvalidArgumentError(path + ".metadata: required");
  }
  CARINA_ASSIGN_OR_RETURN(c.name, memberString(*meta, "name", path + ".metadata"));
  if (c.name.empty()) {
    return absl::InvalidArgumentError(path + ".metadata.name: required");
  }
  CARINA_ASSIGN_OR_RETURN(c.ns, memberString(*meta, "namespace", path + ".metadata"));
  if (c.ns.empty()) {
    c.ns = default_ns;
  }
  if (const json::object* ann = memberObject(*meta, "annotations"); ann != nullptr) {
    if (const json::value* sel =
            ann->if_contains(json::string_view(kAnnSelectedNode.data(), kAnnSelectedNode.size()));
        sel != nullptr && !sel->is_null()) {
      CARINA_ASSIGN_OR_RETURN(
          c.selected_node,
          scalarText(*sel, path + ".metadata.annotations[" + std::string(kAnnSelectedNode) + "]"));
    }
  }
  if (const json::value* owners = member(*meta, "ownerReferences");
      owners != nullptr && owners->is_array()) {
    for (const json::value& o : owners->get_array()) {
      const json::object* ref = o.if_object();
      const json::value* controller = ref != nullptr ? member(*ref, "controller") : nullptr;
      if (controller != nullptr && controller->is_bool() && controller->get_bool()) {
        CARINA_ASSIGN_OR_RETURN(c.owner_uid,
                                memberString(*ref, "uid", path + ".metadata.ownerReferences[]"));
      }
    }
  }
  const json::object* spec = memberObject(*obj, "spec");
  if (spec == nullptr) {
    return absl::InvalidArgumentError(path + ".spec: required");
  }
  CARINA_ASSIGN_OR_RETURN(c.storage_class, memberString(*spec, "storageClassName", path + ".spec"));
  CARINA_ASSIGN_OR_RETURN(c.volume_name, memberString(*spec, "volumeName", path + ".spec"));
  const json::object* res = memberObject(*spec, "resources");
  const json::object* req = res != nullptr ? memberObject(*res, "requests") : nullptr;
  const json::value* storage = req != nullptr ? member(*req, "storage") : nullptr;
  if (storage != nullptr && !storage->is_null()) {
    CARINA_ASSIGN_OR_RETURN(c.request_bytes,
                            quantityOf(*storage, path + ".spec.resources.requests.storage"));
  }
  return c;
}

absl::StatusOr<StorageClass> storageClassFromJson(const json::value& v, const std::string& path) {
  const json::object* obj = v.if_object();
  if (obj == nullptr) {
    return absl::InvalidArgumentError(path + ": expected a StorageClass object");
  }
  StorageClass sc;
  const json::object* meta = memberObject(*obj, "metadata");
  if (meta == nullptr) {
    return absl::InvalidArgumentError(path + ".metadata: required");
  }
  CARINA_ASSIGN_OR_RETURN(sc.name, memberString(*meta, "name", path + ".metadata"));
  if (sc.name.empty()) {
    return absl::InvalidArgumentError(path + ".metadata.name: required");
  }
  CARINA_ASSIGN_OR_RETURN(sc.provisioner, memberString(*obj, "provisioner", path));
  if (sc.provisioner.empty()) {
    return absl::InvalidArgumentError(path + ".provisioner: required");
  }
  if (const json::value* params = member(*obj, "parameters");
      params != nullptr && !params->is_null()) {
    const json::object* p = params->if_object();
    if (p == nullptr) {
      return absl::InvalidArgumentError(path + ".parameters: expected an object");
    }
    for (const auto& kv : *p) {
      std::string key(sv(kv.key()));
      CARINA_ASSIGN_OR_RETURN(std::string value,
                              scalarText(kv.value(), path + ".parameters[" + key + "]"));
      sc.parameters[key] = std::move(value);
    }
  }
  return sc;
}

absl::StatusOr<json::value> parseJsonText(std::string_view text) {
  boost::system::error_code ec;
  json::parse_options opt;
  opt.max_depth = 128;
  json::value v;
  try {
    v = json::parse(json::string_view(text.data(), text.size()), ec, {}, opt);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(std::string("malformed JSON: ") + e.what());
  }
  if (ec) {
    return absl::InvalidArgumentError("malformed JSON: " + ec.message());
  }
  return v;
}

// ---- A minimal skimmer over already validated JSON text, to find the exact source bytes of
// the Nodes items (the nodeCacheCapable: false reply echoes them unmodified).

std::size_t skipWs(std::string_view s, std::size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
    ++i;
  }
  return i;
}

/** End of the string starting at s[i] == '"' (one past the closing quote). */
std::size_t skipString(std::string_view s, std::size_t i) {
  ++i;
  while (i < s.size()) {
    if (s[i] == '\\') {
      i += 2;
    } else if (s[i] == '"') {
      return i + 1;
    } else {
      ++i;
    }
  }
  return s.size();
}

/** End of the value starting at s[i]. */
std::size_t skipValue(std::string_view s, std::size_t i) {
  if (i >= s.size()) {
    return i;
  }
  if (s[i] == '"') {
    return skipString(s, i);
  }
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        i = skipString(s, i);
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) {
          return i + 1;
        }
      }
      ++i;
    }
    return i;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
         s[i] != '\r' && s[i] != '\t') {
    ++i;
  }
  return i;
}

struct Span {
  std::size_t begin = 0;
  std::size_t end = 0;
};

/** The value of member @p key (case-insensitive, last match wins like Go) of the object at
 *  s[i] == '{'. */
std::optional<Span> findMember(std::string_view s, std::size_t i, std::string_view key) {
  std::optional<Span> found;
  std::optional<Span> exact;
  i = skipWs(s, i + 1);
  while (i < s.size() && s[i] == '"') {
    std::size_t kend = skipString(s, i);
    std::string_view k = s.substr(i + 1, kend - i - 2);
    i = skipWs(s, kend);
    i = skipWs(s, i + 1);  // ':'
    std::size_t vend = skipValue(s, i);
    if (k == key) {
      exact = Span{i, vend};
    } else if (iequals(k, key)) {
      found = Span{i, vend};
    }
    i = skipWs(s, vend);
    if (i < s.size() && s[i] == ',') {
      i = skipWs(s, i + 1);
    }
  }
  return exact ? exact : found;
}

std::vector<Span> arrayElements(std::string_view s, Span arr) {
  std::vector<Span> out;
  std::size_t i = skipWs(s, arr.begin + 1);
  while (i < arr.end && s[i] != ']') {
    std::size_t vend = skipValue(s, i);
    out.push_back(Span{i, vend});
    i = skipWs(s, vend);
    if (i < s.size() && s[i] == ',') {
      i = skipWs(s, i + 1);
    }
  }
  return out;
}

std::string statusText(const absl::Status& st) { return std::string(st.message()); }

}  // namespace

std::vector<std::string> ExtenderArgs::candidates() const {
  if (node_names) {
    return *node_names;
  }
  std::vector<std::string> out;
  if (nodes) {
    out.reserve(nodes->size());
    for (const RawNode& n : *nodes) {
      out.push_back(n.name);
    }
  }
  return out;
}

namespace {

/**
 * One pass over an ExtenderArgs body for the usual request (NodeNames, nodeCacheCapable: true):
 * Boost.JSON's SAX parser validates the whole document exactly as the DOM parser does, builds a
 * DOM for the Pod only, and collects NodeNames straight into strings (already unescaped) without
 * a JSON tree of 1,000 names. Members at the top level are matched like the DOM path: the
 * exact spelling wins, else case-insensitively (the last one wins). A request carrying Nodes
 * objects is left to the DOM path (`nodes_seen`).
 */
class ArgsHandler {
public:
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  explicit ArgsHandler(json::storage_ptr sp) : sp_(std::move(sp)), pod_stack_(sp_) {}

  // Results.
  std::optional<json::value> pod;  // null Pod = a null value
  bool pod_exact = false;
  std::optional<std::vector<std::string>> names;
  bool names_exact = false;
  bool nodes_seen = false;  // "Nodes" with a non-null value: the DOM path handles it
  bool top_object = false;  // the document is an object
  std::string error;        // a message for HTTP 400 (set together with a false return)

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_object_begin(json::error_code& ec) {
    if (mode_ == Mode::Names) {
      return fail(ec, depth_ == 1 ? "ExtenderArgs: NodeNames: expected an array or null"
                                  : "ExtenderArgs: NodeNames: expected strings");
    }
    if (!beginValue(ec)) {
      return false;
    }
    ++depth_;
    if (depth_ == 1) {
      top_object = true;
    }
    return true;
  }
  bool on_object_end(std::size_t n, json::error_code& ec) {
    --depth_;
    if (mode_ == Mode::Pod && depth_ >= 1) {
      pod_stack_.push_object(n);
      return endValue(ec);
    }
    return true;
  }
  bool on_array_begin(json::error_code& ec) {
    if (mode_ == Mode::Names && depth_ == 2) {
      return fail(ec, "ExtenderArgs: NodeNames: expected strings");
    }
    if (!beginValue(ec)) {
      return false;
    }
    ++depth_;
    if (mode_ == Mode::Names && depth_ == 2) {
      current_names_.clear();
    }
    return true;
  }
  bool on_array_end(std::size_t n, json::error_code& ec) {
    --depth_;
    if (mode_ == Mode::Pod && depth_ >= 1) {
      pod_stack_.push_array(n);
      return endValue(ec);
    }
    if (mode_ == Mode::Names && depth_ == 1) {
      names = std::move(current_names_);
      current_names_ = {};
      names_exact = exact_;
      mode_ = Mode::None;
    }
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    if (mode_ == Mode::Pod && depth_ >= 2) {
      pod_stack_.push_chars(s);
    } else if (depth_ == 1) {
      key_.append(s.data(), s.size());
    }
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    if (mode_ == Mode::Pod && depth_ >= 2) {
      pod_stack_.push_key(s);
      return true;
    }
    if (depth_ != 1) {
      return true;
    }
    key_.append(s.data(), s.size());
    choose(key_);
    key_.clear();
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code& ec) {
    if (mode_ == Mode::Pod) {
      if (!beginValue(ec)) {
        return false;
      }
      pod_stack_.push_chars(s);
    } else if (mode_ == Mode::Names && depth_ == 2) {
      part_.append(s.data(), s.size());
    } else if (mode_ == Mode::Names) {
      return fail(ec, "ExtenderArgs: NodeNames: expected an array or null");
    }
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    if (mode_ == Mode::Pod) {
      if (!beginValue(ec)) {
        return false;
      }
      pod_stack_.push_string(s);
      return endValue(ec);
    }
    if (mode_ == Mode::Names && depth_ == 2) {
      if (part_.empty()) {
        current_names_.emplace_back(s.data(), s.size());
      } else {
        part_.append(s.data(), s.size());
        current_names_.push_back(std::move(part_));
        part_.clear();
      }
      return true;
    }
    if (mode_ == Mode::Names) {
      return fail(ec, "ExtenderArgs: NodeNames: expected an array or null");
    }
    return scalar(ec);
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(int64_t i, json::string_view, json::error_code& ec) {
    if (mode_ == Mode::Pod) {
      return beginValue(ec) && (pod_stack_.push_int64(i), endValue(ec));
    }
    return scalar(ec);
  }
  bool on_uint64(uint64_t u, json::string_view, json::error_code& ec) {
    if (mode_ == Mode::Pod) {
      return beginValue(ec) && (pod_stack_.push_uint64(u), endValue(ec));
    }
    return scalar(ec);
  }
  bool on_double(double d, json::string_view, json::error_code& ec) {
    if (mode_ == Mode::Pod) {
      return beginValue(ec) && (pod_stack_.push_double(d), endValue(ec));
    }
    return scalar(ec);
  }
  bool on_bool(bool b, json::error_code& ec) {
    if (mode_ == Mode::Pod) {
      return beginValue(ec) && (pod_stack_.push_bool(b), endValue(ec));
    }
    return scalar(ec);
  }
  bool on_null(json::error_code& ec) {
    if (mode_ == Mode::Pod) {
      return beginValue(ec) && (pod_stack_.push_null(), endValue(ec));
    }
    if (mode_ == Mode::Names && depth_ == 1) {
      names.reset();  // "NodeNames": null
      names_exact = exact_;
      mode_ = Mode::None;
      return true;
    }
    if (mode_ == Mode::Nodes) {
      mode_ = Mode::None;  // "Nodes": null
      return true;
    }
    return scalar(ec);
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

private:
  enum class Mode { None, Pod, Names, Nodes };

  /** The member @p key at the top level selects what its value is for. */
  void choose(std::string_view key) {
    mode_ = Mode::None;
    exact_ = false;
    auto pick = [&](std::string_view name, bool already_exact) {
      if (key == name) {
        exact_ = true;
        return true;
      }
      return !already_exact && iequals(key, name);
    };
    if (pick("Pod", pod_exact)) {
      mode_ = Mode::Pod;
      pod_stack_.reset(sp_);
    } else if (pick("NodeNames", names_exact)) {
      mode_ = Mode::Names;
    } else if (iequals(key, "Nodes")) {
      mode_ = Mode::Nodes;
    }
  }
  /** A value starts: in Nodes mode any non-null value means the DOM path is needed; in Names
   *  mode at the top a value that is not an array is an error. */
  bool beginValue(json::error_code& ec) {
    if (mode_ == Mode::Nodes && depth_ == 1) {
      nodes_seen = true;
      return fail(ec, "");  // stop: the DOM path takes over
    }
    return true;
  }
  /** A Pod value (or a part of it) ended: at the top the Pod is complete. */
  bool endValue(json::error_code&) {
    if (mode_ == Mode::Pod && depth_ == 1) {
      pod = pod_stack_.release();
      pod_exact = exact_;
      mode_ = Mode::None;
    }
    return true;
  }
  /** A scalar at the top level (or anywhere outside Pod and NodeNames). */
  bool scalar(json::error_code& ec) {
    if (mode_ == Mode::Names) {
      return fail(ec, depth_ == 1 ? "ExtenderArgs: NodeNames: expected an array or null"
                                  : "ExtenderArgs: NodeNames: expected strings");
    }
    if (mode_ == Mode::Nodes && depth_ == 1) {
      return beginValue(ec);
    }
    if (depth_ == 1) {
      mode_ = Mode::None;
    }
    return true;
  }
  bool fail(json::error_code& ec, std::string message) {
    error = std::move(message);
    ec = json::error::syntax;  // any error stops the parser; `error` carries the meaning
    return false;
  }

  json::storage_ptr sp_;
  json::value_stack pod_stack_;
  Mode mode_ = Mode::None;
  bool exact_ = false;
  int depth_ = 0;
  std::string key_;
  std::string part_;
  std::vector<std::string> current_names_;
};

/** The DOM path (any ExtenderArgs, also with Nodes objects). */
absl::StatusOr<ExtenderArgs> parseExtenderArgsDom(std::string_view body);

}  // namespace

absl::StatusOr<ExtenderArgs> parseExtenderArgs(std::string_view body) {
  unsigned char buf[8192];
  json::monotonic_resource mr(buf, sizeof(buf));
  json::parse_options opt;
  opt.max_depth = 128;
  json::basic_parser<ArgsHandler> p(opt, json::storage_ptr(&mr));
  boost::system::error_code ec;
  const std::size_t used = p.write_some(false, body.data(), body.size(), ec);
  if (!ec && skipWs(body, used) != body.size()) {
    ec = json::error::extra_data;  // as json::parser::write() does: one document only
  }
  ArgsHandler& h = p.handler();
  if (h.nodes_seen) {
    return parseExtenderArgsDom(body);
  }
  if (!h.error.empty()) {
    return absl::InvalidArgumentError(h.error);
  }
  if (ec) {
    return absl::InvalidArgumentError("malformed JSON: " + ec.message());
  }
  if (!h.top_object) {
    return absl::InvalidArgumentError("ExtenderArgs: expected a JSON object");
  }
  if (!h.pod || h.pod->is_null()) {
    return absl::InvalidArgumentError("ExtenderArgs: Pod is missing");
  }
  ExtenderArgs args;
  CARINA_ASSIGN_OR_RETURN(args.pod, podFromJson(*h.pod));
  args.node_names = std::move(h.names);
  if (!args.node_names) {
    return absl::InvalidArgumentError("ExtenderArgs: neither NodeNames nor Nodes is set");
  }
  return args;
}

namespace {

absl::StatusOr<ExtenderArgs> parseExtenderArgsDom(std::string_view body) {
  // One arena for the whole document: a stack buffer for the usual pod-and-a-few-names body,
  // else one block sized from the body (1,000 node names parse without further allocations).
  unsigned char buf[16384];
  json::monotonic_resource mr = body.size() * 3 <= sizeof(buf)
                                    ? json::monotonic_resource(buf, sizeof(buf))
                                    : json::monotonic_resource(body.size() * 3 + 4096);
  json::parse_options opt;
  opt.max_depth = 128;
  // The parsed value must be built on the arena in place: assigning it to a value with the
  // default storage would deep-copy the whole document.
  boost::system::error_code ec;
  std::optional<json::value> root;
  try {
    root.emplace(json::parse(json::string_view(body.data(), body.size()), ec, &mr, opt));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(std::string("malformed JSON: ") + e.what());
  }
  if (ec) {
    return absl::InvalidArgumentError("malformed JSON: " + ec.message());
  }
  const json::object* top = root->if_object();
  if (top == nullptr) {
    return absl::InvalidArgumentError("ExtenderArgs: expected a JSON object");
  }
  ExtenderArgs args;
  const json::value* pod = member(*top, "Pod");
  if (pod == nullptr || pod->is_null()) {
    return absl::InvalidArgumentError("ExtenderArgs: Pod is missing");
  }
  CARINA_ASSIGN_OR_RETURN(args.pod, podFromJson(*pod));

  if (const json::value* names = member(*top, "NodeNames"); names != nullptr && !names->is_null()) {
    const json::array* arr = names->if_array();
    if (arr == nullptr) {
      return absl::InvalidArgumentError("ExtenderArgs: NodeNames: expected an array or null");
    }
    std::vector<std::string> out;
    out.reserve(arr->size());
    for (const json::value& n : *arr) {
      if (!n.is_string()) {
        return absl::InvalidArgumentError("ExtenderArgs: NodeNames: expected strings");
      }
      out.emplace_back(sv(n.get_string()));
    }
    args.node_names = std::move(out);
  }
  if (const json::value* nodes = member(*top, "Nodes"); nodes != nullptr && !nodes->is_null()) {
    const json::object* list = nodes->if_object();
    if (list == nullptr) {
      return absl::InvalidArgumentError("ExtenderArgs: Nodes: expected a NodeList or null");
    }
    const json::value* items = member(*list, "items");
    const json::array* arr = (items == nullptr || items->is_null()) ? nullptr : items->if_array();
    if (items != nullptr && !items->is_null() && arr == nullptr) {
      return absl::InvalidArgumentError("ExtenderArgs: Nodes.items: expected an array");
    }
    // Locate the same items in the source text.
    std::size_t start = skipWs(body, 0);
    std::optional<Span> nodes_span = findMember(body, start, "Nodes");
    std::vector<Span> spans;
    if (nodes_span && body[nodes_span->begin] == '{') {
      if (std::optional<Span> meta = findMember(body, nodes_span->begin, "metadata");
          meta && body[meta->begin] == '{') {
        args.nodes_metadata = std::string(body.substr(meta->begin, meta->end - meta->begin));
      }
      if (std::optional<Span> it = findMember(body, nodes_span->begin, "items");
          it && body[it->begin] == '[') {
        spans = arrayElements(body, *it);
      }
    }
    std::size_t count = arr != nullptr ? arr->size() : 0;
    if (spans.size() != count) {
      return absl::InvalidArgumentError("ExtenderArgs: Nodes.items could not be located");
    }
    std::vector<ExtenderArgs::RawNode> out;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      const json::object* node = (*arr)[i].if_object();
      const json::object* meta = node != nullptr ? memberObject(*node, "metadata") : nullptr;
      const json::value* name = meta != nullptr ? member(*meta, "name") : nullptr;
      if (name == nullptr || !name->is_string()) {
        return absl::InvalidArgumentError("ExtenderArgs: Nodes.items[" + std::to_string(i) +
                                          "].metadata.name: required");
      }
      out.push_back(ExtenderArgs::RawNode{std::string(sv(name->get_string())), spans[i].begin,
                                          spans[i].end - spans[i].begin});
    }
    args.nodes = std::move(out);
  }
  if (!args.node_names && !args.nodes) {
    return absl::InvalidArgumentError("ExtenderArgs: neither NodeNames nor Nodes is set");
  }
  return args;
}

}  // namespace

absl::StatusOr<Pod> parsePodJson(std::string_view text) {
  CARINA_ASSIGN_OR_RETURN(json::value v, parseJsonText(text));
  return podFromJson(v);
}

absl::StatusOr<Claim> parseClaimJson(std::string_view text, const std::string& default_ns) {
  CARINA_ASSIGN_OR_RETURN(json::value v, parseJsonText(text));
  return claimFromJson(v, "PersistentVolumeClaim", default_ns);
}

absl::StatusOr<StorageClass> parseStorageClassJson(std::string_view text) {
  CARINA_ASSIGN_OR_RETURN(json::value v, parseJsonText(text));
  return storageClassFromJson(v, "StorageClass");
}

std::string renderFilterResult(const ExtenderArgs& args, std::string_view body,
                               const std::vector<NodeVerdict>& verdicts) {
  std::size_t size = 128 + args.nodes_metadata.size();
  for (const NodeVerdict& v : verdicts) {
    size += v.node.size() + 4 + (v.fits ? 0 : v.reason.size() + 8);
  }
  if (args.nodes) {
    for (const ExtenderArgs::RawNode& n : *args.nodes) {
      size += n.length + 1;
    }
  }
  std::string out;
  out.reserve(size);  // escapes aside, the reply's size: no regrowth on the hot path
  out += "{\"Nodes\":";
  if (args.nodes) {
    out += "{\"metadata\":";
    out += args.nodes_metadata;
    out += ",\"items\":[";
    bool first = true;
    // Verdicts follow candidates(): NodeNames when present, else the Nodes items. Look the
    // verdict up by name so that both forms stay consistent when a request carries both.
    for (std::size_t i = 0; i < args.nodes->size(); ++i) {
      const ExtenderArgs::RawNode& n = (*args.nodes)[i];
      bool fits = false;
      if (!args.node_names && i < verdicts.size()) {
        fits = verdicts[i].fits;
      } else {
        for (const NodeVerdict& v : verdicts) {
          if (v.node == n.name) {
            fits = v.fits;
            break;
          }
        }
      }
      if (!fits) {
        continue;
      }
      if (!first) {
        out.push_back(',');
      }
      first = false;
      out.append(body.substr(n.begin, n.length));
    }
    out += "]}";
  } else {
    out += "null";
  }
  out += ",\"NodeNames\":";
  if (args.node_names) {
    out.push_back('[');
    bool first = true;
    for (const NodeVerdict& v : verdicts) {
      if (!v.fits) {
        continue;
      }
      if (!first) {
        out.push_back(',');
      }
      first = false;
      appendJsonString(out, v.node);
    }
    out.push_back(']');
  } else {
    out += "null";
  }
  out += ",\"FailedNodes\":{},\"FailedAndUnresolvableNodes\":{";
  bool first = true;
  for (const NodeVerdict& v : verdicts) {
    if (v.fits) {
      continue;
    }
    if (!first) {
      out.push_back(',');
    }
    first = false;
    appendJsonString(out, v.node);
    out.push_back(':');
    appendJsonString(out, v.reason);
  }
  out += "},\"Error\":\"\"}";
  return out;
}

std::string renderFilterError(std::string_view message) {
  std::string out =
      "{\"Nodes\":null,\"NodeNames\":null,\"FailedNodes\":null,\"FailedAndUnresolvableNodes\":"
      "null,\"Error\":";
  appendJsonString(out, message);
  out.push_back('}');
  return out;
}

std::string renderHostPriorities(const std::vector<NodeVerdict>& verdicts) {
  // [{"Host":"name","Score":n},...] written straight into a buffer sized up front: this reply
  // has an entry for every candidate node (30 KB at 1,000 nodes).
  constexpr std::string_view kHost = "{\"Host\":";
  constexpr std::string_view kScore = ",\"Score\":";
  std::size_t size = 2;
  for (const NodeVerdict& v : verdicts) {
    // Quotes, escapes (6 bytes per character at most), the score and the comma.
    size += kHost.size() + kScore.size() + 6 * v.node.size() + 6;
  }
  std::string out;
  out.reserve(size);
  out.push_back('[');
  bool first = true;
  for (const NodeVerdict& v : verdicts) {
    if (!first) {
      out.push_back(',');
    }
    first = false;
    out.append(kHost);
    appendJsonString(out, v.node);
    out.append(kScore);
    int score = v.fits ? std::clamp(v.score, kMinScore, kMaxScore) : 0;
    if (score >= 10) {
      out.append("10");
    } else {
      out.push_back(static_cast<char>('0' + score));
    }
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

namespace {

/** The nodes a request names: NodeNames when sent (nodeCacheCapable), else the names of the
 *  Node objects, which are copied into @p storage. */
const std::vector<std::string>& requestNodes(const ExtenderArgs& args,
                                             std::vector<std::string>& storage) {
  if (args.node_names) {
    return *args.node_names;
  }
  storage = args.candidates();
  return storage;
}

}  // namespace

ApiReply handleFilter(std::string_view body, const ClusterView& view,
                      const ScoringOptions& options) {
  absl::StatusOr<ExtenderArgs> args = parseExtenderArgs(body);
  if (!args.ok()) {
    return ApiReply{400, statusText(args.status())};
  }
  std::vector<std::string> names;
  const std::vector<std::string>& nodes = requestNodes(*args, names);
  absl::StatusOr<std::vector<NodeVerdict>> verdicts = evaluatePod(args->pod, nodes, view, options);
  if (!verdicts.ok()) {
    return ApiReply{200, renderFilterError(statusText(verdicts.status()))};
  }
  return ApiReply{200, renderFilterResult(*args, body, *verdicts)};
}

ApiReply handlePrioritize(std::string_view body, const ClusterView& view,
                          const ScoringOptions& options) {
  absl::StatusOr<ExtenderArgs> args = parseExtenderArgs(body);
  if (!args.ok()) {
    return ApiReply{400, statusText(args.status())};
  }
  std::vector<std::string> names;
  const std::vector<std::string>& nodes = requestNodes(*args, names);
  absl::StatusOr<std::vector<NodeVerdict>> verdicts = evaluatePod(args->pod, nodes, view, options);
  if (!verdicts.ok()) {
    std::vector<NodeVerdict> zero;
    zero.reserve(nodes.size());
    for (const std::string& n : nodes) {
      NodeVerdict v;
      v.node = n;
      zero.push_back(std::move(v));
    }
    return ApiReply{200, renderHostPriorities(zero)};
  }
  return ApiReply{200, renderHostPriorities(*verdicts)};
}

namespace {

/** A JSON array member of @p obj (absent or null = empty); InvalidArgument otherwise. */
absl::StatusOr<const json::array*> arrayMember(const json::object& obj, std::string_view key) {
  static const json::array kEmpty;
  const json::value* v = member(obj, key);
  if (v == nullptr || v->is_null()) {
    return &kEmpty;
  }
  if (!v->is_array()) {
    return absl::InvalidArgumentError(std::string(key) + ": expected an array");
  }
  return &v->get_array();
}

struct ScoreRequest {
  Pod pod;
  std::vector<Claim> claims;
  std::vector<StorageClass> classes;
  std::optional<std::vector<std::string>> nodes;
};

absl::StatusOr<ScoreRequest> parseScoreRequest(std::string_view body) {
  CARINA_ASSIGN_OR_RETURN(json::value root, parseJsonText(body));
  const json::object* top = root.if_object();
  if (top == nullptr) {
    return absl::InvalidArgumentError("score request: expected a JSON object");
  }
  ScoreRequest out;
  const json::value* pod = member(*top, "pod");
  if (pod == nullptr || pod->is_null()) {
    return absl::InvalidArgumentError("score request: pod is missing");
  }
  CARINA_ASSIGN_OR_RETURN(out.pod, podFromJson(*pod));
  CARINA_ASSIGN_OR_RETURN(const json::array* claims, arrayMember(*top, "claims"));
  for (std::size_t i = 0; i < claims->size(); ++i) {
    CARINA_ASSIGN_OR_RETURN(
        Claim c, claimFromJson((*claims)[i], "claims[" + std::to_string(i) + "]", out.pod.ns));
    out.claims.push_back(std::move(c));
  }
  CARINA_ASSIGN_OR_RETURN(const json::array* classes, arrayMember(*top, "storageClasses"));
  for (std::size_t i = 0; i < classes->size(); ++i) {
    CARINA_ASSIGN_OR_RETURN(
        StorageClass sc,
        storageClassFromJson((*classes)[i], "storageClasses[" + std::to_string(i) + "]"));
    out.classes.push_back(std::move(sc));
  }
  if (const json::value* nodes = member(*top, "nodes"); nodes != nullptr && !nodes->is_null()) {
    const json::array* arr = nodes->if_array();
    if (arr == nullptr) {
      return absl::InvalidArgumentError("nodes: expected an array of names");
    }
    std::vector<std::string> names;
    for (const json::value& n : *arr) {
      if (!n.is_string()) {
        return absl::InvalidArgumentError("nodes: expected an array of names");
      }
      names.emplace_back(sv(n.get_string()));
    }
    out.nodes = std::move(names);
  }
  return out;
}

}  // namespace

ApiReply handleScore(std::string_view body, const ClusterView& view,
                     const ScoringOptions& options) {
  absl::StatusOr<ScoreRequest> req = parseScoreRequest(body);
  if (!req.ok()) {
    return ApiReply{400, statusText(req.status())};
  }
  OverlayClusterView overlay(view);
  for (Claim& c : req->claims) {
    overlay.addClaim(std::move(c));
  }
  for (StorageClass& sc : req->classes) {
    overlay.addStorageClass(std::move(sc));
  }
  std::vector<std::string> nodes = req->nodes ? *req->nodes : overlay.nodeNames();

  std::string out = "{\"pod\":";
  appendJsonString(out, req->pod.ns + "/" + req->pod.name);
  out += ",\"defaultStrategy\":";
  appendJsonString(out, strategyName(options.strategy));
  absl::StatusOr<PodDemand> demand = resolveDemand(req->pod, overlay);
  absl::StatusOr<std::vector<NodeVerdict>> verdicts =
      demand.ok() ? evaluatePod(req->pod, nodes, overlay, options)
                  : absl::StatusOr<std::vector<NodeVerdict>>(demand.status());
  if (!verdicts.ok()) {
    out += ",\"strategy\":";
    appendJsonString(out, strategyName(options.strategy));
    out += ",\"relevant\":false,\"volumes\":[],\"pins\":[],\"nodes\":[],\"error\":";
    appendJsonString(out, statusText(verdicts.status()));
    out += "}";
    return ApiReply{200, std::move(out)};
  }
  core::SchedulerStrategy strategy = options.strategy;
  for (const VolumeDemand& d : demand->volumes) {
    if (d.strategy) {
      strategy = *d.strategy;
      break;
    }
  }
  out += ",\"strategy\":";
  appendJsonString(out, strategyName(strategy));
  out += demand->relevant() ? ",\"relevant\":true" : ",\"relevant\":false";
  out += ",\"volumes\":[";
  for (std::size_t i = 0; i < demand->volumes.size(); ++i) {
    const VolumeDemand& d = demand->volumes[i];
    out += i == 0 ? "{\"claim\":" : ",{\"claim\":";
    appendJsonString(out, d.claim);
    out += ",\"storageClass\":";
    appendJsonString(out, d.storage_class);
    out += ",\"group\":";
    appendJsonString(out, d.group);
    out += ",\"bytes\":" + std::to_string(d.bytes);
    out += d.exclusive ? ",\"exclusive\":true" : ",\"exclusive\":false";
    out += ",\"strategy\":";  // the StorageClass override, "" = the default
    appendJsonString(out, d.strategy ? strategyName(*d.strategy) : std::string_view());
    out += "}";
  }
  out += "],\"pins\":[";
  for (std::size_t i = 0; i < demand->pins.size(); ++i) {
    out += i == 0 ? "{\"node\":" : ",{\"node\":";
    appendJsonString(out, demand->pins[i].first);
    out += ",\"claim\":";
    appendJsonString(out, demand->pins[i].second);
    out += "}";
  }
  out += "],\"nodes\":[";
  for (std::size_t i = 0; i < verdicts->size(); ++i) {
    const NodeVerdict& v = (*verdicts)[i];
    out += i == 0 ? "{\"node\":" : ",{\"node\":";
    appendJsonString(out, v.node);
    out += v.fits ? ",\"fits\":true" : ",\"fits\":false";
    out += ",\"reason\":";
    appendJsonString(out, v.reason);
    out += ",\"score\":" + std::to_string(v.fits ? std::clamp(v.score, kMinScore, kMaxScore) : 0);
    out += "}";
  }
  out += "],\"error\":\"\"}";
  return ApiReply{200, std::move(out)};
}

}  // namespace carina::extender
