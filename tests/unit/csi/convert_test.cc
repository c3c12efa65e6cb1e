#include "csi/convert.h"

#include <cstdint>

#include <catch2/catch.hpp>

#include "csi/volume_locks.h"

namespace carina::csi {
namespace {

using AccessMode = ::csi::v1::VolumeCapability::AccessMode;

TEST_CASE("checkPath accepts clean absolute paths below the kubelet dir", "[unit][csi]") {
  const std::string k = "/var/lib/kubelet";
  struct Case {
    std::string path;
    bool ok;
  };
  const std::vector<Case> cases = {
      {"/var/lib/kubelet/pods/x/volumes/v", true},
      {"/var/lib/kubelet/a", true},
      {"", false},
      {"relative/path", false},
      {"/var/lib/kubelet", false},
      {"/var/lib/kubelet/", false},
      {"/var/lib/kubeletx/a", false},
      {"/var/lib/kubelet/../etc", false},
      {"/var/lib/kubelet/pods/../../../etc", false},
      {"/var/lib/kubelet/./a", false},
      {"/var/lib/kubelet//a", false},
      {"/var/lib/kubelet/a/", false},
      {"/var/lib/kubelet/a/.", false},
      {"/var/lib/kubelet/a\nb", false},
      {"/etc/passwd", false},
      {"/var/lib/kubelet/" + std::string(5000, 'a'), false},
  };
  for (const auto& c : cases) {
    CAPTURE(c.path);
    const auto st = checkPath(c.path, k, "target_path");
    CHECK(st.ok() == c.ok);
    if (!c.ok) {
      CHECK(st.code() == absl::StatusCode::kInvalidArgument);
      CHECK(std::string(st.message()).find("target_path") != std::string::npos);
    }
  }
  // A kubelet dir given with a trailing slash works the same.
  CHECK(checkPath("/var/lib/kubelet/a", "/var/lib/kubelet/", "p").ok());
}

TEST_CASE("provisionSize honours required, limit, xfs minimum and MiB alignment", "[unit][csi]") {
  CHECK(*provisionSize(0, 0, "ext4") == kGiB);
  CHECK(*provisionSize(0, 100 * kMiB, "ext4") == 100 * kMiB);
  CHECK(*provisionSize(1, 0, "ext4") == kMiB);
  CHECK(*provisionSize(static_cast<int64_t>(kMiB) + 1, 0, "") == 2 * kMiB);
  CHECK(*provisionSize(10 * kMiB, 0, "xfs") == kXfsMinBytes);
  CHECK(*provisionSize(10 * kMiB, 400 * kMiB, "xfs") == kXfsMinBytes);
  CHECK(provisionSize(10 * kMiB, 200 * kMiB, "xfs").status().code() ==
        absl::StatusCode::kOutOfRange);
  CHECK(provisionSize(2 * kMiB, kMiB, "ext4").status().code() == absl::StatusCode::kOutOfRange);
  // [1 MiB + 1, 1 MiB + 2]: no 1 MiB multiple inside.
  CHECK(provisionSize(kMiB + 1, kMiB + 2, "ext4").status().code() == absl::StatusCode::kOutOfRange);
  CHECK(provisionSize(-1, 0, "ext4").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(provisionSize(0, -5, "ext4").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(*provisionSize(INT64_MAX - static_cast<int64_t>(kMiB), 0, "ext4") % kMiB == 0);
}

TEST_CASE("parseParameters reads Carina's StorageClass parameters", "[unit][csi]") {
  auto p = parseParameters({{"carina.storage.io/disk-type", "hdd"},
                            {"csi.storage.k8s.io/fstype", "xfs"},
                            {"carina.storage.io/exclusivity-disk", "true"},
                            {"csi.storage.k8s.io/pvc/name", "data"}});
  REQUIRE(p.ok());
  CHECK(p->group == "hdd");
  CHECK(p->fs_type == "xfs");
  CHECK(p->exclusive);
  auto carina = parseParameters({{"carina.storage.io/exclusively-raw-disk", "true"},
                                 {"carina.storage.io/disk-group-name", "ssd"}});
  REQUIRE(carina.ok());
  CHECK(carina->exclusive);
  CHECK(carina->group == "ssd");
  CHECK(parseParameters({{"carina.storage.io/exclusivity-disk", "yes"}}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  // The extender's per-StorageClass strategy reaches CreateVolume too: accepted, validated.
  CHECK(parseParameters({{"carina.storage.io/scheduler-strategy", "spreadout"}}).ok());
  CHECK(parseParameters({{"carina.storage.io/scheduler-strategy", "fast"}}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(parseParameters({{"csi.storage.k8s.io/fstype", "btrfs"}}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(parseParameters({{"carina.storage.io/disk-typo", "x"}}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(parseParameters(
            {{"carina.storage.io/disk-type", "a"}, {"carina.storage.io/disk-group-name", "b"}})
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("checkCapability validates access type, mode, fs type and flags", "[unit][csi]") {
  ::csi::v1::VolumeCapability cap;
  CHECK(checkCapability(cap, absl::StatusCode::kFailedPrecondition).status().code() ==
        absl::StatusCode::kInvalidArgument);  // no access mode
  cap.mutable_access_mode()->set_mode(AccessMode::SINGLE_NODE_WRITER);
  CHECK(checkCapability(cap, absl::StatusCode::kFailedPrecondition).status().code() ==
        absl::StatusCode::kInvalidArgument);  // no access type
  cap.mutable_mount()->set_fs_type("xfs");
  auto ok = checkCapability(cap, absl::StatusCode::kFailedPrecondition);
  REQUIRE(ok.ok());
  CHECK_FALSE(ok->block);
  CHECK(ok->fs_type == "xfs");
  for (auto mode : {AccessMode::MULTI_NODE_MULTI_WRITER, AccessMode::MULTI_NODE_READER_ONLY,
                    AccessMode::SINGLE_NODE_READER_ONLY, AccessMode::MULTI_NODE_SINGLE_WRITER}) {
    cap.mutable_access_mode()->set_mode(mode);
    CHECK(checkCapability(cap, absl::StatusCode::kFailedPrecondition).status().code() ==
          absl::StatusCode::kFailedPrecondition);
    CHECK(checkCapability(cap, absl::StatusCode::kInvalidArgument).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
  for (auto mode : {AccessMode::SINGLE_NODE_WRITER, AccessMode::SINGLE_NODE_SINGLE_WRITER,
                    AccessMode::SINGLE_NODE_MULTI_WRITER}) {
    cap.mutable_access_mode()->set_mode(mode);
    CHECK(checkCapability(cap, absl::StatusCode::kFailedPrecondition).ok());
  }
  cap.mutable_mount()->set_fs_type("ntfs");
  CHECK(checkCapability(cap, absl::StatusCode::kInvalidArgument).status().code() ==
        absl::StatusCode::kInvalidArgument);
  cap.mutable_mount()->set_fs_type("ext4");
  cap.mutable_mount()->add_mount_flags("noatime");
  CHECK(checkCapability(cap, absl::StatusCode::kInvalidArgument).ok());
  for (const char* bad : {"bind", "a,b", "", "x y", "remount"}) {
    CAPTURE(bad);
    auto c2 = cap;
    c2.mutable_mount()->add_mount_flags(bad);
    CHECK(checkCapability(c2, absl::StatusCode::kFailedPrecondition).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
  ::csi::v1::VolumeCapability block;
  block.mutable_block();
  block.mutable_access_mode()->set_mode(AccessMode::SINGLE_NODE_WRITER);
  auto b = checkCapability(block, absl::StatusCode::kInvalidArgument);
  REQUIRE(b.ok());
  CHECK(b->block);
}

TEST_CASE("planCreate resolves the fs type and size of a CreateVolumeRequest", "[unit][csi]") {
  ::csi::v1::CreateVolumeRequest req;
  CHECK(planCreate(req).status().code() == absl::StatusCode::kInvalidArgument);  // no name
  req.set_name("pvc-1");
  CHECK(planCreate(req).status().code() == absl::StatusCode::kInvalidArgument);  // no caps
  auto* cap = req.add_volume_capabilities();
  cap->mutable_mount();
  cap->mutable_access_mode()->set_mode(AccessMode::SINGLE_NODE_WRITER);
  (*req.mutable_parameters())["csi.storage.k8s.io/fstype"] = "xfs";
  req.mutable_capacity_range()->set_required_bytes(10 * kMiB);
  auto plan = planCreate(req);
  REQUIRE(plan.ok());
  CHECK(plan->fs_type == "xfs");
  CHECK(plan->spec.required_bytes == kXfsMinBytes);
  CHECK(plan->spec.name == "pvc-1");
  // Two mount capabilities that disagree on the fs type.
  auto* cap2 = req.add_volume_capabilities();
  *cap2 = *cap;
  cap->mutable_mount()->set_fs_type("ext4");
  cap2->mutable_mount()->set_fs_type("xfs");
  CHECK(planCreate(req).status().code() == absl::StatusCode::kInvalidArgument);
  req.mutable_volume_capabilities()->RemoveLast();
  // Content sources are not supported.
  req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id("s");
  CHECK(planCreate(req).status().code() == absl::StatusCode::kInvalidArgument);
  req.clear_volume_content_source();
  // Block only: no fs type.
  ::csi::v1::CreateVolumeRequest breq;
  breq.set_name("b");
  breq.add_volume_capabilities()->mutable_block();
  breq.mutable_volume_capabilities(0)->mutable_access_mode()->set_mode(
      AccessMode::SINGLE_NODE_WRITER);
  auto bplan = planCreate(breq);
  REQUIRE(bplan.ok());
  CHECK(bplan->fs_type.empty());
  CHECK(bplan->spec.required_bytes == kDefaultVolumeBytes);
}

TEST_CASE("topologyAllows looks for this node in requisite, else preferred", "[unit][csi]") {
  ::csi::v1::CreateVolumeRequest req;
  CHECK(topologyAllows(req, "n1"));
  auto* r = req.mutable_accessibility_requirements();
  CHECK(topologyAllows(req, "n1"));  // empty requirement
  (*r->add_preferred()->mutable_segments())[std::string(kTopologyKey)] = "n2";
  CHECK_FALSE(topologyAllows(req, "n1"));
  CHECK(topologyAllows(req, "n2"));
  (*r->add_requisite()->mutable_segments())[std::string(kTopologyKey)] = "n2";
  (*r->add_requisite()->mutable_segments())[std::string(kTopologyKey)] = "n1";
  CHECK(topologyAllows(req, "n1"));
  CHECK_FALSE(topologyAllows(req, "n3"));
  ::csi::v1::CreateVolumeRequest other_key;
  (*other_key.mutable_accessibility_requirements()->add_requisite()->mutable_segments())["zone"] =
      "n1";
  CHECK_FALSE(topologyAllows(other_key, "n1"));
}

TEST_CASE("fillVolume returns topology and the context the node side needs", "[unit][csi]") {
  storage::Volume v{"carina-abc", "ssd", "sdb", "/dev/sdb3", 5 * kMiB, 10 * kMiB, true};
  ::csi::v1::Volume out;
  fillVolume(v, "xfs", "node-1", &out);
  CHECK(out.volume_id() == "carina-abc");
  CHECK(out.capacity_bytes() == static_cast<int64_t>(5 * kMiB));
  CHECK(out.volume_context().at(std::string(kCtxFsType)) == "xfs");
  CHECK(out.volume_context().at(std::string(kCtxGroup)) == "ssd");
  CHECK(out.volume_context().at(std::string(kCtxExclusive)) == "true");
  CHECK(out.volume_context().at(std::string(kCtxDevice)) == "/dev/sdb3");
  REQUIRE(out.accessible_topology_size() == 1);
  CHECK(out.accessible_topology(0).segments().at(std::string(kTopologyKey)) == "node-1");
}

TEST_CASE("parseBlkidExport and mkfsCommand", "[unit][csi]") {
  auto tags = parseBlkidExport("DEVNAME=/dev/loop3\nUUID=1234\nTYPE=xfs\nbroken\n=x\n");
  CHECK(tags.size() == 3);
  CHECK(tags["TYPE"] == "xfs");
  CHECK(parseBlkidExport("").empty());
  CHECK(mkfsCommand("xfs", "/dev/x") == std::vector<std::string>{"mkfs.xfs", "-q", "/dev/x"});
  CHECK(mkfsCommand("ext4", "/dev/x").front() == "mkfs.ext4");
  CHECK(mkfsCommand("ext4", "/dev/x").back() == "/dev/x");
}

TEST_CASE("VolumeLocks: a held id is busy until its guard goes", "[unit][csi]") {
  VolumeLocks locks;
  {
    auto a = locks.tryLock("v1");
    REQUIRE(a.has_value());
    CHECK(locks.isLocked("v1"));
    CHECK_FALSE(locks.tryLock("v1").has_value());
    auto b = locks.tryLock("v2");
    CHECK(b.has_value());
    auto moved = std::move(*a);
    a.reset();
    CHECK(locks.isLocked("v1"));  // the moved-from guard released nothing
  }
  CHECK_FALSE(locks.isLocked("v1"));
  CHECK_FALSE(locks.isLocked("v2"));
  CHECK(locks.tryLock("v1").has_value());
}

TEST_CASE("codeName names every gRPC code", "[unit][csi]") {
  CHECK(codeName(absl::StatusCode::kAborted) == "ABORTED");
  CHECK(codeName(absl::StatusCode::kResourceExhausted) == "RESOURCE_EXHAUSTED");
  CHECK(codeName(absl::StatusCode::kOk) == "OK");
}

TEST_CASE("parseParameters is storage::parseClassParams (CreateVolume and the extender agree)",
          "[unit][csi]") {
  const std::vector<std::map<std::string, std::string>> cases = {
      {},
      {{"carina.storage.io/disk-type", "hdd"}},
      {{"carina.storage.io/disk-group-name", "ssd"}, {"carina.storage.io/disk-type", "ssd"}},
      {{"carina.storage.io/disk-group-name", "ssd"}, {"carina.storage.io/disk-type", "hdd"}},
      {{"carina.storage.io/exclusivity-disk", "TRUE"}},
      {{"carina.storage.io/exclusively-raw-disk", "False"}},
      {{"carina.storage.io/exclusivity-disk", ""}},
      {{"carina.storage.io/exclusivity-disk", "1"}},
      {{"carina.storage.io/scheduler-strategy", "Binpack"}},
      {{"carina.storage.io/scheduler-strategy", ""}},
      {{"carina.storage.io/scheduler-strategy", "random"}},
      {{"csi.storage.k8s.io/fstype", "xfs"}},
      {{"csi.storage.k8s.io/fstype", "zfs"}},
      {{"carina.storage.io/unknown", "x"}},
      {{"csi.storage.k8s.io/pvc/namespace", "default"}, {"volumeGroup", "vg0"}},
  };
  for (const auto& params : cases) {
    auto csi_params = parseParameters(params);
    auto shared = carina::storage::parseClassParams(params);
    CAPTURE(params.size(), shared.status().message());
    REQUIRE(csi_params.ok() == shared.ok());
    if (!shared.ok()) {
      CHECK(csi_params.status() == shared.status());  // same code, same message
      continue;
    }
    CHECK(csi_params->group == shared->group);
    CHECK(csi_params->exclusive == shared->exclusive);
    CHECK(csi_params->fs_type == shared->fs_type);
  }
}

}  // namespace
}  // namespace carina::csi
