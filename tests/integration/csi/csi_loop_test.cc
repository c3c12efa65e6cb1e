// The CSI services end to end: a real grpc::Server on a unix socket in a TempDir, called through
// the generated stubs; the node side runs the real mounter and command runner (mkfs, blkid,
// xfs_growfs, resize2fs) on loop devices handed out by FakeVolumeBackend.

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <set>

#include <catch2/catch.hpp>

#include "agent/core/constants.h"
#include "agent/os/linux/linux_mounter.h"
#include "agent/os/linux/spawn_command_runner.h"
#include "tests/fakes/fake_command_runner.h"
#include "tests/fakes/fake_mounter.h"
#include "tests/fakes/fake_volume_backend.h"
#include "tests/support/loop_device.h"
#include "tests/unit/csi/csi_harness.h"

namespace carina::test {
namespace {

using AccessMode = v1::VolumeCapability::AccessMode;
using grpc::StatusCode;

/** Real mounter and runner; volumes on loop devices. */
struct LoopFixture {
  LoopFixture() : backend({{"ssd", 100 * kGiB}}), h(backend, mounter, runner) {
    // Growing a volume grows its loop device: the backing file, then the loop's capacity.
    backend.setOnExpand([this](const storage::Volume& v) {
      for (auto* loop : loops) {
        if (loop->devnode() == v.device) {
          std::filesystem::resize_file(loop->backingFile(), v.size_bytes);
          run({"losetup", "-c", v.device});
        }
      }
    });
  }
  ~LoopFixture() {
    // Unmount whatever a failed test left below the kubelet dir before the loops go.
    unmountBelow(h.kubeletDir());
  }

  v1::Volume create(LoopDevice& loop, const std::string& name, const v1::VolumeCapability& cap,
                    uint64_t bytes) {
    loops.push_back(&loop);
    backend.pushDevice(loop.devnode());
    v1::CreateVolumeResponse resp;
    auto st = call(*h.controller, &v1::Controller::Stub::CreateVolume,
                   createRequest(name, static_cast<int64_t>(bytes), cap), &resp);
    REQUIRE(st.ok());
    return resp.volume();
  }
  grpc::Status stage(const v1::Volume& vol, const std::string& staging,
                     const v1::VolumeCapability& cap) {
    v1::NodeStageVolumeRequest req;
    req.set_volume_id(vol.volume_id());
    req.set_staging_target_path(staging);
    *req.mutable_volume_capability() = cap;
    *req.mutable_volume_context() = vol.volume_context();
    v1::NodeStageVolumeResponse resp;
    return call(*h.node, &v1::Node::Stub::NodeStageVolume, req, &resp);
  }
  grpc::Status unstage(const std::string& id, const std::string& staging) {
    v1::NodeUnstageVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(staging);
    v1::NodeUnstageVolumeResponse resp;
    return call(*h.node, &v1::Node::Stub::NodeUnstageVolume, req, &resp);
  }
  grpc::Status publish(const v1::Volume& vol, const std::string& staging, const std::string& target,
                       const v1::VolumeCapability& cap, bool readonly = false) {
    v1::NodePublishVolumeRequest req;
    req.set_volume_id(vol.volume_id());
    req.set_staging_target_path(staging);
    req.set_target_path(target);
    req.set_readonly(readonly);
    *req.mutable_volume_capability() = cap;
    *req.mutable_volume_context() = vol.volume_context();
    v1::NodePublishVolumeResponse resp;
    return call(*h.node, &v1::Node::Stub::NodePublishVolume, req, &resp);
  }
  grpc::Status unpublish(const std::string& id, const std::string& target) {
    v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_target_path(target);
    v1::NodeUnpublishVolumeResponse resp;
    return call(*h.node, &v1::Node::Stub::NodeUnpublishVolume, req, &resp);
  }
  grpc::Status expand(const std::string& id, const std::string& path, uint64_t bytes,
                      v1::NodeExpandVolumeResponse* resp) {
    v1::NodeExpandVolumeRequest req;
    req.set_volume_id(id);
    req.set_volume_path(path);
    req.mutable_capacity_range()->set_required_bytes(static_cast<int64_t>(bytes));
    return call(*h.node, &v1::Node::Stub::NodeExpandVolume, req, resp);
  }
  uint64_t fsBytes(const std::string& id, const std::string& path) {
    v1::NodeGetVolumeStatsRequest req;
    req.set_volume_id(id);
    req.set_volume_path(path);
    v1::NodeGetVolumeStatsResponse resp;
    auto st = call(*h.node, &v1::Node::Stub::NodeGetVolumeStats, req, &resp);
    REQUIRE(st.ok());
    REQUIRE(resp.usage_size() >= 1);
    CHECK_FALSE(resp.volume_condition().abnormal());
    return static_cast<uint64_t>(resp.usage(0).total());
  }
  grpc::Status deleteVolume(const std::string& id) {
    v1::DeleteVolumeRequest req;
    req.set_volume_id(id);
    v1::DeleteVolumeResponse resp;
    return call(*h.controller, &v1::Controller::Stub::DeleteVolume, req, &resp);
  }

  FakeVolumeBackend backend;
  os::LinuxMounter mounter;
  os::SpawnCommandRunner runner;
  std::vector<LoopDevice*> loops;
  CsiHarness h;
};

std::string blkidType(const std::string& dev) {
  auto r = run({"blkid", "-p", "-o", "value", "-s", "TYPE", dev});
  std::string out = r.output;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/** stage → publish → write/read → unpublish → unstage, with idempotent repeats. */
void filesystemLifecycle(LoopFixture& f, LoopDevice& loop, const std::string& fs, uint64_t bytes) {
  const auto cap = mountCap(fs);
  auto vol = f.create(loop, "pvc-" + fs, cap, bytes);
  const auto id = vol.volume_id();
  const auto staging = f.h.stagingDir(fs);
  const auto target = f.h.podDir("pod-" + fs) + "/mnt";
  REQUIRE(f.stage(vol, staging, cap).ok());
  CHECK(blkidType(loop.devnode()) == fs);
  REQUIRE(f.stage(vol, staging, cap).ok());  // idempotent
  {
    // The formatted volume now shows its fs type: a repeat CreateVolume asking for the other
    // one is refused, the same one still succeeds.
    v1::CreateVolumeResponse again;
    const auto size = static_cast<int64_t>(bytes);
    CHECK(call(*f.h.controller, &v1::Controller::Stub::CreateVolume,
               createRequest("pvc-" + fs, size, cap), &again)
              .ok());
    const std::string other = fs == "xfs" ? "ext4" : "xfs";
    auto st = call(*f.h.controller, &v1::Controller::Stub::CreateVolume,
                   createRequest("pvc-" + fs, size, mountCap(other)), &again);
    CHECK(st.error_code() == StatusCode::ALREADY_EXISTS);
  }
  REQUIRE(f.publish(vol, staging, target, cap).ok());
  REQUIRE(f.publish(vol, staging, target, cap).ok());  // idempotent
  { std::ofstream(target + "/hello.txt") << "carina " << fs; }
  CHECK(readFile(staging + "/hello.txt") == "carina " + fs);
  CHECK(f.publish(vol, staging, target, cap, /*readonly=*/true).error_code() ==
        StatusCode::ALREADY_EXISTS);
  // A second, read-only publish elsewhere (SINGLE_NODE_WRITER allows more pods on the node).
  const auto ro_target = f.h.podDir("pod-ro-" + fs) + "/mnt";
  REQUIRE(f.publish(vol, staging, ro_target, cap, /*readonly=*/true).ok());
  CHECK(readFile(ro_target + "/hello.txt") == "carina " + fs);
  CHECK_FALSE(std::ofstream(ro_target + "/nope").good());
  CHECK(f.fsBytes(id, target) > 0);
  // Still published: neither unstage nor delete may proceed.
  CHECK(f.unstage(id, staging).error_code() == StatusCode::FAILED_PRECONDITION);
  CHECK(f.deleteVolume(id).error_code() == StatusCode::FAILED_PRECONDITION);
  REQUIRE(f.unpublish(id, ro_target).ok());
  REQUIRE(f.unpublish(id, target).ok());
  REQUIRE(f.unpublish(id, target).ok());  // idempotent
  CHECK_FALSE(std::filesystem::exists(target));
  REQUIRE(f.unstage(id, staging).ok());
  REQUIRE(f.unstage(id, staging).ok());  // idempotent
  CHECK_FALSE(f.mounter.findMount(staging)->has_value());
  // Staging again mounts the existing filesystem without formatting it.
  REQUIRE(f.stage(vol, staging, cap).ok());
  CHECK(readFile(staging + "/hello.txt") == "carina " + fs);
  REQUIRE(f.unstage(id, staging).ok());
  REQUIRE(f.deleteVolume(id).ok());
  REQUIRE(f.deleteVolume(id).ok());
}

TEST_CASE("CSI on a loop device: ext4 lifecycle", "[integration][csi][root]") {
  if (!requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(128 * kMiB);
  LoopFixture f;
  filesystemLifecycle(f, loop, "ext4", 128 * kMiB);
}

TEST_CASE("CSI on a loop device: xfs lifecycle", "[integration][csi][root]") {
  if (!requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(320 * kMiB);
  LoopFixture f;
  filesystemLifecycle(f, loop, "xfs", 320 * kMiB);
}

TEST_CASE("CSI on a loop device: block volume lifecycle", "[integration][csi][root]") {
  if (!requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(32 * kMiB);
  LoopFixture f;
  const auto cap = blockCap();
  auto vol = f.create(loop, "pvc-block", cap, 32 * kMiB);
  const auto id = vol.volume_id();
  const auto staging = f.h.stagingDir("block");
  const auto target = f.h.podDir("pod-block") + "/dev";
  REQUIRE(f.stage(vol, staging, cap).ok());
  REQUIRE(f.stage(vol, staging, cap).ok());
  REQUIRE(f.publish(vol, staging, target, cap).ok());
  REQUIRE(f.publish(vol, staging, target, cap).ok());
  CHECK(std::filesystem::is_block_file(target));  // the bound device node
  // Write through the published node; read it back from the loop's backing file.
  const std::string pattern = "carina-block-volume-0123456789";
  {
    const int fd = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, pattern.data(), pattern.size(), 4096) ==
            static_cast<ssize_t>(pattern.size()));
    REQUIRE(::fsync(fd) == 0);
    ::close(fd);
  }
  CHECK(loop.readBytes(4096, pattern.size()) == pattern);
  CHECK(blkidType(loop.devnode()).empty());  // never formatted
  CHECK(f.fsBytes(id, target) == 32 * kMiB);
  CHECK(f.unstage(id, staging).error_code() == StatusCode::FAILED_PRECONDITION);
  REQUIRE(f.unpublish(id, target).ok());
  REQUIRE(f.unpublish(id, target).ok());
  CHECK_FALSE(std::filesystem::exists(target));
  REQUIRE(f.unstage(id, staging).ok());
  REQUIRE(f.unstage(id, staging).ok());
  CHECK_FALSE(std::filesystem::exists(staging + "/block"));
  REQUIRE(f.deleteVolume(id).ok());
}

TEST_CASE("CSI on a loop device: xfs grows online", "[integration][csi][root]") {
  if (!requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(320 * kMiB);
  LoopFixture f;
  const auto cap = mountCap("xfs");
  auto vol = f.create(loop, "pvc-xfs-grow", cap, 320 * kMiB);
  const auto id = vol.volume_id();
  const auto staging = f.h.stagingDir("xg");
  const auto target = f.h.podDir("pod-xg") + "/mnt";
  REQUIRE(f.stage(vol, staging, cap).ok());
  REQUIRE(f.publish(vol, staging, target, cap).ok());
  { std::ofstream(target + "/keep") << "data"; }
  const uint64_t before = f.fsBytes(id, target);
  v1::NodeExpandVolumeResponse resp;
  REQUIRE(f.expand(id, target, 480 * kMiB, &resp).ok());
  CHECK(resp.capacity_bytes() == static_cast<int64_t>(480 * kMiB));
  const uint64_t after = f.fsBytes(id, target);
  CHECK(after > before + 100 * kMiB);
  CHECK(readFile(target + "/keep") == "data");
  // Already large enough: OK, nothing changes.
  REQUIRE(f.expand(id, target, 400 * kMiB, &resp).ok());
  CHECK(f.fsBytes(id, target) == after);
  REQUIRE(f.unpublish(id, target).ok());
  REQUIRE(f.unstage(id, staging).ok());
}

TEST_CASE("CSI on a loop device: online ext4 growth gives a clear answer",
          "[integration][csi][root]") {
  if (!requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(64 * kMiB);
  LoopFixture f;
  const auto cap = mountCap("ext4");
  auto vol = f.create(loop, "pvc-ext4-grow", cap, 64 * kMiB);
  const auto id = vol.volume_id();
  const auto staging = f.h.stagingDir("eg");
  REQUIRE(f.stage(vol, staging, cap).ok());
  v1::NodeExpandVolumeResponse resp;
  auto st = f.expand(id, staging, 96 * kMiB, &resp);
  // These machines lack CAP_SYS_RESOURCE, so the kernel refuses EXT4_IOC_RESIZE_FS; a node
  // with the capability grows the filesystem.
  if (st.ok()) {
    CHECK(f.fsBytes(id, staging) > 64 * kMiB);
  } else {
    CHECK(st.error_code() == StatusCode::FAILED_PRECONDITION);
    CHECK(st.error_message().find("CAP_SYS_RESOURCE") != std::string::npos);
    // The device itself did grow; the data is intact and still mounted.
    CHECK(f.mounter.blockDeviceSize(loop.devnode()).value() == 96 * kMiB);
    CHECK(f.mounter.findMount(staging)->has_value());
  }
  REQUIRE(f.unstage(id, staging).ok());
}

TEST_CASE("CSI on a loop device: a foreign filesystem is never reformatted",
          "[integration][csi][root]") {
  if (!requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(64 * kMiB);
  REQUIRE(run({"mkfs.ext4", "-q", "-F", loop.devnode()}).exit_code == 0);
  LoopFixture f;
  auto vol = f.create(loop, "pvc-foreign", mountCap("xfs"), 300 * kMiB);
  const auto staging = f.h.stagingDir("foreign");
  auto st = f.stage(vol, staging, mountCap("xfs"));
  CHECK(st.error_code() == StatusCode::FAILED_PRECONDITION);
  CHECK(st.error_message().find("ext4") != std::string::npos);
  CHECK(blkidType(loop.devnode()) == "ext4");
  CHECK_FALSE(f.mounter.findMount(staging)->has_value());
}

TEST_CASE("CSI: 10 clients CreateVolume the same name at once → exactly one volume",
          "[integration][csi]") {
  FakeVolumeBackend backend({{"ssd", 100 * kGiB}});
  FakeMounter mounter;
  FakeCommandRunner runner;
  CsiHarness h(backend, mounter, runner);
  std::vector<std::future<std::string>> clients;
  std::promise<void> go;
  auto start = go.get_future().share();
  for (int i = 0; i < 10; ++i) {
    clients.push_back(std::async(std::launch::async, [&h, start]() -> std::string {
      auto channel =
          grpc::CreateChannel("unix://" + h.socketPath(), grpc::InsecureChannelCredentials());
      auto stub = v1::Controller::NewStub(channel);
      start.wait();
      for (int attempt = 0; attempt < 1000; ++attempt) {
        v1::CreateVolumeResponse resp;
        auto st = call(*stub, &v1::Controller::Stub::CreateVolume,
                       createRequest("pvc-race", 64 * static_cast<int64_t>(kMiB)), &resp);
        if (st.ok()) {
          return resp.volume().volume_id();
        }
        if (st.error_code() != StatusCode::ABORTED) {
          return "error: " + st.error_message();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the CO's backoff
      }
      return "error: still ABORTED";
    }));
  }
  go.set_value();
  std::set<std::string> ids;
  for (auto& c : clients) {
    ids.insert(c.get());
  }
  REQUIRE(ids.size() == 1);
  CHECK(ids.begin()->rfind("carina-", 0) == 0);
  CHECK(backend.listVolumes().size() == 1);
}

TEST_CASE("CSI conformance checklist for the capabilities we advertise",
          "[integration][csi][root]") {
  if (!requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(64 * kMiB);
  LoopFixture f;
  auto& h = f.h;

  // GetPluginInfo: name in domain notation ≤ 63 chars; vendor_version REQUIRED.
  v1::GetPluginInfoResponse info;
  REQUIRE(call(*h.identity, &v1::Identity::Stub::GetPluginInfo, v1::GetPluginInfoRequest(), &info)
              .ok());
  CHECK(info.name() == "carina.storage.io");
  CHECK(info.name().size() <= 63);
  CHECK(std::isalnum(static_cast<unsigned char>(info.name().front())));
  CHECK(std::isalnum(static_cast<unsigned char>(info.name().back())));
  CHECK_FALSE(info.vendor_version().empty());

  // Plugin capabilities and what they imply.
  v1::GetPluginCapabilitiesResponse pcaps;
  REQUIRE(call(*h.identity, &v1::Identity::Stub::GetPluginCapabilities,
               v1::GetPluginCapabilitiesRequest(), &pcaps)
              .ok());
  std::set<int> services;
  bool online = false;
  for (const auto& c : pcaps.capabilities()) {
    if (c.has_service()) {
      services.insert(c.service().type());
    }
    online |= c.volume_expansion().type() == v1::PluginCapability::VolumeExpansion::ONLINE;
  }
  REQUIRE(services.count(v1::PluginCapability::Service::CONTROLLER_SERVICE) == 1);
  v1::ControllerGetCapabilitiesResponse ccaps;
  REQUIRE(call(*h.controller, &v1::Controller::Stub::ControllerGetCapabilities,
               v1::ControllerGetCapabilitiesRequest(), &ccaps)
              .ok());
  std::set<int> crpcs;
  for (const auto& c : ccaps.capabilities()) {
    crpcs.insert(c.rpc().type());
  }
  v1::NodeGetCapabilitiesResponse ncaps;
  REQUIRE(
      call(*h.node, &v1::Node::Stub::NodeGetCapabilities, v1::NodeGetCapabilitiesRequest(), &ncaps)
          .ok());
  std::set<int> nrpcs;
  for (const auto& c : ncaps.capabilities()) {
    nrpcs.insert(c.rpc().type());
  }
  // ONLINE expansion requires EXPAND_VOLUME on the controller and/or the node.
  CHECK(online);
  CHECK((crpcs.count(v1::ControllerServiceCapability::RPC::EXPAND_VOLUME) == 1 ||
         nrpcs.count(v1::NodeServiceCapability::RPC::EXPAND_VOLUME) == 1));
  // No attach step for local volumes.
  CHECK(crpcs.count(v1::ControllerServiceCapability::RPC::PUBLISH_UNPUBLISH_VOLUME) == 0);
  // VOLUME_ACCESSIBILITY_CONSTRAINTS ⇔ topology in NodeGetInfo and in created volumes.
  REQUIRE(services.count(v1::PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS) == 1);
  v1::NodeGetInfoResponse ninfo;
  REQUIRE(call(*h.node, &v1::Node::Stub::NodeGetInfo, v1::NodeGetInfoRequest(), &ninfo).ok());
  CHECK_FALSE(ninfo.node_id().empty());
  CHECK(ninfo.node_id().size() <= 256);
  CHECK(ninfo.accessible_topology().segments().count(std::string(kTopologyKey)) == 1);

  // Every advertised capability's RPC is implemented: an empty request gets INVALID_ARGUMENT
  // (missing required fields), never UNIMPLEMENTED.
  {
    v1::CreateVolumeResponse r;
    CHECK(call(*h.controller, &v1::Controller::Stub::CreateVolume, v1::CreateVolumeRequest(), &r)
              .error_code() == StatusCode::INVALID_ARGUMENT);
    v1::DeleteVolumeResponse d;
    CHECK(call(*h.controller, &v1::Controller::Stub::DeleteVolume, v1::DeleteVolumeRequest(), &d)
              .error_code() == StatusCode::INVALID_ARGUMENT);
    v1::ValidateVolumeCapabilitiesResponse v;
    CHECK(call(*h.controller, &v1::Controller::Stub::ValidateVolumeCapabilities,
               v1::ValidateVolumeCapabilitiesRequest(), &v)
              .error_code() == StatusCode::INVALID_ARGUMENT);
    v1::ControllerExpandVolumeResponse e;
    CHECK(call(*h.controller, &v1::Controller::Stub::ControllerExpandVolume,
               v1::ControllerExpandVolumeRequest(), &e)
              .error_code() == StatusCode::INVALID_ARGUMENT);
    v1::ListVolumesResponse l;
    CHECK(
        call(*h.controller, &v1::Controller::Stub::ListVolumes, v1::ListVolumesRequest(), &l).ok());
    v1::GetCapacityResponse g;
    CHECK(
        call(*h.controller, &v1::Controller::Stub::GetCapacity, v1::GetCapacityRequest(), &g).ok());
    CHECK(g.available_capacity() >= 0);
    v1::NodeStageVolumeResponse ns;
    CHECK(call(*h.node, &v1::Node::Stub::NodeStageVolume, v1::NodeStageVolumeRequest(), &ns)
              .error_code() == StatusCode::INVALID_ARGUMENT);
    v1::NodeUnstageVolumeResponse nu;
    CHECK(call(*h.node, &v1::Node::Stub::NodeUnstageVolume, v1::NodeUnstageVolumeRequest(), &nu)
              .error_code() == StatusCode::INVALID_ARGUMENT);
    v1::NodePublishVolumeResponse np;
    CHECK(call(*h.node, &v1::Node::Stub::NodePublishVolume, v1::NodePublishVolumeRequest(), &np)
              .error_code() == StatusCode::INVALID_ARGUMENT);
    v1::NodeUnpublishVolumeResponse nup;
    CHECK(
        call(*h.node, &v1::Node::Stub::NodeUnpublishVolume, v1::NodeUnpublishVolumeRequest(), &nup)
            .error_code() == StatusCode::INVALID_ARGUMENT);
    v1::NodeGetVolumeStatsResponse st;
    CHECK(call(*h.node, &v1::Node::Stub::NodeGetVolumeStats, v1::NodeGetVolumeStatsRequest(), &st)
              .error_code() == StatusCode::INVALID_ARGUMENT);
    v1::NodeExpandVolumeResponse ne;
    CHECK(call(*h.node, &v1::Node::Stub::NodeExpandVolume, v1::NodeExpandVolumeRequest(), &ne)
              .error_code() == StatusCode::INVALID_ARGUMENT);
    // Not advertised: UNIMPLEMENTED, which the CO must not retry.
    v1::ControllerPublishVolumeResponse cp;
    CHECK(call(*h.controller, &v1::Controller::Stub::ControllerPublishVolume,
               v1::ControllerPublishVolumeRequest(), &cp)
              .error_code() == StatusCode::UNIMPLEMENTED);
  }

  // CreateVolume: capacity ≥ required_bytes, honours limit_bytes, idempotent, topology set.
  const auto cap = mountCap("ext4");
  auto vol = f.create(loop, "pvc-conformance", cap, 60 * kMiB + 1);
  CHECK(vol.capacity_bytes() >= static_cast<int64_t>(60 * kMiB + 1));
  REQUIRE(vol.accessible_topology_size() == 1);
  CHECK(vol.accessible_topology(0).segments().at(std::string(kTopologyKey)) == ninfo.node_id());
  {
    v1::CreateVolumeResponse again;
    auto req = createRequest("pvc-conformance", 60 * kMiB + 1, cap);
    req.mutable_capacity_range()->set_limit_bytes(static_cast<int64_t>(64 * kMiB));
    REQUIRE(call(*h.controller, &v1::Controller::Stub::CreateVolume, req, &again).ok());
    CHECK(again.volume().volume_id() == vol.volume_id());
    CHECK(again.volume().capacity_bytes() <= static_cast<int64_t>(64 * kMiB));
  }
  // Status details are empty on errors (spec "Error Scheme").
  {
    v1::CreateVolumeResponse r;
    auto st =
        call(*h.controller, &v1::Controller::Stub::CreateVolume, v1::CreateVolumeRequest(), &r);
    CHECK(st.error_details().empty());
    CHECK_FALSE(st.error_message().empty());
  }
  // ListVolumes lists it; an invalid token is ABORTED.
  {
    v1::ListVolumesResponse l;
    REQUIRE(
        call(*h.controller, &v1::Controller::Stub::ListVolumes, v1::ListVolumesRequest(), &l).ok());
    REQUIRE(l.entries_size() == 1);
    CHECK(l.entries(0).volume().volume_id() == vol.volume_id());
    v1::ListVolumesRequest bad;
    bad.set_starting_token("garbage");
    CHECK(call(*h.controller, &v1::Controller::Stub::ListVolumes, bad, &l).error_code() ==
          StatusCode::ABORTED);
  }
  // Node: stage → publish (SP creates the target) → unpublish (SP removes it) → unstage, each
  // repeated; publish before stage is FAILED_PRECONDITION.
  const auto staging = h.stagingDir("conf");
  const auto target = h.podDir("pod-conf") + "/mnt";
  CHECK(f.publish(vol, staging, target, cap).error_code() == StatusCode::FAILED_PRECONDITION);
  for (int i = 0; i < 2; ++i) {
    REQUIRE(f.stage(vol, staging, cap).ok());
  }
  for (int i = 0; i < 2; ++i) {
    REQUIRE(f.publish(vol, staging, target, cap).ok());
  }
  CHECK(std::filesystem::is_directory(target));
  for (int i = 0; i < 2; ++i) {
    REQUIRE(f.unpublish(vol.volume_id(), target).ok());
  }
  CHECK_FALSE(std::filesystem::exists(target));
  for (int i = 0; i < 2; ++i) {
    REQUIRE(f.unstage(vol.volume_id(), staging).ok());
  }
  // DeleteVolume: idempotent; an unknown id is OK (never NOT_FOUND).
  for (int i = 0; i < 2; ++i) {
    REQUIRE(f.deleteVolume(vol.volume_id()).ok());
  }
  CHECK(f.deleteVolume("carina-never-existed").ok());
  // ValidateVolumeCapabilities of a deleted volume: NOT_FOUND.
  v1::ValidateVolumeCapabilitiesRequest vreq;
  vreq.set_volume_id(vol.volume_id());
  *vreq.add_volume_capabilities() = cap;
  v1::ValidateVolumeCapabilitiesResponse vresp;
  CHECK(call(*h.controller, &v1::Controller::Stub::ValidateVolumeCapabilities, vreq, &vresp)
            .error_code() == StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace carina::test
