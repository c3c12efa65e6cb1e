// The CSI services over the real GPT partition engine on a loop disk: the whole path a volume
// takes in production (CreateVolume → partition, NodeStage → mkfs + mount, expansion of the
// partition online and of xfs on top, DeleteVolume → partition removed).

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "agent/core/constants.h"
#include "agent/os/linux/fdisk_partition_table.h"
#include "agent/os/linux/linux_mounter.h"
#include "agent/os/linux/spawn_command_runner.h"
#include "agent/storage/partition_engine.h"
#include "tests/support/loop_device.h"
#include "tests/unit/csi/csi_harness.h"

namespace carina::test {
namespace {

using grpc::StatusCode;

TEST_CASE("CSI over the partition engine on a loop disk: xfs volume lifecycle and growth",
          "[integration][csi][root]") {
  if (!requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(1 * kGiB);
  storage::PartitionEngine engine(os::makeFdiskPartitionTableFactory());
  storage::DiskInfo disk;
  disk.name = loop.name();
  disk.devnode = loop.devnode();
  disk.group = "raw";
  disk.policy = core::DiskPolicy::Raw;
  disk.size_bytes = 1 * kGiB;
  disk.eligible = true;
  REQUIRE(engine.setDisks({disk}).ok());

  os::LinuxMounter mounter;
  os::SpawnCommandRunner runner;
  CsiHarness h(engine, mounter, runner);
  struct Cleanup {
    std::string dir;
    ~Cleanup() { unmountBelow(dir); }
  } cleanup{h.kubeletDir()};

  // Capacity before.
  v1::GetCapacityResponse cap_before;
  REQUIRE(
      call(*h.controller, &v1::Controller::Stub::GetCapacity, v1::GetCapacityRequest(), &cap_before)
          .ok());
  CHECK(cap_before.available_capacity() > static_cast<int64_t>(900 * kMiB));

  const auto cap = mountCap("xfs");
  auto req = createRequest("pvc-engine", static_cast<int64_t>(300 * kMiB), cap);
  (*req.mutable_parameters())["carina.storage.io/disk-group-name"] = "raw";
  v1::CreateVolumeResponse created;
  REQUIRE(call(*h.controller, &v1::Controller::Stub::CreateVolume, req, &created).ok());
  const auto& vol = created.volume();
  const std::string id = vol.volume_id();
  const std::string device = vol.volume_context().at("carina.storage.io/device");
  CHECK(vol.capacity_bytes() >= static_cast<int64_t>(300 * kMiB));
  CHECK(device.rfind(loop.devnode(), 0) == 0);  // a partition of our loop disk
  // Idempotent by name.
  v1::CreateVolumeResponse again;
  REQUIRE(call(*h.controller, &v1::Controller::Stub::CreateVolume, req, &again).ok());
  CHECK(again.volume().volume_id() == id);

  const auto staging = h.stagingDir("engine");
  const auto target = h.podDir("pod-engine") + "/mnt";
  v1::NodeStageVolumeRequest sreq;
  sreq.set_volume_id(id);
  sreq.set_staging_target_path(staging);
  *sreq.mutable_volume_capability() = cap;
  *sreq.mutable_volume_context() = vol.volume_context();
  v1::NodeStageVolumeResponse sresp;
  REQUIRE(call(*h.node, &v1::Node::Stub::NodeStageVolume, sreq, &sresp).ok());
  v1::NodePublishVolumeRequest preq;
  preq.set_volume_id(id);
  preq.set_staging_target_path(staging);
  preq.set_target_path(target);
  *preq.mutable_volume_capability() = cap;
  v1::NodePublishVolumeResponse presp;
  REQUIRE(call(*h.node, &v1::Node::Stub::NodePublishVolume, preq, &presp).ok());
  { std::ofstream(target + "/data") << "on a partition"; }

  // Grow: the controller grows the partition online, the node grows xfs.
  v1::ControllerExpandVolumeRequest ereq;
  ereq.set_volume_id(id);
  ereq.mutable_capacity_range()->set_required_bytes(static_cast<int64_t>(400 * kMiB));
  v1::ControllerExpandVolumeResponse eresp;
  auto est = call(*h.controller, &v1::Controller::Stub::ControllerExpandVolume, ereq, &eresp);
  REQUIRE(est.ok());
  CHECK(eresp.capacity_bytes() >= static_cast<int64_t>(400 * kMiB));
  CHECK(eresp.node_expansion_required());
  v1::NodeExpandVolumeRequest nreq;
  nreq.set_volume_id(id);
  nreq.set_volume_path(target);
  nreq.mutable_capacity_range()->set_required_bytes(static_cast<int64_t>(400 * kMiB));
  v1::NodeExpandVolumeResponse nresp;
  REQUIRE(call(*h.node, &v1::Node::Stub::NodeExpandVolume, nreq, &nresp).ok());
  v1::NodeGetVolumeStatsRequest streq;
  streq.set_volume_id(id);
  streq.set_volume_path(target);
  v1::NodeGetVolumeStatsResponse stresp;
  REQUIRE(call(*h.node, &v1::Node::Stub::NodeGetVolumeStats, streq, &stresp).ok());
  CHECK(stresp.usage(0).total() > static_cast<int64_t>(330 * kMiB));

  // Delete is refused while published; then everything comes apart cleanly.
  v1::DeleteVolumeRequest dreq;
  dreq.set_volume_id(id);
  v1::DeleteVolumeResponse dresp;
  CHECK(call(*h.controller, &v1::Controller::Stub::DeleteVolume, dreq, &dresp).error_code() ==
        StatusCode::FAILED_PRECONDITION);
  v1::NodeUnpublishVolumeRequest ureq;
  ureq.set_volume_id(id);
  ureq.set_target_path(target);
  v1::NodeUnpublishVolumeResponse uresp;
  REQUIRE(call(*h.node, &v1::Node::Stub::NodeUnpublishVolume, ureq, &uresp).ok());
  v1::NodeUnstageVolumeRequest usreq;
  usreq.set_volume_id(id);
  usreq.set_staging_target_path(staging);
  v1::NodeUnstageVolumeResponse usresp;
  REQUIRE(call(*h.node, &v1::Node::Stub::NodeUnstageVolume, usreq, &usresp).ok());
  REQUIRE(call(*h.controller, &v1::Controller::Stub::DeleteVolume, dreq, &dresp).ok());
  REQUIRE(call(*h.controller, &v1::Controller::Stub::DeleteVolume, dreq, &dresp).ok());
  v1::ListVolumesResponse list;
  REQUIRE(call(*h.controller, &v1::Controller::Stub::ListVolumes, v1::ListVolumesRequest(), &list)
              .ok());
  CHECK(list.entries_size() == 0);
  CHECK_FALSE(std::filesystem::exists(device));
}

}  // namespace
}  // namespace carina::test
