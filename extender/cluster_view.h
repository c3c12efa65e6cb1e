#pragma once

// What the scheduler extender needs to know about the cluster, as plain data behind one small
// interface. In cluster mode the lead adapts the Kubernetes watch caches to it; in standalone
// mode and in tests InMemoryClusterView (below) is used. Pure C++: no Kubernetes client, no JSON.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/core/config.h"
#include "agent/storage/disk_types.h"

namespace carina::extender {

/** A PersistentVolumeClaim, reduced to what placement needs. */
struct Claim {
  std::string ns;
  std::string name;
  std::string storage_class;   // spec.storageClassName ("" = none)
  uint64_t request_bytes = 0;  // spec.resources.requests.storage, rounded up to whole bytes
  std::string volume_name;     // spec.volumeName: non-empty once bound to a PV
  std::string selected_node;   // annotation volume.kubernetes.io/selected-node
  std::string owner_uid;       // controlling owner's uid (generic ephemeral volumes); "" = none

  bool bound() const { return !volume_name.empty(); }
  std::string key() const { return ns + "/" + name; }
};

/** A StorageClass: provisioner and parameters as written. */
struct StorageClass {
  std::string name;
  std::string provisioner;
  std::map<std::string, std::string> parameters;
};

/** A PersistentVolume, reduced to the node it lives on. */
struct Volume {
  std::string name;
  std::string driver;  // spec.csi.driver
  // The node the volume lives on: from spec.nodeAffinity (key topology.carina.storage.io/node or
  // kubernetes.io/hostname) or Carina's volumeAttributes carina.storage.io/node. "" = unknown.
  std::string node;
};

/** Supply of one disk group on a node (from its NodeStorageResource or the local inventory). */
struct GroupSupply {
  std::string name;
  core::DiskPolicy policy = core::DiskPolicy::Raw;
  std::vector<storage::DiskSpace> disks;  // RAW: the group's disks with their free segments
  uint64_t vg_size_bytes = 0;             // LVM: volume group size
  uint64_t vg_free_bytes = 0;             // LVM: volume group free
};

/** A node's supply before the promises (PVCs already sent to it) are subtracted. */
struct NodeSupply {
  std::string node;
  std::vector<GroupSupply> groups;
};

using NodeSupplyPtr = std::shared_ptr<const NodeSupply>;

/** Read access to the cluster state the extender scores against. Every method is called from
 *  the HTTP io threads, concurrently, and must be thread-safe and non-blocking (answer from a
 *  cache). */
class ClusterView {
public:
  virtual ~ClusterView() = default;

  /** The PVC @p ns/@p name, or nullopt when the view has not seen it (yet). */
  virtual std::optional<Claim> claim(const std::string& ns, const std::string& name) const = 0;
  /** The StorageClass @p name, or nullopt when unknown. */
  virtual std::optional<StorageClass> storageClass(const std::string& name) const = 0;
  /** The PV @p name, or nullopt when unknown. */
  virtual std::optional<Volume> volume(const std::string& name) const = 0;
  /** The supply of @p node, or nullptr when carina reports nothing for it (not a carina node,
   *  agent not running, or an unknown node name). The snapshot is immutable. */
  virtual NodeSupplyPtr nodeSupply(const std::string& node) const = 0;
  /** PVCs already promised to @p node: unbound, no volume yet, annotation
   *  volume.kubernetes.io/selected-node == @p node. Any StorageClass (the extender keeps only
   *  carina's). */
  virtual std::vector<Claim> promisedClaims(const std::string& node) const = 0;
};

/** An in-memory ClusterView for tests and standalone mode. Thread-safe (a shared mutex); the
 *  setters may be called while requests are served. */
class InMemoryClusterView final : public ClusterView {
public:
  /** Adds or replaces a PVC (keyed by ns/name); keeps the promise index up to date. */
  void upsertClaim(Claim claim);
  void removeClaim(const std::string& ns, const std::string& name);
  void upsertStorageClass(StorageClass sc);
  void removeStorageClass(const std::string& name);
  void upsertVolume(Volume volume);
  void removeVolume(const std::string& name);
  void setNodeSupply(NodeSupply supply);
  void removeNode(const std::string& node);

  // ClusterView
  std::optional<Claim> claim(const std::string& ns, const std::string& name) const override;
  std::optional<StorageClass> storageClass(const std::string& name) const override;
  std::optional<Volume> volume(const std::string& name) const override;
  NodeSupplyPtr nodeSupply(const std::string& node) const override;
  std::vector<Claim> promisedClaims(const std::string& node) const override;

private:
  void unindexLocked(const Claim& claim);

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Claim> claims_;                       // "ns/name"
  std::unordered_map<std::string, std::vector<std::string>> promised_;  // node -> claim keys
  std::unordered_map<std::string, StorageClass> classes_;
  std::unordered_map<std::string, Volume> volumes_;
  std::unordered_map<std::string, NodeSupplyPtr> nodes_;
};

/** The supply of the local node from the disk inventory (standalone mode): RAW groups carry
 *  their eligible disks' DiskSpace; LVM groups their total and free bytes as VG size and free. */
NodeSupply supplyFromInventory(const std::string& node, const storage::InventorySnapshot& inv);

}  // namespace carina::extender
