// The CSI services over a real gRPC server on a unix socket, with FakeVolumeBackend,
// FakeMounter and FakeCommandRunner behind them: the spec's error-code table, idempotency,
// ABORTED on a busy volume, and the failure matrix of NodeStageVolume.

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <future>
#include <set>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>

#include "agent/core/blocking.h"
#include "agent/core/constants.h"
#include "csi/grpc_status.h"
#include "tests/fakes/fake_command_runner.h"
#include "tests/fakes/fake_mounter.h"
#include "tests/fakes/fake_volume_backend.h"
#include "tests/unit/csi/csi_harness.h"

namespace carina::test {
namespace {

using AccessMode = v1::VolumeCapability::AccessMode;
using grpc::StatusCode;

/** Records what the services report to the VolumeObserver, one line per outcome. */
class RecordingObserver : public csi::VolumeObserver {
public:
  void volumeCreated(const std::string& id, const std::string& name,
                     const std::map<std::string, std::string>& params) override {
    auto pvc = params.find("csi.storage.k8s.io/pvc/name");
    add("created " + id + " " + name + (pvc == params.end() ? "" : " pvc=" + pvc->second));
  }
  void createFailed(const std::string& name, const std::map<std::string, std::string>&,
                    const absl::Status& st) override {
    add("create-failed " + name + " " + absl::StatusCodeToString(st.code()));
  }
  void volumeDeleted(const std::string& id) override { add("deleted " + id); }
  void volumeExpanded(const std::string& id) override { add("expanded " + id); }
  void expandFailed(const std::string& id, const absl::Status& st) override {
    add("expand-failed " + id + " " + absl::StatusCodeToString(st.code()));
  }
  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

private:
  void add(std::string line) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(std::move(line));
  }
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

struct Fixture {
  explicit Fixture(
      const std::function<void(csi::ServiceOptions&)>& tweak = {},
      csi::ReadinessFn ready = [] { return true; })
      : backend({{"ssd", 10 * kGiB}}),
        h(backend, mounter, runner, tweak, std::move(ready), &observer) {}

  /** Creates a volume whose device the fake mounter knows. */
  v1::Volume create(const std::string& name, const v1::VolumeCapability& cap = mountCap("ext4"),
                    int64_t bytes = 64 * static_cast<int64_t>(kMiB)) {
    const std::string dev = "/dev/fakedisk-" + name;
    backend.pushDevice(dev);
    mounter.addDevice(dev, static_cast<uint64_t>(bytes));
    v1::CreateVolumeResponse resp;
    auto st = call(*h.controller, &v1::Controller::Stub::CreateVolume,
                   createRequest(name, bytes, cap), &resp);
    REQUIRE(st.ok());
    return resp.volume();
  }

  grpc::Status stage(const std::string& id, const std::string& staging,
                     const v1::VolumeCapability& cap = mountCap("ext4")) {
    v1::NodeStageVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(staging);
    *req.mutable_volume_capability() = cap;
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
  grpc::Status publish(const std::string& id, const std::string& staging, const std::string& target,
                       bool readonly = false, const v1::VolumeCapability& cap = mountCap("ext4")) {
    v1::NodePublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(staging);
    req.set_target_path(target);
    req.set_readonly(readonly);
    *req.mutable_volume_capability() = cap;
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
  grpc::Status deleteVolume(const std::string& id) {
    v1::DeleteVolumeRequest req;
    req.set_volume_id(id);
    (*req.mutable_secrets())["password"] = "hunter2";
    v1::DeleteVolumeResponse resp;
    return call(*h.controller, &v1::Controller::Stub::DeleteVolume, req, &resp);
  }

  FakeVolumeBackend backend;
  FakeMounter mounter;
  FakeCommandRunner runner;
  RecordingObserver observer;
  CsiHarness h;
};

TEST_CASE("runBlocking runs off the io thread and resumes on it", "[unit][csi]") {
  boost::asio::io_context io;
  boost::asio::thread_pool pool(1);
  std::thread::id io_thread;
  std::thread::id work_thread;
  std::thread::id after;
  boost::asio::co_spawn(
      io,
      [&]() -> Task<void> {
        io_thread = std::this_thread::get_id();
        work_thread = co_await runBlocking(pool, [] { return std::this_thread::get_id(); });
        after = std::this_thread::get_id();
      },
      boost::asio::detached);
  io.run();
  pool.join();
  CHECK(work_thread != io_thread);
  CHECK(after == io_thread);
}

TEST_CASE("toGrpc keeps code and message", "[unit][csi]") {
  auto g = csi::toGrpc(absl::AbortedError("busy"));
  CHECK(g.error_code() == StatusCode::ABORTED);
  CHECK(g.error_message() == "busy");
  CHECK(g.error_details().empty());
  CHECK(csi::toGrpc(absl::OkStatus()).ok());
}

TEST_CASE("Identity: name, version, capabilities, readiness", "[unit][csi]") {
  std::atomic<bool> ready{false};
  Fixture f({}, [&] { return ready.load(); });
  v1::GetPluginInfoResponse info;
  REQUIRE(call(*f.h.identity, &v1::Identity::Stub::GetPluginInfo, v1::GetPluginInfoRequest(), &info)
              .ok());
  CHECK(info.name() == kDriverName);
  CHECK(info.vendor_version() == "0.1.0-test");

  v1::GetPluginCapabilitiesResponse caps;
  REQUIRE(call(*f.h.identity, &v1::Identity::Stub::GetPluginCapabilities,
               v1::GetPluginCapabilitiesRequest(), &caps)
              .ok());
  bool controller = false;
  bool topology = false;
  bool online = false;
  for (const auto& c : caps.capabilities()) {
    controller |= c.service().type() == v1::PluginCapability::Service::CONTROLLER_SERVICE;
    topology |=
        c.service().type() == v1::PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS;
    online |= c.volume_expansion().type() == v1::PluginCapability::VolumeExpansion::ONLINE;
  }
  CHECK(controller);
  CHECK(topology);
  CHECK(online);

  v1::ProbeResponse probe;
  REQUIRE(call(*f.h.identity, &v1::Identity::Stub::Probe, v1::ProbeRequest(), &probe).ok());
  REQUIRE(probe.has_ready());
  CHECK_FALSE(probe.ready().value());
  ready = true;
  REQUIRE(call(*f.h.identity, &v1::Identity::Stub::Probe, v1::ProbeRequest(), &probe).ok());
  CHECK(probe.ready().value());
}

TEST_CASE("Identity: vendor_version defaults to the build's version", "[unit][csi]") {
  Fixture f([](csi::ServiceOptions& o) { o.version.clear(); });
  v1::GetPluginInfoResponse info;
  REQUIRE(call(*f.h.identity, &v1::Identity::Stub::GetPluginInfo, v1::GetPluginInfoRequest(), &info)
              .ok());
  CHECK_FALSE(csi::buildVersion().empty());
  CHECK(info.vendor_version() == csi::buildVersion());
}

TEST_CASE("CreateVolume: idempotent by name, context and topology", "[unit][csi]") {
  Fixture f;
  auto v1st = f.create("pvc-1");
  CHECK(v1st.capacity_bytes() == 64 * static_cast<int64_t>(kMiB));
  CHECK(v1st.volume_context().at("carina.storage.io/fstype") == "ext4");
  CHECK(v1st.volume_context().at("carina.storage.io/group") == "ssd");
  REQUIRE(v1st.accessible_topology_size() == 1);
  CHECK(v1st.accessible_topology(0).segments().at(std::string(kTopologyKey)) == kTestNode);
  // Same name, same arguments: the same volume.
  v1::CreateVolumeResponse again;
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::CreateVolume,
               createRequest("pvc-1", 64 * static_cast<int64_t>(kMiB), mountCap("ext4")), &again)
              .ok());
  CHECK(again.volume().volume_id() == v1st.volume_id());
  CHECK(f.backend.listVolumes().size() == 1);
  // Same name, larger size: incompatible.
  auto st = call(*f.h.controller, &v1::Controller::Stub::CreateVolume,
                 createRequest("pvc-1", 128 * static_cast<int64_t>(kMiB)), &again);
  CHECK(st.error_code() == StatusCode::ALREADY_EXISTS);
}

TEST_CASE("CreateVolume: a repeat asking for another filesystem is ALREADY_EXISTS", "[unit][csi]") {
  Fixture f;
  const int64_t size = 512 * static_cast<int64_t>(kMiB);  // xfs needs >= 300 MiB
  auto first = f.create("pvc-fs", mountCap("ext4"), size);
  auto vol = f.backend.findVolume(first.volume_id());
  REQUIRE(vol.has_value());
  v1::CreateVolumeResponse again;
  // Not formatted yet: any fs type is compatible (nothing can be lost).
  CHECK(call(*f.h.controller, &v1::Controller::Stub::CreateVolume,
             createRequest("pvc-fs", size, mountCap("xfs")), &again)
            .ok());
  // Staged once as ext4: ext4 repeats succeed, xfs is refused, block is not judged.
  f.runner.setFilesystem(vol->device, "ext4");
  CHECK(call(*f.h.controller, &v1::Controller::Stub::CreateVolume,
             createRequest("pvc-fs", size, mountCap("ext4")), &again)
            .ok());
  auto st = call(*f.h.controller, &v1::Controller::Stub::CreateVolume,
                 createRequest("pvc-fs", size, mountCap("xfs")), &again);
  CHECK(st.error_code() == StatusCode::ALREADY_EXISTS);
  CHECK_THAT(st.error_message(), Catch::Contains("ext4") && Catch::Contains("xfs"));
  CHECK(call(*f.h.controller, &v1::Controller::Stub::CreateVolume,
             createRequest("pvc-fs", size, blockCap()), &again)
            .ok());
  // A probe that fails is an error, not a silent success.
  f.runner.onError("blkid", absl::UnavailableError("blkid vanished"));
  st = call(*f.h.controller, &v1::Controller::Stub::CreateVolume,
            createRequest("pvc-fs", size, mountCap("ext4")), &again);
  CHECK_FALSE(st.ok());
  CHECK(f.backend.listVolumes().size() == 1);
}

TEST_CASE("CreateVolume: the spec's error codes", "[unit][csi]") {
  Fixture f;
  v1::CreateVolumeResponse resp;
  auto create = [&](const v1::CreateVolumeRequest& req) {
    return call(*f.h.controller, &v1::Controller::Stub::CreateVolume, req, &resp).error_code();
  };
  SECTION("missing name or capabilities → INVALID_ARGUMENT") {
    CHECK(create(createRequest("", kMiB)) == StatusCode::INVALID_ARGUMENT);
    v1::CreateVolumeRequest no_caps;
    no_caps.set_name("x");
    CHECK(create(no_caps) == StatusCode::INVALID_ARGUMENT);
  }
  SECTION("unsupported access mode → INVALID_ARGUMENT") {
    CHECK(create(createRequest("x", kMiB, mountCap("", AccessMode::MULTI_NODE_MULTI_WRITER))) ==
          StatusCode::INVALID_ARGUMENT);
  }
  SECTION("content source not supported → INVALID_ARGUMENT") {
    auto req = createRequest("x", kMiB);
    req.mutable_volume_content_source()->mutable_volume()->set_volume_id("src");
    CHECK(create(req) == StatusCode::INVALID_ARGUMENT);
  }
  SECTION("unsupported capacity_range → OUT_OF_RANGE") {
    auto req = createRequest("x", 10 * kMiB);
    req.mutable_capacity_range()->set_limit_bytes(5 * kMiB);
    CHECK(create(req) == StatusCode::OUT_OF_RANGE);
    auto xfs = createRequest("y", 10 * kMiB, mountCap("xfs"));
    xfs.mutable_capacity_range()->set_limit_bytes(100 * kMiB);
    CHECK(create(xfs) == StatusCode::OUT_OF_RANGE);
  }
  SECTION("xfs below 300 MiB is rounded up") {
    REQUIRE(create(createRequest("xfs-small", 10 * kMiB, mountCap("xfs"))) == StatusCode::OK);
    CHECK(resp.volume().capacity_bytes() == static_cast<int64_t>(300 * kMiB));
  }
  SECTION("topology of another node → RESOURCE_EXHAUSTED") {
    auto req = createRequest("x", kMiB);
    auto* t = req.mutable_accessibility_requirements()->add_requisite();
    (*t->mutable_segments())[std::string(kTopologyKey)] = "node-b";
    CHECK(create(req) == StatusCode::RESOURCE_EXHAUSTED);
    auto* mine = req.mutable_accessibility_requirements()->add_requisite();
    (*mine->mutable_segments())[std::string(kTopologyKey)] = kTestNode;
    CHECK(create(req) == StatusCode::OK);
  }
  SECTION("no space → RESOURCE_EXHAUSTED") {
    CHECK(create(createRequest("huge", 20 * static_cast<int64_t>(kGiB))) ==
          StatusCode::RESOURCE_EXHAUSTED);
  }
  SECTION("unknown group → INVALID_ARGUMENT") {
    auto req = createRequest("x", kMiB);
    (*req.mutable_parameters())["carina.storage.io/disk-group-name"] = "nope";
    CHECK(create(req) == StatusCode::INVALID_ARGUMENT);
  }
}

TEST_CASE("DeleteVolume: idempotent, FAILED_PRECONDITION while staged", "[unit][csi]") {
  Fixture f;
  CHECK(f.deleteVolume("carina-unknown").ok());
  CHECK(f.deleteVolume("").error_code() == StatusCode::INVALID_ARGUMENT);
  auto vol = f.create("pvc-del");
  const auto staging = f.h.stagingDir("del");
  REQUIRE(f.stage(vol.volume_id(), staging).ok());
  CHECK(f.deleteVolume(vol.volume_id()).error_code() == StatusCode::FAILED_PRECONDITION);
  REQUIRE(f.unstage(vol.volume_id(), staging).ok());
  CHECK(f.deleteVolume(vol.volume_id()).ok());
  CHECK(f.deleteVolume(vol.volume_id()).ok());
  CHECK(f.backend.listVolumes().empty());
}

TEST_CASE("ValidateVolumeCapabilities, ListVolumes, GetCapacity", "[unit][csi]") {
  Fixture f;
  auto a = f.create("pvc-a");
  auto b = f.create("pvc-b");
  auto c = f.create("pvc-c");

  v1::ValidateVolumeCapabilitiesRequest vreq;
  vreq.set_volume_id("carina-nope");
  *vreq.add_volume_capabilities() = mountCap();
  v1::ValidateVolumeCapabilitiesResponse vresp;
  CHECK(call(*f.h.controller, &v1::Controller::Stub::ValidateVolumeCapabilities, vreq, &vresp)
            .error_code() == StatusCode::NOT_FOUND);
  vreq.set_volume_id(a.volume_id());
  REQUIRE(
      call(*f.h.controller, &v1::Controller::Stub::ValidateVolumeCapabilities, vreq, &vresp).ok());
  CHECK(vresp.has_confirmed());
  *vreq.mutable_volume_capabilities(0) = mountCap("", AccessMode::MULTI_NODE_MULTI_WRITER);
  vresp.Clear();
  REQUIRE(
      call(*f.h.controller, &v1::Controller::Stub::ValidateVolumeCapabilities, vreq, &vresp).ok());
  CHECK_FALSE(vresp.has_confirmed());
  CHECK_FALSE(vresp.message().empty());
  vreq.clear_volume_capabilities();
  CHECK(call(*f.h.controller, &v1::Controller::Stub::ValidateVolumeCapabilities, vreq, &vresp)
            .error_code() == StatusCode::INVALID_ARGUMENT);

  // Paging through three volumes two at a time.
  v1::ListVolumesRequest lreq;
  lreq.set_max_entries(2);
  v1::ListVolumesResponse page1;
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::ListVolumes, lreq, &page1).ok());
  CHECK(page1.entries_size() == 2);
  REQUIRE_FALSE(page1.next_token().empty());
  lreq.set_starting_token(page1.next_token());
  v1::ListVolumesResponse page2;
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::ListVolumes, lreq, &page2).ok());
  CHECK(page2.entries_size() == 1);
  CHECK(page2.next_token().empty());
  std::set<std::string> ids;
  for (const auto* p : {&page1, &page2}) {
    for (const auto& e : p->entries()) {
      ids.insert(e.volume().volume_id());
    }
  }
  CHECK(ids == std::set<std::string>{a.volume_id(), b.volume_id(), c.volume_id()});
  for (const char* bad : {"x", "-1", "99", "1a"}) {
    CAPTURE(bad);
    lreq.set_starting_token(bad);
    CHECK(call(*f.h.controller, &v1::Controller::Stub::ListVolumes, lreq, &page2).error_code() ==
          StatusCode::ABORTED);
  }
  lreq.set_starting_token("");
  lreq.set_max_entries(-1);
  CHECK(call(*f.h.controller, &v1::Controller::Stub::ListVolumes, lreq, &page2).error_code() ==
        StatusCode::INVALID_ARGUMENT);

  v1::GetCapacityRequest creq;
  v1::GetCapacityResponse cresp;
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::GetCapacity, creq, &cresp).ok());
  CHECK(cresp.available_capacity() == static_cast<int64_t>(10 * kGiB - 3 * 64 * kMiB));
  CHECK(cresp.has_maximum_volume_size());
  (*creq.mutable_accessible_topology()->mutable_segments())[std::string(kTopologyKey)] = "other";
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::GetCapacity, creq, &cresp).ok());
  CHECK(cresp.available_capacity() == 0);
  creq.clear_accessible_topology();
  (*creq.mutable_parameters())["carina.storage.io/disk-group-name"] = "unknown";
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::GetCapacity, creq, &cresp).ok());
  CHECK(cresp.available_capacity() == 0);
}

TEST_CASE("The volume observer hears every outcome except busy answers", "[unit][csi]") {
  Fixture f;
  const int64_t size = 64 * static_cast<int64_t>(kMiB);
  auto req = createRequest("pvc-obs", size, mountCap("ext4"));
  (*req.mutable_parameters())["csi.storage.k8s.io/pvc/name"] = "data-0";
  (*req.mutable_parameters())["csi.storage.k8s.io/pvc/namespace"] = "db";
  f.backend.pushDevice("/dev/fakedisk-obs");
  f.mounter.addDevice("/dev/fakedisk-obs", static_cast<uint64_t>(size));
  v1::CreateVolumeResponse created;
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::CreateVolume, req, &created).ok());
  const std::string id = created.volume().volume_id();
  auto bigger = createRequest("pvc-obs", 2 * size, mountCap("ext4"));
  CHECK(call(*f.h.controller, &v1::Controller::Stub::CreateVolume, bigger, &created).error_code() ==
        StatusCode::ALREADY_EXISTS);
  v1::ControllerExpandVolumeRequest grow;
  v1::ControllerExpandVolumeResponse grown;
  grow.set_volume_id(id);
  grow.mutable_capacity_range()->set_required_bytes(2 * size);
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::ControllerExpandVolume, grow, &grown).ok());
  grow.mutable_capacity_range()->set_required_bytes(1000 * kGiB);
  CHECK_FALSE(
      call(*f.h.controller, &v1::Controller::Stub::ControllerExpandVolume, grow, &grown).ok());
  REQUIRE(f.deleteVolume(id).ok());
  CHECK(f.observer.lines() ==
        std::vector<std::string>{"created " + id + " pvc-obs pvc=data-0",
                                 "create-failed pvc-obs ALREADY_EXISTS", "expanded " + id,
                                 "expand-failed " + id + " RESOURCE_EXHAUSTED", "deleted " + id});
}

TEST_CASE("ControllerExpandVolume", "[unit][csi]") {
  Fixture f;
  auto vol = f.create("pvc-grow");
  v1::ControllerExpandVolumeRequest req;
  v1::ControllerExpandVolumeResponse resp;
  req.set_volume_id(vol.volume_id());
  CHECK(call(*f.h.controller, &v1::Controller::Stub::ControllerExpandVolume, req, &resp)
            .error_code() == StatusCode::INVALID_ARGUMENT);  // no capacity_range
  req.mutable_capacity_range()->set_required_bytes(128 * kMiB);
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::ControllerExpandVolume, req, &resp).ok());
  CHECK(resp.capacity_bytes() == static_cast<int64_t>(128 * kMiB));
  CHECK(resp.node_expansion_required());
  // Already that large: OK, unchanged.
  req.mutable_capacity_range()->set_required_bytes(100 * kMiB);
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::ControllerExpandVolume, req, &resp).ok());
  CHECK(resp.capacity_bytes() == static_cast<int64_t>(128 * kMiB));
  // Block volumes need no node step.
  *req.mutable_volume_capability() = blockCap();
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::ControllerExpandVolume, req, &resp).ok());
  CHECK_FALSE(resp.node_expansion_required());
  req.clear_volume_capability();
  req.mutable_capacity_range()->set_limit_bytes(50 * kMiB);
  CHECK(call(*f.h.controller, &v1::Controller::Stub::ControllerExpandVolume, req, &resp)
            .error_code() == StatusCode::OUT_OF_RANGE);
  req.mutable_capacity_range()->set_limit_bytes(0);
  *req.mutable_volume_capability() = mountCap("", AccessMode::MULTI_NODE_MULTI_WRITER);
  CHECK(call(*f.h.controller, &v1::Controller::Stub::ControllerExpandVolume, req, &resp)
            .error_code() == StatusCode::INVALID_ARGUMENT);
  req.clear_volume_capability();
  req.set_volume_id("carina-nope");
  CHECK(call(*f.h.controller, &v1::Controller::Stub::ControllerExpandVolume, req, &resp)
            .error_code() == StatusCode::NOT_FOUND);
  req.mutable_capacity_range()->set_required_bytes(100 * static_cast<int64_t>(kGiB));
  req.set_volume_id(vol.volume_id());
  CHECK(call(*f.h.controller, &v1::Controller::Stub::ControllerExpandVolume, req, &resp)
            .error_code() == StatusCode::RESOURCE_EXHAUSTED);
}

TEST_CASE("ControllerExpandVolume of a volume elsewhere defers to the node when configured",
          "[unit][csi]") {
  Fixture f([](csi::ServiceOptions& o) { o.expand_unknown_on_node = true; });
  v1::ControllerExpandVolumeRequest req;
  v1::ControllerExpandVolumeResponse resp;
  req.set_volume_id("carina-elsewhere");
  req.mutable_capacity_range()->set_required_bytes(kGiB);
  REQUIRE(call(*f.h.controller, &v1::Controller::Stub::ControllerExpandVolume, req, &resp).ok());
  CHECK(resp.node_expansion_required());
  CHECK(resp.capacity_bytes() == static_cast<int64_t>(kGiB));
}

TEST_CASE("Node: stage, publish, unpublish, unstage with idempotent repeats", "[unit][csi]") {
  Fixture f;
  auto vol = f.create("pvc-node");
  const auto id = vol.volume_id();
  const auto staging = f.h.stagingDir("n");
  const auto target = f.h.podDir("p1") + "/vol";
  REQUIRE(f.stage(id, staging).ok());
  REQUIRE(f.stage(id, staging).ok());  // repeat
  CHECK(f.runner.count("mkfs.ext4") == 1);
  REQUIRE(f.publish(id, staging, target).ok());
  REQUIRE(f.publish(id, staging, target).ok());  // repeat
  CHECK(std::filesystem::is_directory(target));
  CHECK(f.publish(id, staging, target, /*readonly=*/true).error_code() ==
        StatusCode::ALREADY_EXISTS);
  // Stats on the published path.
  v1::NodeGetVolumeStatsRequest sreq;
  sreq.set_volume_id(id);
  sreq.set_volume_path(target);
  v1::NodeGetVolumeStatsResponse sresp;
  REQUIRE(call(*f.h.node, &v1::Node::Stub::NodeGetVolumeStats, sreq, &sresp).ok());
  REQUIRE(sresp.usage_size() == 2);
  CHECK(sresp.usage(0).unit() == v1::VolumeUsage::BYTES);
  CHECK(sresp.usage(0).total() > 0);
  CHECK(sresp.usage(1).unit() == v1::VolumeUsage::INODES);
  CHECK_FALSE(sresp.volume_condition().abnormal());
  // Unstage while published is refused.
  CHECK(f.unstage(id, staging).error_code() == StatusCode::FAILED_PRECONDITION);
  REQUIRE(f.unpublish(id, target).ok());
  CHECK_FALSE(std::filesystem::exists(target));
  REQUIRE(f.unpublish(id, target).ok());  // repeat
  REQUIRE(f.unstage(id, staging).ok());
  REQUIRE(f.unstage(id, staging).ok());  // repeat
  CHECK(f.mounter.mounts().empty());
  // The device gone: abnormal condition.
  REQUIRE(f.stage(id, staging).ok());
  f.mounter.removeDevice(vol.volume_context().at("carina.storage.io/device"));
  sreq.set_volume_path(staging);
  REQUIRE(call(*f.h.node, &v1::Node::Stub::NodeGetVolumeStats, sreq, &sresp).ok());
  CHECK(sresp.volume_condition().abnormal());
}

TEST_CASE("Node: block volumes are bound onto files", "[unit][csi]") {
  Fixture f;
  auto vol = f.create("pvc-block", blockCap());
  const auto id = vol.volume_id();
  const auto staging = f.h.stagingDir("b");
  const auto target = f.h.podDir("pb") + "/dev";
  REQUIRE(f.stage(id, staging, blockCap()).ok());
  REQUIRE(f.stage(id, staging, blockCap()).ok());
  CHECK(f.runner.count("mkfs.ext4") == 0);
  CHECK(f.runner.count("blkid") == 0);
  REQUIRE(f.publish(id, staging, target, false, blockCap()).ok());
  CHECK(std::filesystem::is_regular_file(target));
  REQUIRE(f.publish(id, staging, target, false, blockCap()).ok());
  v1::NodeGetVolumeStatsRequest sreq;
  sreq.set_volume_id(id);
  sreq.set_volume_path(target);
  v1::NodeGetVolumeStatsResponse sresp;
  REQUIRE(call(*f.h.node, &v1::Node::Stub::NodeGetVolumeStats, sreq, &sresp).ok());
  REQUIRE(sresp.usage_size() == 1);
  CHECK(sresp.usage(0).total() == 64 * static_cast<int64_t>(kMiB));
  REQUIRE(f.unpublish(id, target).ok());
  CHECK_FALSE(std::filesystem::exists(target));
  REQUIRE(f.unstage(id, staging).ok());
  CHECK_FALSE(std::filesystem::exists(staging + "/block"));
  CHECK(f.mounter.mounts().empty());
}

TEST_CASE("Node: the spec's error codes", "[unit][csi]") {
  Fixture f;
  auto vol = f.create("pvc-err");
  const auto id = vol.volume_id();
  const auto staging = f.h.stagingDir("e");
  const auto target = f.h.podDir("pe") + "/vol";
  SECTION("NodeStage: missing fields, bad paths → INVALID_ARGUMENT") {
    CHECK(f.stage("", staging).error_code() == StatusCode::INVALID_ARGUMENT);
    CHECK(f.stage(id, "").error_code() == StatusCode::INVALID_ARGUMENT);
    CHECK(f.stage(id, "/etc/x").error_code() == StatusCode::INVALID_ARGUMENT);
    CHECK(f.stage(id, staging + "/../../x").error_code() == StatusCode::INVALID_ARGUMENT);
    CHECK(f.stage(id, staging, v1::VolumeCapability()).error_code() ==
          StatusCode::INVALID_ARGUMENT);
  }
  SECTION("NodeStage: symlink out of the kubelet dir → INVALID_ARGUMENT") {
    std::filesystem::create_directory_symlink("/tmp", f.h.kubeletDir() + "/escape");
    CHECK(f.stage(id, f.h.kubeletDir() + "/escape/x").error_code() == StatusCode::INVALID_ARGUMENT);
  }
  SECTION("NodeStage: unknown volume → NOT_FOUND") {
    CHECK(f.stage("carina-nope", staging).error_code() == StatusCode::NOT_FOUND);
  }
  SECTION("NodeStage: device gone → NOT_FOUND") {
    f.mounter.removeDevice(vol.volume_context().at("carina.storage.io/device"));
    CHECK(f.stage(id, staging).error_code() == StatusCode::NOT_FOUND);
  }
  SECTION("NodeStage: exceeds capabilities → FAILED_PRECONDITION") {
    CHECK(f.stage(id, staging, mountCap("", AccessMode::MULTI_NODE_MULTI_WRITER)).error_code() ==
          StatusCode::FAILED_PRECONDITION);
  }
  SECTION("NodeStage: staged with another fs → ALREADY_EXISTS") {
    REQUIRE(f.stage(id, staging).ok());
    CHECK(f.stage(id, staging, mountCap("xfs")).error_code() == StatusCode::ALREADY_EXISTS);
  }
  SECTION("NodeStage: a device with another filesystem is never reformatted") {
    f.runner.setFilesystem(vol.volume_context().at("carina.storage.io/device"), "xfs");
    auto st = f.stage(id, staging);
    CHECK(st.error_code() == StatusCode::FAILED_PRECONDITION);
    CHECK(st.error_message().find("never reformatted") != std::string::npos);
    CHECK(f.runner.count("mkfs.ext4") == 0);
  }
  SECTION("NodeStage: a partition table on the device is never overwritten") {
    f.runner.on("blkid", {0, "DEVNAME=/dev/x\nPTTYPE=gpt\n", ""});
    auto st = f.stage(id, staging);
    CHECK(st.error_code() == StatusCode::FAILED_PRECONDITION);
    CHECK(st.error_message().find("gpt partition table") != std::string::npos);
    CHECK(f.runner.count("mkfs.ext4") == 0);
  }
  SECTION("NodeStage: a partition's own GPT entry (PART_ENTRY_*) counts as blank") {
    f.runner.on("blkid",
                {0, "DEVNAME=/dev/x\nPART_ENTRY_SCHEME=gpt\nPART_ENTRY_NAME=carina-1\n", ""});
    REQUIRE(f.stage(id, staging).ok());
    CHECK(f.runner.count("mkfs.ext4") == 1);
  }
  SECTION("NodePublish: not staged or no staging path → FAILED_PRECONDITION") {
    CHECK(f.publish(id, staging, target).error_code() == StatusCode::FAILED_PRECONDITION);
    CHECK(f.publish(id, "", target).error_code() == StatusCode::FAILED_PRECONDITION);
    CHECK_FALSE(std::filesystem::exists(target));
  }
  SECTION("NodePublish: unknown volume → NOT_FOUND; bad target → INVALID_ARGUMENT") {
    CHECK(f.publish("carina-nope", staging, target).error_code() == StatusCode::NOT_FOUND);
    CHECK(f.publish(id, staging, "relative").error_code() == StatusCode::INVALID_ARGUMENT);
    CHECK(f.publish(id, staging, staging).error_code() == StatusCode::INVALID_ARGUMENT);
  }
  SECTION("NodePublish: SINGLE_NODE_SINGLE_WRITER at a second target → FAILED_PRECONDITION") {
    const auto cap = mountCap("ext4", AccessMode::SINGLE_NODE_SINGLE_WRITER);
    REQUIRE(f.stage(id, staging, cap).ok());
    REQUIRE(f.publish(id, staging, target, false, cap).ok());
    const auto target2 = f.h.podDir("pe2") + "/vol";
    CHECK(f.publish(id, staging, target2, false, cap).error_code() ==
          StatusCode::FAILED_PRECONDITION);
    // SINGLE_NODE_MULTI_WRITER may be published twice on the node.
    const auto multi = mountCap("ext4", AccessMode::SINGLE_NODE_MULTI_WRITER);
    CHECK(f.publish(id, staging, target2, false, multi).ok());
  }
  SECTION("NodeUnpublish / NodeUnstage / NodeGetVolumeStats: unknown volume → NOT_FOUND") {
    CHECK(f.unpublish("carina-nope", target).error_code() == StatusCode::NOT_FOUND);
    CHECK(f.unstage("carina-nope", staging).error_code() == StatusCode::NOT_FOUND);
    v1::NodeGetVolumeStatsRequest req;
    req.set_volume_id("carina-nope");
    req.set_volume_path(staging);
    v1::NodeGetVolumeStatsResponse resp;
    CHECK(call(*f.h.node, &v1::Node::Stub::NodeGetVolumeStats, req, &resp).error_code() ==
          StatusCode::NOT_FOUND);
    req.set_volume_id(id);
    req.set_volume_path(target);  // does not exist
    CHECK(call(*f.h.node, &v1::Node::Stub::NodeGetVolumeStats, req, &resp).error_code() ==
          StatusCode::NOT_FOUND);
    req.set_volume_path("");
    CHECK(call(*f.h.node, &v1::Node::Stub::NodeGetVolumeStats, req, &resp).error_code() ==
          StatusCode::INVALID_ARGUMENT);
  }
  SECTION(
      "NodeExpand: exceeds capabilities → INVALID_ARGUMENT; unknown → NOT_FOUND; "
      "bad range → OUT_OF_RANGE") {
    REQUIRE(f.stage(id, staging).ok());
    v1::NodeExpandVolumeRequest req;
    v1::NodeExpandVolumeResponse resp;
    req.set_volume_id(id);
    req.set_volume_path(staging);
    *req.mutable_volume_capability() = mountCap("", AccessMode::MULTI_NODE_MULTI_WRITER);
    CHECK(call(*f.h.node, &v1::Node::Stub::NodeExpandVolume, req, &resp).error_code() ==
          StatusCode::INVALID_ARGUMENT);
    req.clear_volume_capability();
    req.mutable_capacity_range()->set_required_bytes(10 * kMiB);
    req.mutable_capacity_range()->set_limit_bytes(5 * kMiB);
    CHECK(call(*f.h.node, &v1::Node::Stub::NodeExpandVolume, req, &resp).error_code() ==
          StatusCode::OUT_OF_RANGE);
    req.clear_capacity_range();
    req.set_volume_id("carina-nope");
    CHECK(call(*f.h.node, &v1::Node::Stub::NodeExpandVolume, req, &resp).error_code() ==
          StatusCode::NOT_FOUND);
  }
}

TEST_CASE("NodeExpandVolume grows the device, then the filesystem", "[unit][csi]") {
  Fixture f;
  auto vol = f.create("pvc-nexp");
  const auto id = vol.volume_id();
  const auto staging = f.h.stagingDir("x");
  REQUIRE(f.stage(id, staging).ok());
  v1::NodeExpandVolumeRequest req;
  v1::NodeExpandVolumeResponse resp;
  req.set_volume_id(id);
  req.set_volume_path(staging);
  req.mutable_capacity_range()->set_required_bytes(96 * kMiB);
  f.backend.setOnExpand(
      [&](const storage::Volume& v) { f.mounter.setDeviceSize(v.device, v.size_bytes); });
  REQUIRE(call(*f.h.node, &v1::Node::Stub::NodeExpandVolume, req, &resp).ok());
  CHECK(resp.capacity_bytes() == static_cast<int64_t>(96 * kMiB));
  CHECK(f.runner.count("resize2fs") == 1);
  // resize2fs refused by the kernel (no CAP_SYS_RESOURCE): a clear FAILED_PRECONDITION.
  f.runner.on("resize2fs", {1, "", "resize2fs: Permission denied to resize filesystem"});
  auto st = call(*f.h.node, &v1::Node::Stub::NodeExpandVolume, req, &resp);
  CHECK(st.error_code() == StatusCode::FAILED_PRECONDITION);
  CHECK(st.error_message().find("CAP_SYS_RESOURCE") != std::string::npos);
  // Any other failure is INTERNAL with the tool's message.
  f.runner.on("resize2fs", {1, "", "resize2fs: bad superblock"});
  st = call(*f.h.node, &v1::Node::Stub::NodeExpandVolume, req, &resp);
  CHECK(st.error_code() == StatusCode::INTERNAL);
  CHECK(st.error_message().find("bad superblock") != std::string::npos);
}

TEST_CASE("NodeStageVolume failure matrix: blkid, mkfs, mount", "[unit][csi]") {
  // Steps: blkid (runner call 0), mkfs (runner call 1), mount (mounter call 0). Each failure
  // gives INTERNAL, leaves nothing mounted, and a retry succeeds without formatting twice.
  for (int step = 0; step < 3; ++step) {
    CAPTURE(step);
    Fixture f;
    auto vol = f.create("pvc-matrix");
    const auto id = vol.volume_id();
    const auto staging = f.h.stagingDir("m");
    if (step < 2) {
      f.runner.failAt(step);
    } else {
      f.mounter.failAt(0);
    }
    auto st = f.stage(id, staging);
    CHECK(st.error_code() == StatusCode::INTERNAL);
    CHECK(f.mounter.mounts().empty());
    REQUIRE(f.stage(id, staging).ok());
    CHECK(f.runner.count("mkfs.ext4") == (step == 1 ? 2U : 1U));
    CHECK(f.mounter.mounts().size() == 1);
  }
}

TEST_CASE("A second operation on a busy volume gets ABORTED at once", "[unit][csi]") {
  Fixture f;
  std::promise<void> entered;
  std::promise<void> release;
  auto release_future = release.get_future().share();
  std::atomic<bool> first{true};
  f.backend.setCreateHook([&](const storage::VolumeSpec&) {
    if (first.exchange(false)) {
      entered.set_value();
      release_future.wait();
    }
  });
  f.backend.pushDevice("/dev/fakedisk-busy");
  auto slow = std::async(std::launch::async, [&] {
    v1::CreateVolumeResponse resp;
    return call(*f.h.controller, &v1::Controller::Stub::CreateVolume,
                createRequest("pvc-busy", kMiB), &resp);
  });
  entered.get_future().wait();
  v1::CreateVolumeResponse resp;
  CHECK(call(*f.h.controller, &v1::Controller::Stub::CreateVolume, createRequest("pvc-busy", kMiB),
             &resp)
            .error_code() == StatusCode::ABORTED);
  const auto id = storage::volumeIdForName("pvc-busy");
  CHECK(f.deleteVolume(id).error_code() == StatusCode::ABORTED);
  // Another volume is not blocked.
  f.backend.setCreateHook({});
  CHECK(call(*f.h.controller, &v1::Controller::Stub::CreateVolume, createRequest("pvc-other", kMiB),
             &resp)
            .ok());
  release.set_value();
  CHECK(slow.get().ok());
  CHECK(f.deleteVolume(id).ok());
}

TEST_CASE("A node operation on a busy volume gets ABORTED at once", "[unit][csi]") {
  Fixture f;
  auto vol = f.create("pvc-nbusy");
  const auto id = vol.volume_id();
  const auto staging = f.h.stagingDir("nb");
  std::promise<void> entered;
  std::promise<void> release;
  auto release_future = release.get_future().share();
  std::atomic<bool> first{true};
  f.runner.setHook([&](const std::vector<std::string>&) {
    if (first.exchange(false)) {
      entered.set_value();
      release_future.wait();
    }
  });
  auto slow = std::async(std::launch::async, [&] { return f.stage(id, staging); });
  entered.get_future().wait();
  CHECK(f.stage(id, staging).error_code() == StatusCode::ABORTED);
  CHECK(f.unstage(id, staging).error_code() == StatusCode::ABORTED);
  release.set_value();
  CHECK(slow.get().ok());
}

TEST_CASE("NodeGetInfo and NodeGetCapabilities", "[unit][csi]") {
  Fixture f;
  v1::NodeGetInfoResponse info;
  REQUIRE(call(*f.h.node, &v1::Node::Stub::NodeGetInfo, v1::NodeGetInfoRequest(), &info).ok());
  CHECK(info.node_id() == kTestNode);
  CHECK(info.max_volumes_per_node() == 100);
  CHECK(info.accessible_topology().segments().at(std::string(kTopologyKey)) == kTestNode);
  v1::NodeGetCapabilitiesResponse caps;
  REQUIRE(
      call(*f.h.node, &v1::Node::Stub::NodeGetCapabilities, v1::NodeGetCapabilitiesRequest(), &caps)
          .ok());
  std::set<int> types;
  for (const auto& c : caps.capabilities()) {
    types.insert(c.rpc().type());
  }
  CHECK(types.count(v1::NodeServiceCapability::RPC::STAGE_UNSTAGE_VOLUME) == 1);
  CHECK(types.count(v1::NodeServiceCapability::RPC::GET_VOLUME_STATS) == 1);
  CHECK(types.count(v1::NodeServiceCapability::RPC::EXPAND_VOLUME) == 1);
  CHECK(types.count(v1::NodeServiceCapability::RPC::VOLUME_CONDITION) == 1);
}

TEST_CASE("CsiServer refuses a non-socket endpoint and a bad endpoint", "[unit][csi]") {
  TempDir dir;
  FakeVolumeBackend backend;
  FakeMounter mounter;
  FakeCommandRunner runner;
  boost::asio::io_context io;
  boost::asio::thread_pool pool(1);
  csi::ServiceOptions opts;
  opts.node_name = "n";
  opts.kubelet_dir = dir.path();
  const std::string file = dir.file("not-a-socket");
  { std::ofstream(file) << "data"; }
  opts.endpoint = "unix://" + file;
  auto s = csi::CsiServer::start({opts, backend, mounter, runner, io.get_executor(), pool, {}});
  CHECK(s.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::filesystem::is_regular_file(file));  // left alone
  opts.endpoint = "tcp://127.0.0.1:1";
  s = csi::CsiServer::start({opts, backend, mounter, runner, io.get_executor(), pool, {}});
  CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
  opts.endpoint = "unix://relative.sock";
  s = csi::CsiServer::start({opts, backend, mounter, runner, io.get_executor(), pool, {}});
  CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
  opts.endpoint = "unix://" + dir.file("ok.sock");
  opts.node_name = "";
  s = csi::CsiServer::start({opts, backend, mounter, runner, io.get_executor(), pool, {}});
  CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
  pool.join();
}

TEST_CASE("CsiServer: socket mode 0600, stale socket replaced, live socket refused",
          "[unit][csi]") {
  FakeVolumeBackend backend;
  FakeMounter mounter;
  FakeCommandRunner runner;
  std::string path;
  {
    CsiHarness h(backend, mounter, runner);
    path = h.socketPath();
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    // A second server on the same live socket is refused.
    boost::asio::io_context io;
    boost::asio::thread_pool pool(1);
    csi::ServiceOptions opts;
    opts.node_name = "n";
    opts.kubelet_dir = h.kubeletDir();
    opts.endpoint = "unix://" + path;
    auto s = csi::CsiServer::start({opts, backend, mounter, runner, io.get_executor(), pool, {}});
    CHECK(s.status().code() == absl::StatusCode::kFailedPrecondition);
    pool.join();
  }
  CHECK_FALSE(std::filesystem::exists(path));  // removed on shutdown
  // A stale socket (nobody listening) is replaced.
  TempDir dir;
  const std::string stale = dir.file("stale.sock");
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, stale.c_str(), sizeof(addr.sun_path) - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);  // NOLINT
  ::close(fd);
  boost::asio::io_context io;
  boost::asio::thread_pool pool(1);
  csi::ServiceOptions opts;
  opts.node_name = "n";
  opts.kubelet_dir = dir.path();
  opts.endpoint = "unix://" + stale;
  auto s = csi::CsiServer::start({opts, backend, mounter, runner, io.get_executor(), pool, {}});
  REQUIRE(s.ok());
  (*s)->shutdown(std::chrono::seconds(1));
  pool.join();
}

}  // namespace
}  // namespace carina::test
