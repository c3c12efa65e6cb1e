// Pure conversions of cluster mode: inventory -> NodeStorageResource -> extender supply,
// PVC/PV/StorageClass -> extender data, volumes -> LogicVolume.

#include "agent/cluster/objects.h"

#include <chrono>
#include <string>

#include <catch2/catch.hpp>

#include "agent/core/constants.h"
#include "k8s-client/json_codec.h"
#include "tests/unit/cluster/objects_fixtures.h"

namespace {

using namespace carina;
using carina::cluster::test::sampleInventory;
using carina::cluster::test::sampleVolume;

TEST_CASE("formatRfc3339 writes UTC whole seconds", "[unit][cluster]") {
  auto t = std::chrono::system_clock::from_time_t(1'700'000'000) + std::chrono::milliseconds(999);
  CHECK(cluster::formatRfc3339(t) == "2023-11-14T22:13:20Z");
  CHECK(cluster::formatRfc3339(std::chrono::system_clock::from_time_t(0)) ==
        "1970-01-01T00:00:00Z");
}

TEST_CASE("buildNodeStorageResource publishes groups, eligible disks and segments",
          "[unit][cluster]") {
  storage::InventorySnapshot inv = sampleInventory();
  k8s::NodeStorageResource nsr =
      cluster::buildNodeStorageResource("node-1", inv, "2026-11-23T04:00:00Z");
  CHECK(nsr.metadata.name == "node-1");
  CHECK(nsr.node_name == "node-1");
  CHECK(nsr.update_time == "2026-11-23T04:00:00Z");
  REQUIRE(nsr.groups.size() == 2);

  const k8s::StorageGroup& raw = nsr.groups[0];
  CHECK(raw.name == "raw-ssd");
  CHECK(raw.policy == "RAW");
  CHECK(raw.total_bytes == 300 * kGiB);
  CHECK(raw.free_bytes == 250 * kGiB);
  CHECK(raw.largest_allocatable_bytes == 200 * kGiB);
  CHECK(raw.empty_disks == 1);
  CHECK(raw.volume_group.empty());
  // The ineligible disk (sdz) is not published.
  REQUIRE(raw.disks.size() == 2);
  CHECK(raw.disks[0].name == "sdb");
  CHECK(raw.disks[0].size_bytes == 100 * kGiB);
  CHECK(raw.disks[0].partitions == 2);
  CHECK_FALSE(raw.disks[0].exclusive);
  REQUIRE(raw.disks[0].free_segments.size() == 2);
  CHECK(raw.disks[0].free_segments[0] == k8s::FreeSegment{kMiB, 10 * kGiB});
  CHECK(raw.disks[0].free_segments[1] == k8s::FreeSegment{60 * kGiB, 40 * kGiB - kMiB});
  CHECK(raw.disks[1].name == "sdc");
  CHECK(raw.disks[1].partitions == 0);

  const k8s::StorageGroup& lvm = nsr.groups[1];
  CHECK(lvm.name == "vg-hdd");
  CHECK(lvm.policy == "LVM");
  CHECK(lvm.total_bytes == 500 * kGiB);
  CHECK(lvm.free_bytes == 123 * kGiB);
  CHECK(lvm.disks.empty());
}

TEST_CASE("NodeStorageResource round trip through JSON gives the inventory's supply",
          "[unit][cluster]") {
  storage::InventorySnapshot inv = sampleInventory();
  k8s::NodeStorageResource nsr =
      cluster::buildNodeStorageResource("node-1", inv, "2026-11-23T04:00:00Z");
  std::string json = k8s::encodeObject(nsr);
  auto decoded = k8s::decodeAs<k8s::NodeStorageResource>(json);
  REQUIRE(decoded.ok());
  CHECK(decoded->groups == nsr.groups);
  CHECK_FALSE(cluster::nodeStorageResourceDiffers(*decoded, nsr));

  extender::NodeSupply from_nsr = cluster::supplyFromNodeStorageResource(*decoded);
  extender::NodeSupply from_inv = extender::supplyFromInventory("node-1", inv);
  CHECK(from_nsr.node == from_inv.node);
  REQUIRE(from_nsr.groups.size() == from_inv.groups.size());
  for (std::size_t i = 0; i < from_inv.groups.size(); ++i) {
    INFO("group " << from_inv.groups[i].name);
    CHECK(from_nsr.groups[i].name == from_inv.groups[i].name);
    CHECK(from_nsr.groups[i].policy == from_inv.groups[i].policy);
    CHECK(from_nsr.groups[i].disks == from_inv.groups[i].disks);
    CHECK(from_nsr.groups[i].vg_size_bytes == from_inv.groups[i].vg_size_bytes);
    CHECK(from_nsr.groups[i].vg_free_bytes == from_inv.groups[i].vg_free_bytes);
  }
}

TEST_CASE("supplyFromNodeStorageResource: node from metadata, unknown policies skipped",
          "[unit][cluster]") {
  k8s::NodeStorageResource nsr;
  nsr.metadata.name = "n2";
  k8s::StorageGroup future;
  future.name = "future";
  future.policy = "ZFS";
  k8s::StorageGroup vg;
  vg.name = "vg";
  vg.policy = "LVM";
  vg.total_bytes = 10;
  vg.free_bytes = 4;
  nsr.groups.push_back(future);
  nsr.groups.push_back(vg);
  extender::NodeSupply s = cluster::supplyFromNodeStorageResource(nsr);
  CHECK(s.node == "n2");
  REQUIRE(s.groups.size() == 1);
  CHECK(s.groups[0].name == "vg");
  CHECK(s.groups[0].policy == core::DiskPolicy::Lvm);
  CHECK(s.groups[0].vg_size_bytes == 10);
  CHECK(s.groups[0].vg_free_bytes == 4);
}

TEST_CASE("nodeStorageResourceDiffers ignores metadata and update time only", "[unit][cluster]") {
  storage::InventorySnapshot inv = sampleInventory();
  auto a = cluster::buildNodeStorageResource("node-1", inv, "2026-11-23T04:00:00Z");
  auto b = cluster::buildNodeStorageResource("node-1", inv, "2026-11-23T05:00:00Z");
  b.metadata.resource_version = "42";
  b.metadata.uid = "u";
  b.raw = "{}";
  CHECK_FALSE(cluster::nodeStorageResourceDiffers(a, b));

  SECTION("a free segment changes") {
    inv.groups[0].disks[0].space.free[0].length -= kMiB;
    CHECK(cluster::nodeStorageResourceDiffers(
        a, cluster::buildNodeStorageResource("node-1", inv, "t")));
  }
  SECTION("the exclusive flag changes") {
    inv.groups[0].disks[1].space.exclusive = true;
    CHECK(cluster::nodeStorageResourceDiffers(
        a, cluster::buildNodeStorageResource("node-1", inv, "t")));
  }
  SECTION("LVM free changes") {
    inv.groups[1].free_bytes -= 1;
    CHECK(cluster::nodeStorageResourceDiffers(
        a, cluster::buildNodeStorageResource("node-1", inv, "t")));
  }
  SECTION("a group disappears") {
    inv.groups.pop_back();
    CHECK(cluster::nodeStorageResourceDiffers(
        a, cluster::buildNodeStorageResource("node-1", inv, "t")));
  }
  SECTION("another node") {
    CHECK(cluster::nodeStorageResourceDiffers(
        a, cluster::buildNodeStorageResource("node-2", inv, "2026-11-23T04:00:00Z")));
  }
}

TEST_CASE("empty inventory gives an NSR without groups", "[unit][cluster]") {
  auto nsr = cluster::buildNodeStorageResource("n", {}, "2026-11-23T04:00:00Z");
  CHECK(nsr.groups.empty());
  auto decoded = k8s::decodeAs<k8s::NodeStorageResource>(k8s::encodeObject(nsr));
  REQUIRE(decoded.ok());
  CHECK(decoded->groups.empty());
  CHECK(cluster::supplyFromNodeStorageResource(*decoded).groups.empty());
}

TEST_CASE("claimFromPvc: fields, selected node and controlling owner", "[unit][cluster]") {
  const char* json = R"({
    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
    "metadata": {
      "name": "web-0-data", "namespace": "shop", "uid": "pvc-uid",
      "annotations": {"volume.kubernetes.io/selected-node": "node-3"},
      "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "not-controller"},
        {"apiVersion": "v1", "kind": "Pod", "name": "web-0", "uid": "pod-uid",
         "controller": true, "blockOwnerDeletion": true}
      ]
    },
    "spec": {"storageClassName": "carina-raw-shared", "accessModes": ["ReadWriteOnce"],
             "resources": {"requests": {"storage": "1536Mi"}}}
  })";
  auto pvc = k8s::decodeAs<k8s::PersistentVolumeClaim>(json);
  REQUIRE(pvc.ok());
  extender::Claim c = cluster::claimFromPvc(*pvc);
  CHECK(c.ns == "shop");
  CHECK(c.name == "web-0-data");
  CHECK(c.storage_class == "carina-raw-shared");
  CHECK(c.request_bytes == 1536 * kMiB);
  CHECK(c.volume_name.empty());
  CHECK_FALSE(c.bound());
  CHECK(c.selected_node == "node-3");
  CHECK(c.owner_uid == "pod-uid");

  SECTION("bound, no class, no owner") {
    k8s::PersistentVolumeClaim p;
    p.metadata.namespace_ = "default";
    p.metadata.name = "d";
    p.volume_name = "pvc-123";
    p.metadata.owner_references.push_back({"v1", "Pod", "p", "u", false, false});
    extender::Claim b = cluster::claimFromPvc(p);
    CHECK(b.storage_class.empty());
    CHECK(b.bound());
    CHECK(b.owner_uid.empty());
    CHECK(b.selected_node.empty());
  }
}

TEST_CASE("storageClassFromK8s and volumeFromPv", "[unit][cluster]") {
  k8s::StorageClass sc;
  sc.metadata.name = "carina-lvm";
  sc.provisioner = std::string(kDriverName);
  sc.parameters = {{"carina.storage.io/disk-group-name", "vg-hdd"}};
  extender::StorageClass esc = cluster::storageClassFromK8s(sc);
  CHECK(esc.name == "carina-lvm");
  CHECK(esc.provisioner == "carina.storage.io");
  CHECK(esc.parameters == sc.parameters);

  SECTION("node from nodeAffinity (decoded)") {
    const char* json = R"({"metadata": {"name": "pvc-1"}, "spec": {
      "csi": {"driver": "carina.storage.io", "volumeHandle": "carina-abc",
              "volumeAttributes": {"carina.storage.io/node": "stale"}},
      "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "topology.carina.storage.io/node", "operator": "In", "values": ["node-7"]}]}]}}}})";
    auto pv = k8s::decodeAs<k8s::PersistentVolume>(json);
    REQUIRE(pv.ok());
    extender::Volume v = cluster::volumeFromPv(*pv);
    CHECK(v.name == "pvc-1");
    CHECK(v.driver == "carina.storage.io");
    CHECK(v.node == "node-7");
  }
  SECTION("node from Carina's volumeAttributes") {
    k8s::PersistentVolume pv;
    pv.metadata.name = "pvc-2";
    pv.csi_driver = "carina.storage.io";
    pv.volume_attributes = {{"carina.storage.io/node", "node-8"}};
    CHECK(cluster::volumeFromPv(pv).node == "node-8");
  }
  SECTION("no node") {
    k8s::PersistentVolume pv;
    pv.metadata.name = "nfs";
    pv.csi_driver = "nfs.csi.k8s.io";
    extender::Volume v = cluster::volumeFromPv(pv);
    CHECK(v.node.empty());
    CHECK(v.driver == "nfs.csi.k8s.io");
  }
}

TEST_CASE("buildLogicVolume records the volume", "[unit][cluster]") {
  storage::Volume vol = sampleVolume();
  k8s::LogicVolume lv = cluster::buildLogicVolume("node-1", vol, "shop", "web-0-data");
  CHECK(lv.metadata.name == vol.id);
  CHECK(lv.metadata.namespace_.empty());
  CHECK(lv.metadata.labels.at("carina.storage.io/node") == "node-1");
  CHECK(lv.node_name == "node-1");
  CHECK(lv.group_name == "raw-ssd");
  CHECK(lv.size_bytes == 10 * kGiB);
  CHECK_FALSE(lv.exclusive);
  CHECK(lv.pvc_namespace == "shop");
  CHECK(lv.pvc_name == "web-0-data");
  CHECK(lv.volume_id == vol.id);
  CHECK(lv.device == "/dev/sdb3");
  CHECK(lv.phase == "Created");
  CHECK(lv.current_bytes == 10 * kGiB);

  auto decoded = k8s::decodeAs<k8s::LogicVolume>(k8s::encodeObject(lv));
  REQUIRE(decoded.ok());
  CHECK_FALSE(cluster::diffLogicVolume(*decoded, lv).any());

  SECTION("PVC only when both parts are known") {
    auto no_pvc = cluster::buildLogicVolume("node-1", vol, "", "web-0-data");
    CHECK(no_pvc.pvc_name.empty());
    CHECK(no_pvc.pvc_namespace.empty());
  }
  SECTION("no label for node names longer than a label value") {
    std::string long_node(70, 'a');
    auto l = cluster::buildLogicVolume(long_node, vol);
    CHECK(l.metadata.labels.empty());
    CHECK(l.node_name == long_node);
  }
}

TEST_CASE("diffLogicVolume and apply", "[unit][cluster]") {
  storage::Volume vol = sampleVolume();
  k8s::LogicVolume desired = cluster::buildLogicVolume("node-1", vol, "shop", "web-0-data");
  k8s::LogicVolume existing = desired;
  existing.metadata.resource_version = "7";
  existing.metadata.labels["team"] = "a";
  CHECK_FALSE(cluster::diffLogicVolume(existing, desired).any());

  SECTION("expanded: spec and status") {
    vol.size_bytes = 20 * kGiB;
    desired = cluster::buildLogicVolume("node-1", vol, "shop", "web-0-data");
    auto d = cluster::diffLogicVolume(existing, desired);
    CHECK(d.spec);
    CHECK(d.status);
    CHECK_FALSE(d.other_node);
    cluster::applyLogicVolumeSpec(existing, desired);
    cluster::applyLogicVolumeStatus(existing, desired);
    CHECK_FALSE(cluster::diffLogicVolume(existing, desired).any());
    CHECK(existing.metadata.labels.at("team") == "a");
    CHECK(existing.metadata.resource_version == "7");
  }
  SECTION("status only: a failed phase is repaired") {
    existing.phase = "Failed";
    existing.message = "boom";
    auto d = cluster::diffLogicVolume(existing, desired);
    CHECK_FALSE(d.spec);
    CHECK(d.status);
    cluster::applyLogicVolumeStatus(existing, desired);
    CHECK(existing.phase == "Created");
    CHECK(existing.message.empty());
  }
  SECTION("unknown PVC (after a restart) never clears the recorded one") {
    auto anonymous = cluster::buildLogicVolume("node-1", vol);
    CHECK_FALSE(cluster::diffLogicVolume(existing, anonymous).any());
    cluster::applyLogicVolumeSpec(existing, anonymous);
    CHECK(existing.pvc_name == "web-0-data");
    CHECK(existing.pvc_namespace == "shop");
  }
  SECTION("PVC learned later") {
    existing.pvc_name.clear();
    existing.pvc_namespace.clear();
    CHECK(cluster::diffLogicVolume(existing, desired).spec);
  }
  SECTION("missing node label") {
    existing.metadata.labels.erase("carina.storage.io/node");
    CHECK(cluster::diffLogicVolume(existing, desired).spec);
    cluster::applyLogicVolumeSpec(existing, desired);
    CHECK(existing.metadata.labels.at("carina.storage.io/node") == "node-1");
  }
  SECTION("recorded on another node") {
    existing.node_name = "node-2";
    auto d = cluster::diffLogicVolume(existing, desired);
    CHECK(d.other_node);
    CHECK(d.spec);
  }
}

TEST_CASE("ownerReferences: decoded, kept from raw, written for new objects", "[unit][cluster]") {
  k8s::NodeStorageResource nsr;
  nsr.metadata.name = "node-1";
  nsr.node_name = "node-1";
  nsr.metadata.owner_references.push_back({"v1", "Node", "node-1", "node-uid", false, false});
  auto decoded = k8s::decodeAs<k8s::NodeStorageResource>(k8s::encodeObject(nsr));
  REQUIRE(decoded.ok());
  REQUIRE(decoded->metadata.owner_references.size() == 1);
  CHECK(decoded->metadata.owner_references[0] == nsr.metadata.owner_references[0]);

  // An existing object keeps the server's references as they were.
  decoded->metadata.owner_references.clear();
  auto again = k8s::decodeAs<k8s::NodeStorageResource>(k8s::encodeObject(*decoded));
  REQUIRE(again.ok());
  CHECK(again->metadata.owner_references.size() == 1);

  auto bad = k8s::decodeAs<k8s::Node>(R"({"metadata": {"name": "n", "ownerReferences": 3}})");
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
