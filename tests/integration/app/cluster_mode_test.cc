// The agent in cluster mode, as a real process on a loop disk, against the stand-in API server
// (real HTTPS, bearer token, watches) reached through a kubeconfig:
// - CreateVolume → a LogicVolume with the PVC from the request's parameters, and the
//   NodeStorageResource's free segments follow the disk;
// - orphans: nothing is deleted while the PV cache cannot sync; a volume with neither PV nor
//   LogicVolume is deleted after the grace period, with an Event; a mounted one never;
// - the API server down for 30 s: CSI keeps working, nothing is deleted, and afterwards the
//   LogicVolume of the volume created during the outage appears and the NSR catches up.

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>

#include "agent/storage/volume_backend.h"
#include "k8s-client/json_codec.h"
#include "k8s-client/types.h"
#include "tests/integration/app/agent_process.h"
#include "tests/k8s_server/fake_api_server.h"
#include "tests/support/loop_device.h"
#include "tests/support/test_support.h"

namespace {

using carina::test::AgentProcess;
using carina::test::AgentSetup;
using carina::test::FakeApiServer;
using carina::test::LoopDevice;
using carina::test::TempDir;
namespace k8s = carina::k8s;
using namespace std::chrono_literals;

constexpr uint64_t MiB = 1024 * 1024;
constexpr const char* kNode = "it-node";

bool waitFor(const std::function<bool()>& pred, std::chrono::seconds timeout) {
  return carina::test::eventually(pred, timeout, 200ms);
}

template <class T>
std::optional<T> stored(FakeApiServer& server, const std::string& name) {
  auto json = server.object(T::kResource, "", name);
  if (!json) {
    return std::nullopt;
  }
  auto obj = k8s::decodeAs<T>(*json);
  if (!obj.ok()) {
    FAIL("stored " << name << " does not decode: " << obj.status().ToString());
  }
  return *obj;
}

std::vector<k8s::Event> events(FakeApiServer& server) {
  std::vector<k8s::Event> out;
  for (const std::string& json : server.objects(k8s::Event::kResource)) {
    auto e = k8s::decodeAs<k8s::Event>(json);
    REQUIRE(e.ok());
    out.push_back(*e);
  }
  return out;
}

bool hasEvent(FakeApiServer& server, const std::string& reason, const std::string& text) {
  for (const auto& e : events(server)) {
    if (e.reason == reason && e.message.find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::string createVolume(AgentProcess& agent, const std::string& name, const std::string& pvc,
                         bool filesystem) {
  csi::v1::CreateVolumeRequest req;
  req.set_name(name);
  req.mutable_capacity_range()->set_required_bytes(static_cast<int64_t>(64 * MiB));
  auto* cap = req.add_volume_capabilities();
  if (filesystem) {
    cap->mutable_mount()->set_fs_type("ext4");
  } else {
    cap->mutable_block();
  }
  cap->mutable_access_mode()->set_mode(csi::v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  if (!pvc.empty()) {
    (*req.mutable_parameters())["csi.storage.k8s.io/pvc/name"] = pvc;
    (*req.mutable_parameters())["csi.storage.k8s.io/pvc/namespace"] = "default";
  }
  csi::v1::CreateVolumeResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = agent.controller().CreateVolume(&ctx, req, &resp);
  INFO(st.error_message() << "\n" << agent.log());
  REQUIRE(st.ok());
  return resp.volume().volume_id();
}

std::set<std::string> volumeIds(AgentProcess& agent) {
  csi::v1::ListVolumesRequest req;
  csi::v1::ListVolumesResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = agent.controller().ListVolumes(&ctx, req, &resp);
  REQUIRE(st.ok());
  std::set<std::string> out;
  for (const auto& e : resp.entries()) {
    out.insert(e.volume().volume_id());
  }
  return out;
}

uint32_t publishedPartitions(FakeApiServer& server) {
  auto nsr = stored<k8s::NodeStorageResource>(server, kNode);
  if (!nsr || nsr->groups.empty() || nsr->groups[0].disks.empty()) {
    return 0;
  }
  return nsr->groups[0].disks[0].partitions;
}

std::string pvJson(const std::string& name, const std::string& handle, const std::string& pvc) {
  return R"({"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":")" + name +
         R"("},"spec":{"capacity":{"storage":"64Mi"},"accessModes":["ReadWriteOnce"],)"
         R"("csi":{"driver":"carina.storage.io","volumeHandle":")" +
         handle + R"("},"claimRef":{"namespace":"default","name":")" + pvc + R"("}}})";
}

}  // namespace

TEST_CASE("cluster mode: LogicVolumes, NodeStorageResource, orphans and an API outage",
          "[integration][root][cluster]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  TempDir dir;
  LoopDevice disk(1024 * MiB);
  FakeApiServer server;
  REQUIRE(server
              .upsert(k8s::Node::kResource,
                      R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"it-node",)"
                      R"("labels":{"kubernetes.io/hostname":"it-node","disk":"fast"}}})")
              .ok());
  const std::string ca = dir.path() + "/ca.pem";
  std::ofstream(ca) << server.caPem();
  const std::string kubeconfig = dir.path() + "/kubeconfig";
  std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\n"
                            << "clusters:\n- name: it\n  cluster:\n    server: https://127.0.0.1:"
                            << server.port() << "\n    certificate-authority: " << ca << "\n"
                            << "users:\n- name: it\n  user:\n    token: carina-test-token\n"
                            << "contexts:\n- name: it\n  context: {cluster: it, user: it}\n"
                            << "current-context: it\n";
  // The PV cache cannot sync at first: the orphan reconciler must not act.
  server.forbid("list", "persistentvolumes");

  AgentSetup setup;
  setup.dir = dir.path();
  setup.disks = {disk.name()};
  setup.standalone = false;
  setup.extra_yaml = "kubernetes:\n  kubeconfig: " + kubeconfig +
                     "\n  resyncSeconds: 5\n"
                     "reconciler:\n  intervalSeconds: 10\n  gracePeriodSeconds: 3\n";
  AgentProcess agent(setup);
  agent.start();

  // A volume with a PVC (and, as external-provisioner would add, a PV), and one without any.
  const std::string a = createVolume(agent, "pv-a", "data-a", false);
  const std::string b = createVolume(agent, "pv-b", "", false);
  REQUIRE(server.upsert(k8s::PersistentVolume::kResource, pvJson("pv-a", a, "data-a")).ok());

  // The NodeStorageResource is published without the PV cache, and follows the disk.
  CHECK(waitFor([&] { return publishedPartitions(server) == 2; }, 20s));
  {
    auto nsr = stored<k8s::NodeStorageResource>(server, kNode);
    REQUIRE(nsr.has_value());
    CHECK(nsr->node_name == kNode);
    REQUIRE(nsr->groups.size() == 1);
    CHECK(nsr->groups[0].name == "raw");
    CHECK(nsr->groups[0].policy == "RAW");
    CHECK(nsr->groups[0].total_bytes == 1024 * MiB);
    CHECK(nsr->groups[0].free_bytes < (1024 - 128) * MiB + MiB);
    REQUIRE(nsr->groups[0].disks.size() == 1);
    CHECK(nsr->groups[0].disks[0].name == disk.name());
    CHECK_FALSE(nsr->groups[0].disks[0].free_segments.empty());
  }
  // The node's labels were read and cached for a restart during an outage.
  CHECK(waitFor([&] { return std::filesystem::exists(dir.path() + "/state/node-labels.json"); },
                10s));

  // A reconciler pass while the PV cache is unsynced: skipped, nothing deleted.
  CHECK(waitFor([&] { return agent.log().find("caches not synced") != std::string::npos; }, 30s));
  CHECK(volumeIds(agent) == std::set<std::string>{a, b});
  CHECK(stored<k8s::LogicVolume>(server, a) == std::nullopt);  // LogicVolumes wait for the PVs

  // PVs listable again: LogicVolumes appear, with the PVC from the request.
  server.allow("list", "persistentvolumes");
  REQUIRE(waitFor([&] { return stored<k8s::LogicVolume>(server, b).has_value(); }, 40s));
  {
    auto lv = stored<k8s::LogicVolume>(server, a);
    REQUIRE(lv.has_value());
    CHECK(lv->node_name == kNode);
    CHECK(lv->group_name == "raw");
    CHECK(lv->pvc_namespace == "default");
    CHECK(lv->pvc_name == "data-a");
    CHECK(lv->size_bytes >= 64 * MiB);
    CHECK(lv->phase == "Created");
    CHECK(lv->volume_id == a);
  }

  // B loses its LogicVolume: no PV, no LogicVolume → deleted after the grace period.
  REQUIRE(server.erase(k8s::LogicVolume::kResource, "", b).ok());
  REQUIRE(waitFor([&] { return volumeIds(agent).count(b) == 0; }, 60s));
  CHECK(volumeIds(agent).count(a) == 1);
  CHECK(waitFor([&] { return hasEvent(server, "OrphanVolumeDeleted", b); }, 10s));
  CHECK(waitFor([&] { return publishedPartitions(server) == 1; }, 20s));

  // C is mounted (staged) and loses its LogicVolume: never deleted while mounted.
  const std::string c = createVolume(agent, "pv-c", "data-c", true);
  const std::string staging =
      setup.kubeletDir() + "/plugins/kubernetes.io/csi/carina.storage.io/" + c + "/globalmount";
  std::filesystem::create_directories(staging);
  {
    csi::v1::NodeStageVolumeRequest req;
    req.set_volume_id(c);
    req.set_staging_target_path(staging);
    req.mutable_volume_capability()->mutable_mount()->set_fs_type("ext4");
    req.mutable_volume_capability()->mutable_access_mode()->set_mode(
        csi::v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
    csi::v1::NodeStageVolumeResponse resp;
    grpc::ClientContext ctx;
    REQUIRE(agent.node().NodeStageVolume(&ctx, req, &resp).ok());
  }
  REQUIRE(waitFor([&] { return stored<k8s::LogicVolume>(server, c).has_value(); }, 20s));
  REQUIRE(server.erase(k8s::LogicVolume::kResource, "", c).ok());
  CHECK(waitFor([&] { return hasEvent(server, "OrphanVolumeInUse", c); }, 40s));
  CHECK(volumeIds(agent).count(c) == 1);

  // The API server is down for 30 s: CSI still works, nothing is lost.
  server.failNextRequests(1 << 30, 503);
  server.dropConnections();
  const std::string d = createVolume(agent, "pv-d", "data-d", false);
  std::this_thread::sleep_for(30s);
  CHECK(volumeIds(agent) == std::set<std::string>{a, c, d});
  server.failNextRequests(0);
  CHECK(waitFor([&] { return stored<k8s::LogicVolume>(server, d).has_value(); }, 40s));
  CHECK(waitFor([&] { return publishedPartitions(server) == 3; }, 40s));
  if (auto lv = stored<k8s::LogicVolume>(server, d)) {
    CHECK(lv->pvc_name == "data-d");
  }

  // Clean up through CSI (the fixture detaches the disk; the TempDir unmounts what is left).
  {
    csi::v1::NodeUnstageVolumeRequest req;
    req.set_volume_id(c);
    req.set_staging_target_path(staging);
    csi::v1::NodeUnstageVolumeResponse resp;
    grpc::ClientContext ctx;
    CHECK(agent.node().NodeUnstageVolume(&ctx, req, &resp).ok());
  }
  for (const std::string& id : {a, c, d}) {
    csi::v1::DeleteVolumeRequest req;
    req.set_volume_id(id);
    csi::v1::DeleteVolumeResponse resp;
    grpc::ClientContext ctx;
    CHECK(agent.controller().DeleteVolume(&ctx, req, &resp).ok());
  }
  CHECK(waitFor([&] { return !stored<k8s::LogicVolume>(server, d).has_value(); }, 20s));
  agent.stop();
  if (const char* keep = std::getenv("CARINA_TEST_KEEP_LOG"); keep != nullptr && *keep != '\0') {
    std::ofstream(keep) << agent.log();  // for reading the agent's side of a passing run
  }
}
