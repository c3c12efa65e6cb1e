// The agent as users run it: a real carina-agent process in standalone mode on loop disks,
// driven through CSI over its unix socket, and restarted between every two lifecycle steps —
// alternately with SIGTERM (graceful) and SIGKILL (a crash). After each restart the next step
// must still work, and at the end nothing may be left: no partition, no mount.

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>

#include "agent/os/linux/sysfs.h"
#include "agent/storage/volume_backend.h"
#include "tests/integration/app/agent_process.h"
#include "tests/support/loop_device.h"
#include "tests/support/test_support.h"

namespace {

using carina::test::AgentProcess;
using carina::test::AgentSetup;
using carina::test::LoopDevice;
using carina::test::TempDir;

constexpr uint64_t MiB = 1024 * 1024;

struct Case {
  std::string name;
  std::string fs;  // "" = block
  bool exclusive;
};

std::string statusText(const grpc::Status& s) {
  return std::to_string(static_cast<int>(s.error_code())) + " " + s.error_message();
}

// Partitions the kernel lists for a loop device (sysfs), e.g. {"loop7p1"}.
std::vector<std::string> kernelPartitions(const std::string& disk) {
  std::vector<std::string> parts;
  auto entries = carina::os::listDir("/sys/class/block/" + disk);
  if (entries.ok()) {
    for (const std::string& e : *entries) {
      if (e.rfind(disk + "p", 0) == 0) {
        parts.push_back(e);
      }
    }
  }
  return parts;
}

csi::v1::VolumeCapability capability(const Case& c) {
  csi::v1::VolumeCapability cap;
  if (c.fs.empty()) {
    cap.mutable_block();
  } else {
    cap.mutable_mount()->set_fs_type(c.fs);
  }
  cap.mutable_access_mode()->set_mode(csi::v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  return cap;
}

}  // namespace

TEST_CASE("a volume's whole lifecycle survives agent restarts and crashes between steps",
          "[integration][root]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  auto c = GENERATE(Case{"ext4-shared", "ext4", false}, Case{"xfs-exclusive", "xfs", true},
                    Case{"block-shared", "", false});
  INFO("case " << c.name);
  TempDir dir;
  LoopDevice disk(1024 * MiB);
  AgentSetup setup;
  setup.dir = dir.path();
  setup.disks = {disk.name()};
  AgentProcess agent(setup);
  agent.start();
  bool hard = false;
  auto restart = [&] {
    agent.restart(hard);
    hard = !hard;
  };

  const std::string name = "pvc-it-" + c.name;
  const std::string kubelet = setup.kubeletDir();
  std::string volume_id;
  csi::v1::VolumeCapability cap = capability(c);

  // CreateVolume, then the same again after a restart: same volume (idempotent).
  csi::v1::CreateVolumeRequest create;
  create.set_name(name);
  create.mutable_capacity_range()->set_required_bytes(320 * MiB);
  *create.add_volume_capabilities() = cap;
  (*create.mutable_parameters())["carina.storage.io/disk-group-name"] = "raw";
  (*create.mutable_parameters())["carina.storage.io/exclusivity-disk"] =
      c.exclusive ? "true" : "false";
  if (!c.fs.empty()) {
    (*create.mutable_parameters())["csi.storage.k8s.io/fstype"] = c.fs;
  }
  csi::v1::CreateVolumeResponse created;
  {
    grpc::ClientContext ctx;
    grpc::Status s = agent.controller().CreateVolume(&ctx, create, &created);
    INFO(agent.log());
    REQUIRE(s.ok());
  }
  volume_id = created.volume().volume_id();
  CHECK(volume_id == carina::storage::volumeIdForName(name));
  CHECK(created.volume().capacity_bytes() >= static_cast<int64_t>(320 * MiB));
  restart();
  {
    grpc::ClientContext ctx;
    csi::v1::CreateVolumeResponse again;
    REQUIRE(agent.controller().CreateVolume(&ctx, create, &again).ok());
    CHECK(again.volume().volume_id() == volume_id);
    CHECK(again.volume().capacity_bytes() == created.volume().capacity_bytes());
  }
  REQUIRE(kernelPartitions(disk.name()).size() == 1);
  restart();

  // NodeStageVolume.
  const std::string staging =
      kubelet + "/plugins/kubernetes.io/csi/carina.storage.io/" + volume_id + "/globalmount";
  std::filesystem::create_directories(staging);
  {
    csi::v1::NodeStageVolumeRequest req;
    req.set_volume_id(volume_id);
    req.set_staging_target_path(staging);
    *req.mutable_volume_capability() = cap;
    *req.mutable_volume_context() = created.volume().volume_context();
    csi::v1::NodeStageVolumeResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = agent.node().NodeStageVolume(&ctx, req, &resp);
    INFO(statusText(s) << "\n" << agent.log());
    REQUIRE(s.ok());
  }
  restart();

  // NodePublishVolume (the CO creates the parent of the target; the plugin the target).
  const std::string pod_dir = kubelet + "/pods/uid-1/volumes/kubernetes.io~csi/" + volume_id;
  std::filesystem::create_directories(pod_dir);
  const std::string target = pod_dir + (c.fs.empty() ? "/dev" : "/mount");
  csi::v1::NodePublishVolumeRequest publish;
  publish.set_volume_id(volume_id);
  publish.set_staging_target_path(staging);
  publish.set_target_path(target);
  *publish.mutable_volume_capability() = cap;
  *publish.mutable_volume_context() = created.volume().volume_context();
  {
    csi::v1::NodePublishVolumeResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = agent.node().NodePublishVolume(&ctx, publish, &resp);
    INFO(statusText(s) << "\n" << agent.log());
    REQUIRE(s.ok());
  }
  restart();

  // Write through the published path, restart (crash or not), read it back.
  const std::string payload = "carina keeps this across restarts: " + c.name;
  if (c.fs.empty()) {
    int fd = ::open(target.c_str(), O_WRONLY | O_SYNC);
    REQUIRE(fd >= 0);
    std::string block = payload;
    block.resize(4096, '\0');
    REQUIRE(::pwrite(fd, block.data(), block.size(), 0) == static_cast<ssize_t>(block.size()));
    ::close(fd);
  } else {
    std::ofstream(target + "/data.txt") << payload;
    ::sync();
  }
  restart();
  if (c.fs.empty()) {
    int fd = ::open(target.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    std::string back(payload.size(), '\0');
    REQUIRE(::pread(fd, back.data(), back.size(), 0) == static_cast<ssize_t>(back.size()));
    ::close(fd);
    CHECK(back == payload);
  } else {
    std::ifstream in(target + "/data.txt");
    std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(back == payload);
  }

  // Publish again after the restart: already correct, so OK (idempotent).
  {
    csi::v1::NodePublishVolumeResponse resp;
    grpc::ClientContext ctx;
    CHECK(agent.node().NodePublishVolume(&ctx, publish, &resp).ok());
  }
  restart();

  // Stats on the published path.
  {
    csi::v1::NodeGetVolumeStatsRequest req;
    req.set_volume_id(volume_id);
    req.set_volume_path(target);
    csi::v1::NodeGetVolumeStatsResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = agent.node().NodeGetVolumeStats(&ctx, req, &resp);
    INFO(statusText(s));
    REQUIRE(s.ok());
    REQUIRE(resp.usage_size() >= 1);
    CHECK(resp.usage(0).total() > 0);
  }

  // Online growth where this machine allows it (xfs; ext4 online growth needs
  // CAP_SYS_RESOURCE, which these machines lack — covered by the CSI integration tests).
  if (c.fs == "xfs") {
    csi::v1::ControllerExpandVolumeRequest req;
    req.set_volume_id(volume_id);
    req.mutable_capacity_range()->set_required_bytes(512 * MiB);
    *req.mutable_volume_capability() = cap;
    csi::v1::ControllerExpandVolumeResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = agent.controller().ControllerExpandVolume(&ctx, req, &resp);
    INFO(statusText(s) << "\n" << agent.log());
    REQUIRE(s.ok());
    CHECK(resp.node_expansion_required());
    restart();
    csi::v1::NodeExpandVolumeRequest nreq;
    nreq.set_volume_id(volume_id);
    nreq.set_volume_path(target);
    nreq.set_staging_target_path(staging);
    nreq.mutable_capacity_range()->set_required_bytes(512 * MiB);
    *nreq.mutable_volume_capability() = cap;
    csi::v1::NodeExpandVolumeResponse nresp;
    grpc::ClientContext nctx;
    grpc::Status ns = agent.node().NodeExpandVolume(&nctx, nreq, &nresp);
    INFO(statusText(ns) << "\n" << agent.log());
    REQUIRE(ns.ok());
    CHECK(nresp.capacity_bytes() >= static_cast<int64_t>(512 * MiB));
    std::error_code ec;
    auto space = std::filesystem::space(target, ec);
    REQUIRE_FALSE(ec);
    CHECK(space.capacity > 400 * MiB);  // was ~256 MiB usable at 320 MiB
    restart();
  }

  // DeleteVolume while still published is refused, and nothing is lost.
  {
    csi::v1::DeleteVolumeRequest req;
    req.set_volume_id(volume_id);
    csi::v1::DeleteVolumeResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = agent.controller().DeleteVolume(&ctx, req, &resp);
    CHECK(s.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK(kernelPartitions(disk.name()).size() == 1);
  }

  // Tear down, one restart between each step.
  {
    csi::v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id(volume_id);
    req.set_target_path(target);
    csi::v1::NodeUnpublishVolumeResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = agent.node().NodeUnpublishVolume(&ctx, req, &resp);
    INFO(statusText(s));
    REQUIRE(s.ok());
  }
  restart();
  {
    csi::v1::NodeUnstageVolumeRequest req;
    req.set_volume_id(volume_id);
    req.set_staging_target_path(staging);
    csi::v1::NodeUnstageVolumeResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = agent.node().NodeUnstageVolume(&ctx, req, &resp);
    INFO(statusText(s));
    REQUIRE(s.ok());
  }
  restart();
  for (int i = 0; i < 2; ++i) {  // the second delete of a gone volume is OK too
    csi::v1::DeleteVolumeRequest req;
    req.set_volume_id(volume_id);
    csi::v1::DeleteVolumeResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = agent.controller().DeleteVolume(&ctx, req, &resp);
    INFO(statusText(s) << "\n" << agent.log());
    REQUIRE(s.ok());
    restart();
  }
  {
    csi::v1::ListVolumesRequest req;
    csi::v1::ListVolumesResponse resp;
    grpc::ClientContext ctx;
    REQUIRE(agent.controller().ListVolumes(&ctx, req, &resp).ok());
    CHECK(resp.entries_size() == 0);
  }
  agent.stop();
  CHECK(kernelPartitions(disk.name()).empty());
  // Nothing of ours is still mounted below the test directory.
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    CHECK(line.find(dir.path()) == std::string::npos);
  }
}
