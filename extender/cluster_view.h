#pragma once

// What the scheduler extender needs to know about the cluster, as plain data behind one small
// interface. In cluster mode the lead adapts the Kubernetes watch caches to it; in standalone
// mode and in tests InMemoryClusterView (below) is used. Pure C++: no Kubernetes client, no JSON.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <absl/container/flat_hash_map.h>

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

/** What one evaluation needs of a node: its supply (nullptr = none) and the claims promised to
 *  it (see ClusterView::promisedClaims). */
struct NodeState {
  NodeSupplyPtr supply;
  std::vector<Claim> promised;
};

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
  /** The names of every node the view has a supply for (sorted). */
  virtual std::vector<std::string> nodeNames() const = 0;
  /** nodeSupply() and promisedClaims() of each of @p nodes (same order) into @p out (resized to
   *  nodes.size()): the per-request batch the extender uses. The default calls the two methods
   *  per node; implementations may answer under one lock. */
  virtual void nodeStates(std::span<const std::string> nodes, std::vector<NodeState>& out) const;
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
  std::vector<std::string> nodeNames() const override;
  void nodeStates(std::span<const std::string> nodes, std::vector<NodeState>& out) const override;

private:
  /** Per node: its supply and the keys of the claims promised to it (one lookup per node). */
  struct NodeEntry {
    NodeSupplyPtr supply;
    std::vector<std::string> promised;  // claim keys "ns/name"
  };

  void unindexLocked(const Claim& claim);
  void promisedLocked(const NodeEntry& entry, std::vector<Claim>& out) const;

  mutable std::shared_mutex mu_;
  // Flat maps: one probe, no modulo, keys inline (the per-node lookups of a 1,000-node request).
  absl::flat_hash_map<std::string, Claim> claims_;  // "ns/name"
  std::unordered_map<std::string, StorageClass> classes_;
  std::unordered_map<std::string, Volume> volumes_;
  absl::flat_hash_map<std::string, NodeEntry> nodes_;  // an entry lives while it has either
};

/** A what-if view for `carinactl score`: claims and StorageClasses given here (not in the cluster
 *  yet, or changed) win over the same ones of @p base; everything else (PVs, supplies, node names,
 *  the other claims) comes from @p base. Promises are recomputed with the overlay claims: an
 *  overlay claim replaces the base claim of the same ns/name. Not thread-safe to mutate; build it,
 *  then read. @p base must outlive it. */
class OverlayClusterView final : public ClusterView {
public:
  explicit OverlayClusterView(const ClusterView& base) : base_(base) {}

  void addClaim(Claim claim);
  void addStorageClass(StorageClass sc);

  std::optional<Claim> claim(const std::string& ns, const std::string& name) const override;
  std::optional<StorageClass> storageClass(const std::string& name) const override;
  std::optional<Volume> volume(const std::string& name) const override;
  NodeSupplyPtr nodeSupply(const std::string& node) const override;
  std::vector<Claim> promisedClaims(const std::string& node) const override;
  std::vector<std::string> nodeNames() const override;

private:
  const ClusterView& base_;
  std::map<std::string, Claim> claims_;  // "ns/name"
  std::map<std::string, StorageClass> classes_;
};

/** The supply of the local node from the disk inventory (standalone mode): RAW groups carry
 *  their eligible disks' DiskSpace; LVM groups their total and free bytes as VG size and free. */
NodeSupply supplyFromInventory(const std::string& node, const storage::InventorySnapshot& inv);

}  // namespace carina::extender
