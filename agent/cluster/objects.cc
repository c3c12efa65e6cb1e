#include "agent/cluster/objects.h"

#include <ctime>
#include <utility>

namespace carina::cluster {

namespace {

constexpr std::string_view kPhaseCreated = "Created";

std::string nodeLabelValue(const std::string& node) {
  // A label value has at most 63 characters; node names (DNS subdomains) may be longer.
  return node.size() <= 63 ? node : std::string();
}

bool samePvc(const k8s::LogicVolume& a, const k8s::LogicVolume& b) {
  return a.pvc_namespace == b.pvc_namespace && a.pvc_name == b.pvc_name;
}

std::string labelOf(const k8s::ObjectMeta& m) {
  auto it = m.labels.find(std::string(kNodeLabel));
  return it == m.labels.end() ? std::string() : it->second;
}

}  // namespace

std::string formatRfc3339(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

k8s::NodeStorageResource buildNodeStorageResource(const std::string& node,
                                                  const storage::InventorySnapshot& inv,
                                                  std::string update_time_rfc3339) {
  k8s::NodeStorageResource nsr;
  nsr.metadata.name = node;
  nsr.node_name = node;
  nsr.update_time = std::move(update_time_rfc3339);
  for (const storage::GroupSnapshot& g : inv.groups) {
    k8s::StorageGroup sg;
    sg.name = g.name;
    sg.policy = std::string(core::toString(g.policy));
    sg.total_bytes = g.total_bytes;
    sg.free_bytes = g.free_bytes;
    sg.largest_allocatable_bytes = g.largest_allocatable_bytes;
    sg.empty_disks = g.empty_disks;
    if (g.policy == core::DiskPolicy::Raw) {
      for (const storage::DiskSnapshot& d : g.disks) {
        if (!d.info.eligible) {
          continue;
        }
        k8s::StorageDisk sd;
        sd.name = d.space.name;
        sd.size_bytes = d.space.size_bytes;
        sd.partitions = d.space.partitions;
        sd.exclusive = d.space.exclusive;
        sd.free_segments.reserve(d.space.free.size());
        for (const storage::Segment& s : d.space.free) {
          sd.free_segments.push_back({s.start, s.length});
        }
        sg.disks.push_back(std::move(sd));
      }
    }
    nsr.groups.push_back(std::move(sg));
  }
  return nsr;
}

bool nodeStorageResourceDiffers(const k8s::NodeStorageResource& a,
                                const k8s::NodeStorageResource& b) {
  return a.node_name != b.node_name || a.groups != b.groups;
}

extender::NodeSupply supplyFromNodeStorageResource(const k8s::NodeStorageResource& nsr) {
  extender::NodeSupply out;
  out.node = nsr.node_name.empty() ? nsr.metadata.name : nsr.node_name;
  for (const k8s::StorageGroup& g : nsr.groups) {
    extender::GroupSupply gs;
    gs.name = g.name;
    if (g.policy == core::toString(core::DiskPolicy::Raw)) {
      gs.policy = core::DiskPolicy::Raw;
      for (const k8s::StorageDisk& d : g.disks) {
        storage::DiskSpace space;
        space.name = d.name;
        space.size_bytes = d.size_bytes;
        space.partitions = d.partitions;
        space.exclusive = d.exclusive;
        space.free.reserve(d.free_segments.size());
        for (const k8s::FreeSegment& s : d.free_segments) {
          space.free.push_back({s.start, s.length});
        }
        gs.disks.push_back(std::move(space));
      }
    } else if (g.policy == core::toString(core::DiskPolicy::Lvm)) {
      gs.policy = core::DiskPolicy::Lvm;
      gs.vg_size_bytes = g.total_bytes;
      gs.vg_free_bytes = g.free_bytes;
    } else {
      continue;
    }
    out.groups.push_back(std::move(gs));
  }
  return out;
}

extender::Claim claimFromPvc(const k8s::PersistentVolumeClaim& pvc) {
  extender::Claim c;
  c.ns = pvc.metadata.namespace_;
  c.name = pvc.metadata.name;
  c.storage_class = pvc.storage_class_name.value_or(std::string());
  c.request_bytes = pvc.requested_bytes;
  c.volume_name = pvc.volume_name;
  c.selected_node = pvc.selectedNode();
  for (const k8s::OwnerReference& ref : pvc.metadata.owner_references) {
    if (ref.controller) {
      c.owner_uid = ref.uid;
      break;
    }
  }
  return c;
}

extender::StorageClass storageClassFromK8s(const k8s::StorageClass& sc) {
  extender::StorageClass out;
  out.name = sc.metadata.name;
  out.provisioner = sc.provisioner;
  out.parameters = sc.parameters;
  return out;
}

extender::Volume volumeFromPv(const k8s::PersistentVolume& pv) {
  extender::Volume v;
  v.name = pv.metadata.name;
  v.driver = pv.csi_driver;
  v.node = pv.node_affinity_node;
  if (v.node.empty()) {
    auto it = pv.volume_attributes.find(std::string(kVolumeNodeAttribute));
    if (it != pv.volume_attributes.end()) {
      v.node = it->second;
    }
  }
  return v;
}

k8s::LogicVolume buildLogicVolume(const std::string& node, const storage::Volume& volume,
                                  const std::string& pvc_namespace, const std::string& pvc_name) {
  k8s::LogicVolume lv;
  lv.metadata.name = volume.id;
  if (std::string label = nodeLabelValue(node); !label.empty()) {
    lv.metadata.labels.emplace(std::string(kNodeLabel), std::move(label));
  }
  lv.node_name = node;
  lv.group_name = volume.group;
  lv.size_bytes = volume.size_bytes;
  lv.exclusive = volume.exclusive;
  if (!pvc_namespace.empty() && !pvc_name.empty()) {
    lv.pvc_namespace = pvc_namespace;
    lv.pvc_name = pvc_name;
  }
  lv.volume_id = volume.id;
  lv.device = volume.device;
  lv.phase = std::string(kPhaseCreated);
  lv.current_bytes = volume.size_bytes;
  return lv;
}

LogicVolumeDiff diffLogicVolume(const k8s::LogicVolume& existing, const k8s::LogicVolume& desired) {
  LogicVolumeDiff d;
  d.other_node = !existing.node_name.empty() && existing.node_name != desired.node_name;
  bool pvc_differs = !desired.pvc_name.empty() && !samePvc(existing, desired);
  d.spec = existing.node_name != desired.node_name || existing.group_name != desired.group_name ||
           existing.size_bytes != desired.size_bytes || existing.exclusive != desired.exclusive ||
           pvc_differs || labelOf(existing.metadata) != labelOf(desired.metadata);
  d.status = existing.volume_id != desired.volume_id || existing.device != desired.device ||
             existing.phase != desired.phase || existing.message != desired.message ||
             existing.current_bytes != desired.current_bytes;
  return d;
}

void applyLogicVolumeSpec(k8s::LogicVolume& target, const k8s::LogicVolume& desired) {
  target.node_name = desired.node_name;
  target.group_name = desired.group_name;
  target.size_bytes = desired.size_bytes;
  target.exclusive = desired.exclusive;
  if (!desired.pvc_name.empty()) {
    target.pvc_namespace = desired.pvc_namespace;
    target.pvc_name = desired.pvc_name;
  }
  std::string label = labelOf(desired.metadata);
  if (label.empty()) {
    target.metadata.labels.erase(std::string(kNodeLabel));
  } else {
    target.metadata.labels[std::string(kNodeLabel)] = label;
  }
}

void applyLogicVolumeStatus(k8s::LogicVolume& target, const k8s::LogicVolume& desired) {
  target.volume_id = desired.volume_id;
  target.device = desired.device;
  target.phase = desired.phase;
  target.message = desired.message;
  target.current_bytes = desired.current_bytes;
}

}  // namespace carina::cluster
