#pragma once

// Typed Kubernetes objects as plain structs (no JSON headers). Only the fields carina reads or
// writes are modelled; everything else survives a round trip through `raw`: every decoded object
// keeps the JSON it came from, and encoding merges the modelled fields back into it, so an
// update never drops fields this client does not know (newer API versions, other controllers).
//
// Sizes are bytes (Kubernetes quantities are parsed exactly, see agent/core/quantity.h).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

namespace carina::k8s {

/** Group/version/resource of an API type, as used in URLs. */
struct ResourceKind {
  std::string_view group;        // "" for core
  std::string_view version;      // "v1"
  std::string_view api_version;  // "storage.k8s.io/v1"; "v1" for core
  std::string_view plural;       // "nodes"
  std::string_view kind;         // "Node"
  bool namespaced = false;
  bool has_status = false;  // has a status subresource
};

inline constexpr std::string_view kCarinaGroup = "carina.storage.io";
/** Annotation kube-scheduler's VolumeBinding writes on an unbound WaitForFirstConsumer PVC. */
inline constexpr std::string_view kSelectedNodeAnnotation = "volume.kubernetes.io/selected-node";

/** metadata.ownerReferences[] entry (garbage collection; "controller" marks the managing
 *  owner, e.g. the Pod of a generic ephemeral volume's PVC). */
struct OwnerReference {
  std::string api_version;
  std::string kind;
  std::string name;
  std::string uid;
  bool controller = false;
  bool block_owner_deletion = false;
  friend bool operator==(const OwnerReference&, const OwnerReference&) = default;
};

struct ObjectMeta {
  std::string name;
  std::string namespace_;  // empty for cluster-scoped objects
  std::string uid;
  std::string resource_version;
  std::string generate_name;
  int64_t generation = 0;
  std::string creation_timestamp;  // RFC 3339, as sent by the server
  std::string deletion_timestamp;  // empty unless being deleted
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::vector<std::string> finalizers;
  /** Decoded from metadata.ownerReferences; encoded only when raw has none (new objects): the
   *  references of an existing object are kept as the server sent them. */
  std::vector<OwnerReference> owner_references;
};

/** The object's identity in caches: "namespace/name" or "name". */
inline std::string objectKey(const ObjectMeta& m) {
  return m.namespace_.empty() ? m.name : m.namespace_ + "/" + m.name;
}

struct Node {
  static constexpr ResourceKind kResource{"", "v1", "v1", "nodes", "Node", false, true};
  ObjectMeta metadata;
  std::string raw;  // the JSON this object was decoded from (unknown fields kept on write)
};

struct PersistentVolumeClaim {
  static constexpr ResourceKind kResource{
      "", "v1", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, true};
  ObjectMeta metadata;
  std::optional<std::string> storage_class_name;  // nullopt: field absent (default class)
  std::vector<std::string> access_modes;
  uint64_t requested_bytes = 0;  // spec.resources.requests.storage
  std::string volume_name;       // spec.volumeName (bound PV)
  std::string volume_mode;       // "Filesystem" / "Block" / ""
  std::string phase;             // status.phase: Pending / Bound / Lost
  uint64_t capacity_bytes = 0;   // status.capacity.storage
  std::string raw;

  /** The node kube-scheduler selected for provisioning, or "" (annotation). */
  std::string selectedNode() const {
    auto it = metadata.annotations.find(std::string(kSelectedNodeAnnotation));
    return it == metadata.annotations.end() ? std::string() : it->second;
  }
};

struct ObjectReference {
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string resource_version;
  std::string api_version;
};

struct PersistentVolume {
  static constexpr ResourceKind kResource{
      "", "v1", "v1", "persistentvolumes", "PersistentVolume", false, true};
  ObjectMeta metadata;
  uint64_t capacity_bytes = 0;                           // spec.capacity.storage
  std::string csi_driver;                                // spec.csi.driver
  std::string volume_handle;                             // spec.csi.volumeHandle
  std::string fs_type;                                   // spec.csi.fsType
  std::map<std::string, std::string> volume_attributes;  // spec.csi.volumeAttributes
  /** The node the PV is pinned to: the single value of the first nodeAffinity term whose key
   *  is the carina topology key or kubernetes.io/hostname; "" when not pinned. */
  std::string node_affinity_node;
  std::optional<ObjectReference> claim_ref;
  std::string storage_class_name;
  std::string reclaim_policy;  // spec.persistentVolumeReclaimPolicy
  std::string phase;           // status.phase
  std::string raw;
};

struct StorageClass {
  static constexpr ResourceKind kResource{
      "storage.k8s.io", "v1", "storage.k8s.io/v1", "storageclasses", "StorageClass", false, false};
  ObjectMeta metadata;
  std::string provisioner;
  std::map<std::string, std::string> parameters;
  std::string volume_binding_mode;  // "Immediate" (default) / "WaitForFirstConsumer"
  bool allow_volume_expansion = false;
  std::string reclaim_policy;
  std::string raw;
};

struct PodVolume {
  std::string name;
  std::string claim_name;  // persistentVolumeClaim.claimName; "" for other volume types
  /** Generic ephemeral volume (ephemeral.volumeClaimTemplate): the PVC kube creates is named
   *  "<pod>-<volume>". */
  bool ephemeral = false;
  std::optional<std::string> ephemeral_storage_class;
  uint64_t ephemeral_bytes = 0;
};

struct Pod {
  static constexpr ResourceKind kResource{"", "v1", "v1", "pods", "Pod", true, true};
  ObjectMeta metadata;
  std::string node_name;  // spec.nodeName
  std::string scheduler_name;
  std::vector<PodVolume> volumes;
  std::string phase;  // status.phase
  std::string raw;
};

struct Event {
  static constexpr ResourceKind kResource{"", "v1", "v1", "events", "Event", true, false};
  ObjectMeta metadata;
  ObjectReference involved_object;
  std::string reason;
  std::string message;
  std::string type;  // "Normal" / "Warning"
  std::string source_component;
  std::string source_host;
  int32_t count = 0;
  std::string first_timestamp;
  std::string last_timestamp;
  std::string raw;
};

// --- carina.storage.io/v1 custom resources (cluster-scoped) ---

struct FreeSegment {
  uint64_t start = 0;
  uint64_t length = 0;
  friend bool operator==(const FreeSegment&, const FreeSegment&) = default;
};

struct StorageDisk {
  std::string name;  // kernel name ("sdb")
  uint64_t size_bytes = 0;
  std::vector<FreeSegment> free_segments;
  uint32_t partitions = 0;
  bool exclusive = false;
  friend bool operator==(const StorageDisk&, const StorageDisk&) = default;
};

struct StorageGroup {
  std::string name;    // the diskSelector group
  std::string policy;  // "RAW" / "LVM"
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t largest_allocatable_bytes = 0;
  uint32_t empty_disks = 0;
  std::string volume_group;        // LVM groups: the VG name
  std::vector<StorageDisk> disks;  // RAW groups
  friend bool operator==(const StorageGroup&, const StorageGroup&) = default;
};

/** Per-node capacity (named after the node). spec.nodeName; status.groups/updateTime. */
struct NodeStorageResource {
  static constexpr ResourceKind kResource{"carina.storage.io",
                                          "v1",
                                          "carina.storage.io/v1",
                                          "nodestorageresources",
                                          "NodeStorageResource",
                                          false,
                                          true};
  ObjectMeta metadata;
  std::string node_name;
  std::vector<StorageGroup> groups;
  std::string update_time;  // RFC 3339
  std::string raw;
};

/** Per-volume record. spec: nodeName, groupName, sizeBytes, exclusive, pvc ref; status. */
struct LogicVolume {
  static constexpr ResourceKind kResource{"carina.storage.io",
                                          "v1",
                                          "carina.storage.io/v1",
                                          "logicvolumes",
                                          "LogicVolume",
                                          false,
                                          true};
  ObjectMeta metadata;
  std::string node_name;
  std::string group_name;
  uint64_t size_bytes = 0;
  bool exclusive = false;
  std::string pvc_namespace;
  std::string pvc_name;
  std::string volume_id;       // status.volumeID
  std::string device;          // status.device ("/dev/sdb3", "/dev/vg/lv")
  std::string phase;           // status.phase: Pending / Created / Failed / Deleting
  std::string message;         // status.message
  uint64_t current_bytes = 0;  // status.currentSizeBytes
  std::string raw;
};

/** One page (or all) of a list. */
template <class T>
struct ObjectList {
  std::string resource_version;  // list RV: start a watch from here
  std::string continue_token;    // non-empty when more pages follow
  std::vector<T> items;
};

enum class WatchEventType { Added, Modified, Deleted, Bookmark };

template <class T>
struct WatchEvent {
  WatchEventType type = WatchEventType::Added;
  /** Bookmarks carry only metadata.resourceVersion. */
  T object;
};

}  // namespace carina::k8s
