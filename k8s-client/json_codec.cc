#include "k8s-client/json_codec.h"

#include <initializer_list>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "agent/core/quantity.h"
#include "agent/core/status.h"
#include "k8s-client/json_codec_internal.h"
#include "k8s-client/str_internal.h"

namespace carina::k8s {
using internal::append;
using internal::cat;
namespace internal {
namespace json = boost::json;

namespace {

const json::value* at(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* cur = &v;
  for (std::string_view key : path) {
    const json::object* o = cur->if_object();
    if (o == nullptr) {
      return nullptr;
    }
    cur = o->if_contains(json::string_view(key.data(), key.size()));
    if (cur == nullptr) {
      return nullptr;
    }
  }
  return cur;
}

std::string str(const json::value* v) {
  if (v == nullptr) {
    return {};
  }
  if (const json::string* s = v->if_string()) {
    return std::string(s->data(), s->size());
  }
  return {};
}
std::string str(const json::value& v, std::initializer_list<std::string_view> path) {
  return str(at(v, path));
}

bool boolean(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* b = at(v, path);
  return b != nullptr && b->is_bool() && b->get_bool();
}

int64_t integer(const json::value& v, std::initializer_list<std::string_view> path) {
  const json::value* n = at(v, path);
  if (n == nullptr) {
    return 0;
  }
  if (n->is_int64()) {
    return n->get_int64();
  }
  if (n->is_uint64()) {
    return static_cast<int64_t>(n->get_uint64());
  }
  if (n->is_double()) {
    return static_cast<int64_t>(n->get_double());
  }
  return 0;
}

uint64_t uinteger(const json::value& v, std::initializer_list<std::string_view> path) {
  int64_t n = integer(v, path);
  const json::value* u = at(v, path);
  if (u != nullptr && u->is_uint64()) {
    return u->get_uint64();
  }
  return n < 0 ? 0 : static_cast<uint64_t>(n);
}

std::map<std::string, std::string> stringMap(const json::value* v) {
  std::map<std::string, std::string> out;
  if (v == nullptr || !v->is_object()) {
    return out;
  }
  for (const auto& kv : v->get_object()) {
    out.emplace(std::string(kv.key()), str(&kv.value()));
  }
  return out;
}

std::vector<std::string> stringList(const json::value* v) {
  std::vector<std::string> out;
  if (v == nullptr || !v->is_array()) {
    return out;
  }
  for (const auto& e : v->get_array()) {
    out.push_back(str(&e));
  }
  return out;
}

/** A quantity field (string or number) in bytes. */
absl::Status quantity(const json::value& v, std::initializer_list<std::string_view> path,
                      std::string_view field, uint64_t& out) {
  const json::value* q = at(v, path);
  out = 0;
  if (q == nullptr || q->is_null()) {
    return absl::OkStatus();
  }
  std::string text;
  if (q->is_string()) {
    text = str(q);
  } else if (q->is_number()) {
    text = json::serialize(*q);
  } else {
    return absl::InvalidArgumentError(cat(field, ": not a quantity"));
  }
  auto bytes = core::parseQuantityBytes(text);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(cat(field, ": ", std::string(bytes.status().message())));
  }
  out = *bytes;
  return absl::OkStatus();
}

absl::Status decodeMeta(const json::value& v, ObjectMeta& m) {
  if (!v.is_object()) {
    return absl::InvalidArgumentError("object: not a JSON object");
  }
  const json::value* meta = at(v, {"metadata"});
  if (meta != nullptr && !meta->is_object() && !meta->is_null()) {
    return absl::InvalidArgumentError("metadata: not a JSON object");
  }
  m = ObjectMeta{};
  if (meta == nullptr || meta->is_null()) {
    return absl::OkStatus();
  }
  m.name = str(*meta, {"name"});
  m.namespace_ = str(*meta, {"namespace"});
  m.uid = str(*meta, {"uid"});
  m.resource_version = str(*meta, {"resourceVersion"});
  m.generate_name = str(*meta, {"generateName"});
  m.generation = integer(*meta, {"generation"});
  m.creation_timestamp = str(*meta, {"creationTimestamp"});
  m.deletion_timestamp = str(*meta, {"deletionTimestamp"});
  m.labels = stringMap(at(*meta, {"labels"}));
  m.annotations = stringMap(at(*meta, {"annotations"}));
  m.finalizers = stringList(at(*meta, {"finalizers"}));
  if (const json::value* refs = at(*meta, {"ownerReferences"}); refs != nullptr) {
    if (!refs->is_array() && !refs->is_null()) {
      return absl::InvalidArgumentError("metadata.ownerReferences: not an array");
    }
    if (refs->is_array()) {
      for (const auto& r : refs->get_array()) {
        OwnerReference ref;
        ref.api_version = str(r, {"apiVersion"});
        ref.kind = str(r, {"kind"});
        ref.name = str(r, {"name"});
        ref.uid = str(r, {"uid"});
        ref.controller = boolean(r, {"controller"});
        ref.block_owner_deletion = boolean(r, {"blockOwnerDeletion"});
        m.owner_references.push_back(std::move(ref));
      }
    }
  }
  return absl::OkStatus();
}

ObjectReference decodeRef(const json::value* v) {
  ObjectReference r;
  if (v == nullptr) {
    return r;
  }
  r.kind = str(*v, {"kind"});
  r.namespace_ = str(*v, {"namespace"});
  r.name = str(*v, {"name"});
  r.uid = str(*v, {"uid"});
  r.resource_version = str(*v, {"resourceVersion"});
  r.api_version = str(*v, {"apiVersion"});
  return r;
}

// --- encoding helpers: set or erase a field inside nested objects, creating parents ---

// Boost.JSON 1.81's object::operator[] may grow the table even when the key exists, which
// moves every member: references into a parent object must not be held across operator[] calls
// on it. objectAt() therefore looks keys up first and inserts only when missing.
json::object& objectAt(json::value& root, std::initializer_list<std::string_view> path) {
  json::value* cur = &root;
  for (std::string_view key : path) {
    if (!cur->is_object()) {
      *cur = json::object();
    }
    json::string_view k(key.data(), key.size());
    json::object& o = cur->get_object();
    json::value* next = o.if_contains(k);
    if (next == nullptr) {
      o.emplace(k, json::object());
      next = o.if_contains(k);
    }
    cur = next;
  }
  if (!cur->is_object()) {
    *cur = json::object();
  }
  return cur->get_object();
}

void setStr(json::object& o, std::string_view key, const std::string& value) {
  json::string_view k(key.data(), key.size());
  if (value.empty()) {
    o.erase(k);
  } else {
    o[k] = json::string_view(value.data(), value.size());
  }
}

void setMap(json::object& o, std::string_view key, const std::map<std::string, std::string>& m) {
  json::string_view k(key.data(), key.size());
  if (m.empty()) {
    o.erase(k);
    return;
  }
  json::object out;
  for (const auto& [mk, mv] : m) {
    out[mk] = mv;
  }
  o[k] = std::move(out);
}

void setList(json::object& o, std::string_view key, const std::vector<std::string>& l) {
  json::string_view k(key.data(), key.size());
  if (l.empty()) {
    o.erase(k);
    return;
  }
  json::array out;
  for (const auto& e : l) {
    out.emplace_back(json::string_view(e.data(), e.size()));
  }
  o[k] = std::move(out);
}

/** Keeps the existing quantity text when it denotes the same number of bytes. */
void setQuantity(json::object& o, std::string_view key, uint64_t bytes) {
  json::string_view k(key.data(), key.size());
  if (const json::value* old = o.if_contains(k); old != nullptr && old->is_string()) {
    auto parsed = core::parseQuantityBytes(
        std::string_view(old->get_string().data(), old->get_string().size()));
    if (parsed.ok() && *parsed == bytes) {
      return;
    }
  }
  o[k] = std::to_string(bytes);
}

/** metadata.ownerReferences as the API server spells it. */
json::array ownerReferencesJson(const std::vector<OwnerReference>& refs) {
  json::array out;
  for (const OwnerReference& r : refs) {
    json::object ref{
        {"apiVersion", r.api_version}, {"kind", r.kind}, {"name", r.name}, {"uid", r.uid}};
    if (r.controller) {
      ref["controller"] = true;
    }
    if (r.block_owner_deletion) {
      ref["blockOwnerDeletion"] = true;
    }
    out.push_back(std::move(ref));
  }
  return out;
}

json::value startEncode(const std::string& raw, const ResourceKind& kind, const ObjectMeta& m) {
  json::value root = json::object();
  if (!raw.empty()) {
    auto parsed = parseJson(raw);
    if (parsed.ok() && parsed->is_object()) {
      root = std::move(*parsed);
    }
  }
  json::object& o = root.get_object();
  o["apiVersion"] = json::string_view(kind.api_version.data(), kind.api_version.size());
  o["kind"] = json::string_view(kind.kind.data(), kind.kind.size());
  json::object& meta = objectAt(root, {"metadata"});
  setStr(meta, "name", m.name);
  setStr(meta, "namespace", m.namespace_);
  setStr(meta, "uid", m.uid);
  setStr(meta, "resourceVersion", m.resource_version);
  setStr(meta, "generateName", m.generate_name);
  setMap(meta, "labels", m.labels);
  setMap(meta, "annotations", m.annotations);
  setList(meta, "finalizers", m.finalizers);
  if (!m.owner_references.empty() && !meta.contains("ownerReferences")) {
    meta["ownerReferences"] = ownerReferencesJson(m.owner_references);
  }
  return root;
}

}  // namespace

absl::StatusOr<json::value> parseJson(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) {
    return absl::InvalidArgumentError(cat("invalid JSON: ", ec.message()));
  }
  return v;
}

std::string serialize(const json::value& v) { return json::serialize(v); }

std::string resourceVersionOf(const json::value& v) {
  return str(v, {"metadata", "resourceVersion"});
}

void applyMergePatch(json::value& target, const json::value& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) {
    target = json::object();
  }
  json::object& t = target.get_object();
  for (const auto& kv : patch.get_object()) {
    if (kv.value().is_null()) {
      t.erase(kv.key());
    } else {
      applyMergePatch(t[kv.key()], kv.value());
    }
  }
}

absl::Status decodeValue(const json::value& v, Node& out) { return decodeMeta(v, out.metadata); }

absl::Status decodeValue(const json::value& v, PersistentVolumeClaim& out) {
  CARINA_RETURN_IF_ERROR(decodeMeta(v, out.metadata));
  const json::value* sc = at(v, {"spec", "storageClassName"});
  out.storage_class_name.reset();
  if (sc != nullptr && sc->is_string()) {
    out.storage_class_name = str(sc);
  }
  out.access_modes = stringList(at(v, {"spec", "accessModes"}));
  CARINA_RETURN_IF_ERROR(quantity(v, {"spec", "resources", "requests", "storage"},
                                  "spec.resources.requests.storage", out.requested_bytes));
  out.volume_name = str(v, {"spec", "volumeName"});
  out.volume_mode = str(v, {"spec", "volumeMode"});
  out.phase = str(v, {"status", "phase"});
  CARINA_RETURN_IF_ERROR(quantity(v, {"status", "capacity", "storage"}, "status.capacity.storage",
                                  out.capacity_bytes));
  return absl::OkStatus();
}

absl::Status decodeValue(const json::value& v, PersistentVolume& out) {
  CARINA_RETURN_IF_ERROR(decodeMeta(v, out.metadata));
  CARINA_RETURN_IF_ERROR(
      quantity(v, {"spec", "capacity", "storage"}, "spec.capacity.storage", out.capacity_bytes));
  out.csi_driver = str(v, {"spec", "csi", "driver"});
  out.volume_handle = str(v, {"spec", "csi", "volumeHandle"});
  out.fs_type = str(v, {"spec", "csi", "fsType"});
  out.volume_attributes = stringMap(at(v, {"spec", "csi", "volumeAttributes"}));
  out.storage_class_name = str(v, {"spec", "storageClassName"});
  out.reclaim_policy = str(v, {"spec", "persistentVolumeReclaimPolicy"});
  out.phase = str(v, {"status", "phase"});
  out.claim_ref.reset();
  if (const json::value* ref = at(v, {"spec", "claimRef"}); ref != nullptr && ref->is_object()) {
    out.claim_ref = decodeRef(ref);
  }
  out.node_affinity_node.clear();
  const json::value* terms = at(v, {"spec", "nodeAffinity", "required", "nodeSelectorTerms"});
  if (terms != nullptr && terms->is_array()) {
    for (const auto& term : terms->get_array()) {
      const json::value* exprs = at(term, {"matchExpressions"});
      if (exprs == nullptr || !exprs->is_array()) {
        continue;
      }
      for (const auto& e : exprs->get_array()) {
        std::string key = str(e, {"key"});
        std::vector<std::string> values = stringList(at(e, {"values"}));
        if ((key == "topology.carina.storage.io/node" || key == "kubernetes.io/hostname") &&
            str(e, {"operator"}) == "In" && values.size() == 1) {
          out.node_affinity_node = values[0];
          break;
        }
      }
      if (!out.node_affinity_node.empty()) {
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status decodeValue(const json::value& v, StorageClass& out) {
  CARINA_RETURN_IF_ERROR(decodeMeta(v, out.metadata));
  out.provisioner = str(v, {"provisioner"});
  out.parameters = stringMap(at(v, {"parameters"}));
  out.volume_binding_mode = str(v, {"volumeBindingMode"});
  out.allow_volume_expansion = boolean(v, {"allowVolumeExpansion"});
  out.reclaim_policy = str(v, {"reclaimPolicy"});
  return absl::OkStatus();
}

absl::Status decodeValue(const json::value& v, Pod& out) {
  CARINA_RETURN_IF_ERROR(decodeMeta(v, out.metadata));
  out.node_name = str(v, {"spec", "nodeName"});
  out.scheduler_name = str(v, {"spec", "schedulerName"});
  out.phase = str(v, {"status", "phase"});
  out.volumes.clear();
  const json::value* vols = at(v, {"spec", "volumes"});
  if (vols != nullptr && vols->is_array()) {
    std::size_t i = 0;
    for (const auto& vol : vols->get_array()) {
      PodVolume pv;
      pv.name = str(vol, {"name"});
      pv.claim_name = str(vol, {"persistentVolumeClaim", "claimName"});
      if (const json::value* tmpl = at(vol, {"ephemeral", "volumeClaimTemplate"})) {
        pv.ephemeral = true;
        if (const json::value* sc = at(*tmpl, {"spec", "storageClassName"});
            sc != nullptr && sc->is_string()) {
          pv.ephemeral_storage_class = str(sc);
        }
        CARINA_RETURN_IF_ERROR(quantity(*tmpl, {"spec", "resources", "requests", "storage"},
                                        cat("spec.volumes[", i,
                                            "].ephemeral.volumeClaimTemplate.spec."
                                            "resources.requests.storage"),
                                        pv.ephemeral_bytes));
      }
      out.volumes.push_back(std::move(pv));
      ++i;
    }
  }
  return absl::OkStatus();
}

absl::Status decodeValue(const json::value& v, Event& out) {
  CARINA_RETURN_IF_ERROR(decodeMeta(v, out.metadata));
  out.involved_object = decodeRef(at(v, {"involvedObject"}));
  out.reason = str(v, {"reason"});
  out.message = str(v, {"message"});
  out.type = str(v, {"type"});
  out.source_component = str(v, {"source", "component"});
  out.source_host = str(v, {"source", "host"});
  out.count = static_cast<int32_t>(integer(v, {"count"}));
  out.first_timestamp = str(v, {"firstTimestamp"});
  out.last_timestamp = str(v, {"lastTimestamp"});
  return absl::OkStatus();
}

absl::Status decodeValue(const json::value& v, NodeStorageResource& out) {
  CARINA_RETURN_IF_ERROR(decodeMeta(v, out.metadata));
  out.node_name = str(v, {"spec", "nodeName"});
  out.update_time = str(v, {"status", "updateTime"});
  out.groups.clear();
  const json::value* groups = at(v, {"status", "groups"});
  if (groups == nullptr || groups->is_null()) {
    return absl::OkStatus();
  }
  if (!groups->is_array()) {
    return absl::InvalidArgumentError("status.groups: not an array");
  }
  for (const auto& g : groups->get_array()) {
    StorageGroup sg;
    sg.name = str(g, {"name"});
    sg.policy = str(g, {"policy"});
    sg.total_bytes = uinteger(g, {"totalBytes"});
    sg.free_bytes = uinteger(g, {"freeBytes"});
    sg.largest_allocatable_bytes = uinteger(g, {"largestAllocatableBytes"});
    sg.empty_disks = static_cast<uint32_t>(uinteger(g, {"emptyDisks"}));
    sg.volume_group = str(g, {"volumeGroup"});
    if (const json::value* disks = at(g, {"disks"}); disks != nullptr && disks->is_array()) {
      for (const auto& d : disks->get_array()) {
        StorageDisk sd;
        sd.name = str(d, {"name"});
        sd.size_bytes = uinteger(d, {"sizeBytes"});
        sd.partitions = static_cast<uint32_t>(uinteger(d, {"partitions"}));
        sd.exclusive = boolean(d, {"exclusive"});
        if (const json::value* segs = at(d, {"freeSegments"});
            segs != nullptr && segs->is_array()) {
          for (const auto& s : segs->get_array()) {
            sd.free_segments.push_back({uinteger(s, {"start"}), uinteger(s, {"length"})});
          }
        }
        sg.disks.push_back(std::move(sd));
      }
    }
    out.groups.push_back(std::move(sg));
  }
  return absl::OkStatus();
}

absl::Status decodeValue(const json::value& v, LogicVolume& out) {
  CARINA_RETURN_IF_ERROR(decodeMeta(v, out.metadata));
  out.node_name = str(v, {"spec", "nodeName"});
  out.group_name = str(v, {"spec", "groupName"});
  out.size_bytes = uinteger(v, {"spec", "sizeBytes"});
  out.exclusive = boolean(v, {"spec", "exclusive"});
  out.pvc_namespace = str(v, {"spec", "pvc", "namespace"});
  out.pvc_name = str(v, {"spec", "pvc", "name"});
  out.volume_id = str(v, {"status", "volumeID"});
  out.device = str(v, {"status", "device"});
  out.phase = str(v, {"status", "phase"});
  out.message = str(v, {"status", "message"});
  out.current_bytes = uinteger(v, {"status", "currentSizeBytes"});
  return absl::OkStatus();
}

}  // namespace internal

namespace {
namespace json = boost::json;
using internal::objectAt;
using internal::setList;
using internal::setMap;
using internal::setQuantity;
using internal::setStr;
using internal::startEncode;

template <class T>
absl::Status decodeText(std::string_view text, T& out) {
  auto v = internal::parseJson(text);
  if (!v.ok()) {
    return v.status();
  }
  if (!v->is_object()) {
    return absl::InvalidArgumentError("object: not a JSON object");
  }
  CARINA_RETURN_IF_ERROR(internal::decodeValue(*v, out));
  out.raw.assign(text.data(), text.size());
  return absl::OkStatus();
}

void setRef(json::object& o, const ObjectReference& r) {
  setStr(o, "kind", r.kind);
  setStr(o, "namespace", r.namespace_);
  setStr(o, "name", r.name);
  setStr(o, "uid", r.uid);
  setStr(o, "resourceVersion", r.resource_version);
  setStr(o, "apiVersion", r.api_version);
}

}  // namespace

absl::Status decodeObject(std::string_view json, Node& out) { return decodeText(json, out); }
absl::Status decodeObject(std::string_view json, PersistentVolumeClaim& out) {
  return decodeText(json, out);
}
absl::Status decodeObject(std::string_view json, PersistentVolume& out) {
  return decodeText(json, out);
}
absl::Status decodeObject(std::string_view json, StorageClass& out) {
  return decodeText(json, out);
}
absl::Status decodeObject(std::string_view json, Pod& out) { return decodeText(json, out); }
absl::Status decodeObject(std::string_view json, Event& out) { return decodeText(json, out); }
absl::Status decodeObject(std::string_view json, NodeStorageResource& out) {
  return decodeText(json, out);
}
absl::Status decodeObject(std::string_view json, LogicVolume& out) { return decodeText(json, out); }

std::string encodeObject(const Node& object) {
  return json::serialize(startEncode(object.raw, Node::kResource, object.metadata));
}

std::string encodeObject(const PersistentVolumeClaim& o) {
  json::value root = startEncode(o.raw, PersistentVolumeClaim::kResource, o.metadata);
  json::object& spec = objectAt(root, {"spec"});
  if (o.storage_class_name.has_value()) {
    spec["storageClassName"] = *o.storage_class_name;
  } else {
    spec.erase("storageClassName");
  }
  setList(spec, "accessModes", o.access_modes);
  if (o.requested_bytes > 0) {
    setQuantity(objectAt(root, {"spec", "resources", "requests"}), "storage", o.requested_bytes);
  }
  setStr(spec, "volumeName", o.volume_name);
  setStr(spec, "volumeMode", o.volume_mode);
  if (!o.phase.empty() || o.capacity_bytes > 0) {
    json::object& status = objectAt(root, {"status"});
    setStr(status, "phase", o.phase);
    if (o.capacity_bytes > 0) {
      setQuantity(objectAt(root, {"status", "capacity"}), "storage", o.capacity_bytes);
    }
  }
  return json::serialize(root);
}

std::string encodeObject(const PersistentVolume& o) {
  json::value root = startEncode(o.raw, PersistentVolume::kResource, o.metadata);
  json::object& spec = objectAt(root, {"spec"});
  if (o.capacity_bytes > 0) {
    setQuantity(objectAt(root, {"spec", "capacity"}), "storage", o.capacity_bytes);
  }
  if (!o.csi_driver.empty() || !o.volume_handle.empty()) {
    json::object& csi = objectAt(root, {"spec", "csi"});
    setStr(csi, "driver", o.csi_driver);
    setStr(csi, "volumeHandle", o.volume_handle);
    setStr(csi, "fsType", o.fs_type);
    setMap(csi, "volumeAttributes", o.volume_attributes);
  }
  if (!o.node_affinity_node.empty()) {
    // Only written when the raw object has no affinity yet (the field is immutable).
    if (!spec.contains("nodeAffinity")) {
      json::object expr{{"key", "topology.carina.storage.io/node"},
                        {"operator", "In"},
                        {"values", json::array{json::string_view(o.node_affinity_node.data(),
                                                                 o.node_affinity_node.size())}}};
      json::object term{{"matchExpressions", json::array{std::move(expr)}}};
      spec["nodeAffinity"] =
          json::object{{"required", json::object{{"nodeSelectorTerms", json::array{term}}}}};
    }
  }
  if (o.claim_ref.has_value()) {
    setRef(objectAt(root, {"spec", "claimRef"}), *o.claim_ref);
  } else {
    spec.erase("claimRef");
  }
  setStr(spec, "storageClassName", o.storage_class_name);
  setStr(spec, "persistentVolumeReclaimPolicy", o.reclaim_policy);
  if (!o.phase.empty()) {
    setStr(objectAt(root, {"status"}), "phase", o.phase);
  }
  return json::serialize(root);
}

std::string encodeObject(const StorageClass& o) {
  json::value root = startEncode(o.raw, StorageClass::kResource, o.metadata);
  json::object& obj = root.get_object();
  setStr(obj, "provisioner", o.provisioner);
  setMap(obj, "parameters", o.parameters);
  setStr(obj, "volumeBindingMode", o.volume_binding_mode);
  setStr(obj, "reclaimPolicy", o.reclaim_policy);
  if (o.allow_volume_expansion) {
    obj["allowVolumeExpansion"] = true;
  } else if (obj.contains("allowVolumeExpansion")) {
    obj["allowVolumeExpansion"] = false;
  }
  return json::serialize(root);
}

std::string encodeObject(const Pod& o) {
  // Pods are read-mostly for carina: the volumes list is taken from raw unchanged.
  json::value root = startEncode(o.raw, Pod::kResource, o.metadata);
  json::object& spec = objectAt(root, {"spec"});
  setStr(spec, "nodeName", o.node_name);
  setStr(spec, "schedulerName", o.scheduler_name);
  if (!spec.contains("volumes") && !o.volumes.empty()) {
    json::array vols;
    for (const auto& v : o.volumes) {
      json::object vol{{"name", v.name}};
      if (!v.claim_name.empty()) {
        vol["persistentVolumeClaim"] = json::object{{"claimName", v.claim_name}};
      }
      vols.push_back(std::move(vol));
    }
    spec["volumes"] = std::move(vols);
  }
  if (!o.phase.empty()) {
    setStr(objectAt(root, {"status"}), "phase", o.phase);
  }
  return json::serialize(root);
}

std::string encodeObject(const Event& o) {
  json::value root = startEncode(o.raw, Event::kResource, o.metadata);
  json::object& obj = root.get_object();
  setRef(objectAt(root, {"involvedObject"}), o.involved_object);
  setStr(obj, "reason", o.reason);
  setStr(obj, "message", o.message);
  setStr(obj, "type", o.type);
  if (!o.source_component.empty() || !o.source_host.empty()) {
    json::object& src = objectAt(root, {"source"});
    setStr(src, "component", o.source_component);
    setStr(src, "host", o.source_host);
  }
  if (o.count > 0) {
    obj["count"] = o.count;
  }
  setStr(obj, "firstTimestamp", o.first_timestamp);
  setStr(obj, "lastTimestamp", o.last_timestamp);
  return json::serialize(root);
}

std::string encodeObject(const NodeStorageResource& o) {
  json::value root = startEncode(o.raw, NodeStorageResource::kResource, o.metadata);
  setStr(objectAt(root, {"spec"}), "nodeName", o.node_name);
  json::object& status = objectAt(root, {"status"});
  setStr(status, "updateTime", o.update_time);
  // Node-wide sums and the group names, derived from the groups, for kubectl's printer columns
  // (additionalPrinterColumns take simple JSONPaths only; decoding ignores them).
  uint64_t total = 0;
  uint64_t free = 0;
  std::string names;
  for (const auto& g : o.groups) {
    total += g.total_bytes;
    free += g.free_bytes;
    append(&names, names.empty() ? "" : ",", g.name);
  }
  status["totalBytes"] = total;
  status["freeBytes"] = free;
  setStr(status, "groupNames", names);
  json::array groups;
  for (const auto& g : o.groups) {
    json::object jg{{"name", g.name},
                    {"policy", g.policy},
                    {"totalBytes", g.total_bytes},
                    {"freeBytes", g.free_bytes},
                    {"largestAllocatableBytes", g.largest_allocatable_bytes},
                    {"emptyDisks", g.empty_disks}};
    setStr(jg, "volumeGroup", g.volume_group);
    if (!g.disks.empty()) {
      json::array disks;
      for (const auto& d : g.disks) {
        json::array segs;
        for (const auto& s : d.free_segments) {
          segs.push_back(json::object{{"start", s.start}, {"length", s.length}});
        }
        disks.push_back(json::object{{"name", d.name},
                                     {"sizeBytes", d.size_bytes},
                                     {"freeSegments", std::move(segs)},
                                     {"partitions", d.partitions},
                                     {"exclusive", d.exclusive}});
      }
      jg["disks"] = std::move(disks);
    }
    groups.push_back(std::move(jg));
  }
  status["groups"] = std::move(groups);
  return json::serialize(root);
}

std::string encodeObject(const LogicVolume& o) {
  json::value root = startEncode(o.raw, LogicVolume::kResource, o.metadata);
  json::object& spec = objectAt(root, {"spec"});
  setStr(spec, "nodeName", o.node_name);
  setStr(spec, "groupName", o.group_name);
  spec["sizeBytes"] = o.size_bytes;
  spec["exclusive"] = o.exclusive;
  if (!o.pvc_name.empty()) {
    json::object& pvc = objectAt(root, {"spec", "pvc"});
    setStr(pvc, "namespace", o.pvc_namespace);
    setStr(pvc, "name", o.pvc_name);
  }
  json::object& status = objectAt(root, {"status"});
  setStr(status, "volumeID", o.volume_id);
  setStr(status, "device", o.device);
  setStr(status, "phase", o.phase);
  setStr(status, "message", o.message);
  if (o.current_bytes > 0) {
    status["currentSizeBytes"] = o.current_bytes;
  }
  return json::serialize(root);
}

std::string ownerReferencesPatch(const std::vector<OwnerReference>& refs) {
  json::object meta;
  meta["ownerReferences"] = internal::ownerReferencesJson(refs);
  return json::serialize(json::object{{"metadata", std::move(meta)}});
}

}  // namespace carina::k8s
