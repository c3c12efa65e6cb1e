#pragma once

// Pure conversions between carina's own state (the disk inventory, volumes) and the Kubernetes
// objects of cluster mode (k8s-client/types.h), and from the watched objects to the plain data
// the scheduler extender works on (extender/cluster_view.h). No I/O, no clock: callers pass the
// time. Every function is thread-safe (no shared state).
//
// Contract with the CRDs in manifests/10-crds.yaml: the objects built here, once encoded by
// k8s::encodeObject(), validate against the CRD schemas (tests/unit/cluster/manifests_test.cc).

#include <chrono>
#include <string>
#include <string_view>

#include "agent/storage/disk_types.h"
#include "agent/storage/volume_backend.h"
#include "extender/cluster_view.h"
#include "k8s-client/types.h"

namespace carina::cluster {

/** Label on every LogicVolume naming the node that holds it (when the node name is a valid
 *  label value, i.e. at most 63 characters): an agent can watch only its own LogicVolumes with
 *  the label selector "carina.storage.io/node=<node>". */
inline constexpr std::string_view kNodeLabel = "carina.storage.io/node";
/** Carina's PV volumeAttributes key naming the volume's node (older PVs without nodeAffinity). */
inline constexpr std::string_view kVolumeNodeAttribute = "carina.storage.io/node";

/** @p t as Kubernetes writes metav1.Time: RFC 3339, UTC, whole seconds ("2026-11-23T04:25:33Z"). */
std::string formatRfc3339(std::chrono::system_clock::time_point t);

// --- NodeStorageResource -------------------------------------------------------------------

/** The NodeStorageResource of @p node (named after it; spec.nodeName = @p node) from the
 *  inventory: one status group per inventory group, in inventory order, with policy ("RAW" /
 *  "LVM"), total/free/largest-allocatable bytes and empty disks; RAW groups list their
 *  ELIGIBLE disks (the ones placement may use) with size, free segments, partition count and
 *  exclusive flag, exactly the DiskSpace the extender works on. Ineligible disks are not
 *  published (carinactl shows them with their reason). status.updateTime = @p update_time. */
k8s::NodeStorageResource buildNodeStorageResource(const std::string& node,
                                                  const storage::InventorySnapshot& inv,
                                                  std::string update_time_rfc3339);

/** True when @p a and @p b differ in content: spec.nodeName or any group (names, policy,
 *  bytes, disks, segments). Metadata, status.updateTime and raw are ignored, so the publisher
 *  writes only on a real change (plus its resync timer). */
bool nodeStorageResourceDiffers(const k8s::NodeStorageResource& a,
                                const k8s::NodeStorageResource& b);

/** The extender's supply from a published NodeStorageResource (cluster mode); the inverse of
 *  buildNodeStorageResource(): supplyFromNodeStorageResource(build(node, inv, t)) ==
 *  extender::supplyFromInventory(node, inv). The node is spec.nodeName, else metadata.name.
 *  Groups with a policy other than RAW/LVM (a newer agent) are skipped. */
extender::NodeSupply supplyFromNodeStorageResource(const k8s::NodeStorageResource& nsr);

// --- watched objects -> extender data ------------------------------------------------------

/** ns, name, storageClassName ("" when absent), requested bytes, spec.volumeName, the
 *  selected-node annotation, and the uid of the controlling ownerReference ("" when none; the
 *  Pod for a generic ephemeral volume's PVC). */
extender::Claim claimFromPvc(const k8s::PersistentVolumeClaim& pvc);
/** name, provisioner, parameters. */
extender::StorageClass storageClassFromK8s(const k8s::StorageClass& sc);
/** name, spec.csi.driver, node: the nodeAffinity node (topology.carina.storage.io/node or
 *  kubernetes.io/hostname), else volumeAttributes["carina.storage.io/node"], else "". */
extender::Volume volumeFromPv(const k8s::PersistentVolume& pv);

// --- LogicVolume ---------------------------------------------------------------------------

/** The LogicVolume recording a local volume: name = volume.id (the CSI volume id,
 *  "carina-<29 hex>", a valid object name); label kNodeLabel; spec nodeName, groupName,
 *  sizeBytes (= volume.size_bytes), exclusive, pvc namespace/name when known (both non-empty);
 *  status volumeID, device, phase "Created", currentSizeBytes. */
k8s::LogicVolume buildLogicVolume(const std::string& node, const storage::Volume& volume,
                                  const std::string& pvc_namespace = {},
                                  const std::string& pvc_name = {});

struct LogicVolumeDiff {
  /** spec or labels differ: update() (PUT of the main resource) needed. */
  bool spec = false;
  /** status differs: updateStatus() needed (a separate request: status subresource). */
  bool status = false;
  /** The existing object records the volume on ANOTHER node: do not overwrite it (report). */
  bool other_node = false;
  bool any() const { return spec || status; }
};

/** What must be written so that @p existing (from the API) matches @p desired (from
 *  buildLogicVolume()). A desired object without PVC (not known after a restart) never clears
 *  a PVC the existing object records. */
LogicVolumeDiff diffLogicVolume(const k8s::LogicVolume& existing, const k8s::LogicVolume& desired);

/** Copies the spec fields and kNodeLabel of @p desired into @p target (keeping its metadata,
 *  other labels and raw; keeping its PVC when @p desired has none). For updateWithRetry(). */
void applyLogicVolumeSpec(k8s::LogicVolume& target, const k8s::LogicVolume& desired);
/** Copies the status fields of @p desired into @p target. For updateWithRetry(..., true). */
void applyLogicVolumeStatus(k8s::LogicVolume& target, const k8s::LogicVolume& desired);

}  // namespace carina::cluster
