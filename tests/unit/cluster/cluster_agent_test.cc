// ClusterAgent against the stand-in API server (real client over TLS on loopback) and a fake
// volume backend: NodeStorageResource publishing, LogicVolumes following CSI outcomes, Events,
// node labels (and their cache), and the extender's view fed from the informers.

#include "agent/cluster/cluster_agent.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <catch2/catch.hpp>

#include "agent/core/constants.h"
#include "csi/volume_locks.h"
#include "k8s-client/json_codec.h"
#include "k8s-client/kube_client.h"
#include "tests/fakes/fake_volume_backend.h"
#include "tests/k8s_server/fake_api_server.h"
#include "tests/support/test_support.h"

namespace {

namespace net = boost::asio;
namespace k8s = carina::k8s;
namespace cluster = carina::cluster;
using carina::kGiB;
using carina::test::FakeApiServer;
using carina::test::FakeVolumeBackend;
using namespace std::chrono_literals;

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 20s) {
  return carina::test::eventually(pred, timeout, 20ms);
}

template <class T>
std::optional<T> stored(FakeApiServer& server, const std::string& ns, const std::string& name) {
  auto json = server.object(T::kResource, ns, name);
  if (!json) {
    return std::nullopt;
  }
  auto obj = k8s::decodeAs<T>(*json);
  REQUIRE(obj.ok());
  return *obj;
}

/** The agent, its io thread, pool, client and fakes, torn down in order. */
struct Rig {
  explicit Rig(FakeApiServer& s) : server(s), backend({{"raw", 10 * kGiB}}) {
    auto client = k8s::makeKubeClient(net::make_strand(ioc), server.clientConfig());
    REQUIRE(client.ok());
    api = std::move(*client);
    io = std::thread([this] { ioc.run(); });
  }
  ~Rig() {
    if (agent) {
      agent->stop();
      eventually([&] { return agent->stopped(); }, 10s);
    }
    work.reset();
    ioc.stop();
    io.join();
    pool.join();
  }

  /** Starts the agent; the orphan reconciler only when @p orphans (every 100 ms, no grace). */
  void start(cluster::ClusterAgentOptions options = {}, bool orphans = false) {
    options.node_name = "n1";
    options.state_dir = dir.path();
    options.tick = 20ms;
    options.resync = 1s;
    options.liveness = 200ms;
    options.max_backoff = 200ms;
    options.orphans.enabled = orphans;
    options.orphans.interval = 100ms;
    options.orphans.grace = 0ms;
    agent = std::make_unique<cluster::ClusterAgent>(
        cluster::ClusterAgentDeps{
            ioc.get_executor(), pool, *api, backend, view,
            [this](const std::map<std::string, std::string>& l) {
              std::lock_guard<std::mutex> lock(mu);
              labels = l;
              ++label_calls;
            },
            // Fake devices are never in use.
            [](const std::string&) -> absl::StatusOr<cluster::DeviceUseAnswer> {
              return cluster::DeviceUseAnswer{false, ""};
            },
            &locks},
        options);
    REQUIRE(agent->start().ok());
  }

  std::map<std::string, std::string> seenLabels() {
    std::lock_guard<std::mutex> lock(mu);
    return labels;
  }

  FakeApiServer& server;
  carina::test::TempDir dir;
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
  net::thread_pool pool{2};
  std::unique_ptr<k8s::KubeClient> api;
  FakeVolumeBackend backend;
  carina::extender::InMemoryClusterView view;
  carina::csi::VolumeLocks locks;  // as the CSI services would share them
  std::unique_ptr<cluster::ClusterAgent> agent;
  std::thread io;
  std::mutex mu;
  std::map<std::string, std::string> labels;
  int label_calls = 0;
};

}  // namespace

TEST_CASE("ClusterAgent publishes the NodeStorageResource and follows CSI outcomes",
          "[unit][cluster]") {
  FakeApiServer server;
  REQUIRE(server
              .upsert(k8s::Node::kResource,
                      R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1",)"
                      R"("labels":{"disk":"fast"}}})")
              .ok());
  Rig rig(server);
  rig.start();

  // Published at start, content from the inventory.
  REQUIRE(eventually([&] { return rig.agent->published(); }));
  auto nsr = stored<k8s::NodeStorageResource>(server, "", "n1");
  REQUIRE(nsr.has_value());
  CHECK(nsr->node_name == "n1");
  REQUIRE(nsr->groups.size() == 1);
  CHECK(nsr->groups[0].name == "raw");
  CHECK(nsr->groups[0].free_bytes == 10 * kGiB);

  // Owned by its Node, so that deleting the Node deletes it.
  auto node_obj = stored<k8s::Node>(server, "", "n1");
  REQUIRE(node_obj.has_value());
  REQUIRE_FALSE(node_obj->metadata.uid.empty());
  CHECK(eventually([&] {
    auto n = stored<k8s::NodeStorageResource>(server, "", "n1");
    return n && n->metadata.owner_references.size() == 1 &&
           n->metadata.owner_references[0].kind == "Node" &&
           n->metadata.owner_references[0].name == "n1" &&
           n->metadata.owner_references[0].uid == node_obj->metadata.uid &&
           n->metadata.owner_references[0].api_version == "v1";
  }));

  // Labels reach discovery and are cached for the next start.
  REQUIRE(eventually([&] { return rig.seenLabels().count("disk") == 1; }));
  CHECK(cluster::ClusterAgent::loadCachedLabels(rig.dir.path()) ==
        std::map<std::string, std::string>{{"disk", "fast"}});

  // A volume created through CSI: LogicVolume with the PVC; the NSR follows.
  rig.backend.pushDevice("/dev/fake1");
  carina::storage::VolumeSpec spec;
  spec.name = "pv-1";
  spec.required_bytes = kGiB;
  auto vol = rig.backend.createVolume(spec);
  REQUIRE(vol.ok());
  rig.agent->volumeCreated(
      vol->id, "pv-1",
      {{"csi.storage.k8s.io/pvc/name", "data-0"}, {"csi.storage.k8s.io/pvc/namespace", "db"}});
  REQUIRE(eventually([&] {
    auto lv = stored<k8s::LogicVolume>(server, "", vol->id);
    return lv && lv->phase == "Created";
  }));
  auto lv = stored<k8s::LogicVolume>(server, "", vol->id);
  CHECK(lv->node_name == "n1");
  CHECK(lv->pvc_namespace == "db");
  CHECK(lv->pvc_name == "data-0");
  CHECK(lv->size_bytes == kGiB);
  CHECK(lv->device == "/dev/fake1");
  CHECK(lv->metadata.labels.at("carina.storage.io/node") == "n1");
  rig.agent->inventoryChanged();
  CHECK(eventually([&] {
    auto n = stored<k8s::NodeStorageResource>(server, "", "n1");
    return n && n->groups.size() == 1 && n->groups[0].free_bytes == 9 * kGiB;
  }));

  // Someone deletes our NodeStorageResource: published again.
  REQUIRE(server.erase(k8s::NodeStorageResource::kResource, "", "n1").ok());
  CHECK(eventually([&] { return stored<k8s::NodeStorageResource>(server, "", "n1").has_value(); }));

  // A failed CreateVolume is an Event on the PVC.
  rig.agent->createFailed(
      "pv-2",
      {{"csi.storage.k8s.io/pvc/name", "data-1"}, {"csi.storage.k8s.io/pvc/namespace", "db"}},
      absl::ResourceExhaustedError("no space on group raw"));
  CHECK(eventually([&] {
    for (const auto& json : server.objects(k8s::Event::kResource)) {
      auto e = k8s::decodeAs<k8s::Event>(json);
      if (e.ok() && e->reason == "ProvisioningFailed" && e->involved_object.name == "data-1" &&
          e->involved_object.namespace_ == "db" && e->type == "Warning" &&
          e->message.find("no space on group raw") != std::string::npos) {
        return true;
      }
    }
    return false;
  }));

  // Deleted volume: its LogicVolume goes too.
  REQUIRE(rig.backend.deleteVolume(vol->id).ok());
  rig.agent->volumeDeleted(vol->id);
  CHECK(eventually([&] { return !stored<k8s::LogicVolume>(server, "", vol->id).has_value(); }));
  // The server drops the object before the agent has read the reply and counted it.
  CHECK(eventually([&] { return rig.agent->stats().lv_deletes == 1; }));
  CHECK(rig.agent->stats().nsr_writes >= 2);
}

TEST_CASE("ClusterAgent feeds the extender's view from the informers", "[unit][cluster]") {
  FakeApiServer server;
  Rig rig(server);
  rig.start();
  REQUIRE(server
              .upsert(k8s::StorageClass::kResource,
                      R"({"apiVersion":"storage.k8s.io/v1","kind":"StorageClass",)"
                      R"("metadata":{"name":"carina-raw"},"provisioner":"carina.storage.io",)"
                      R"("parameters":{"carina.storage.io/disk-group-name":"raw"}})")
              .ok());
  REQUIRE(server
              .upsert(k8s::PersistentVolumeClaim::kResource,
                      R"({"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":)"
                      R"({"name":"data-0","namespace":"db","annotations":)"
                      R"({"volume.kubernetes.io/selected-node":"n2"}},"spec":)"
                      R"({"storageClassName":"carina-raw","resources":{"requests":)"
                      R"({"storage":"1Gi"}}}})")
              .ok());
  REQUIRE(server
              .upsert(k8s::NodeStorageResource::kResource,
                      R"({"apiVersion":"carina.storage.io/v1","kind":"NodeStorageResource",)"
                      R"("metadata":{"name":"n2"},"spec":{"nodeName":"n2"},"status":{"groups":)"
                      R"([{"name":"raw","policy":"RAW","totalBytes":1073741824,)"
                      R"("freeBytes":1073741824,"largestAllocatableBytes":1073741824,)"
                      R"("emptyDisks":1,"disks":[{"name":"sdb","sizeBytes":1073741824,)"
                      R"("freeSegments":[{"start":1048576,"length":1071644672}],)"
                      R"("partitions":0,"exclusive":false}]}]}})")
              .ok());
  REQUIRE(eventually([&] { return rig.agent->cachesSynced(); }));
  CHECK(eventually([&] { return rig.view.nodeSupply("n2") != nullptr; }));
  CHECK(eventually([&] { return rig.view.storageClass("carina-raw").has_value(); }));
  CHECK(eventually([&] { return rig.view.claim("db", "data-0").has_value(); }));
  CHECK(rig.view.claim("db", "data-0")->request_bytes == kGiB);
  CHECK(rig.view.promisedClaims("n2").size() == 1);
  auto supply = rig.view.nodeSupply("n2");
  REQUIRE(supply != nullptr);
  REQUIRE(supply->groups.size() == 1);
  CHECK(supply->groups[0].disks.at(0).free.at(0).length == 1071644672u);
  // Our own NSR does not overwrite the local supply the app sets from the live inventory.
  CHECK(eventually([&] { return rig.agent->published(); }));
  CHECK(rig.view.nodeSupply("n1") == nullptr);
  // Deleted in the API: gone from the view.
  REQUIRE(server.erase(k8s::NodeStorageResource::kResource, "", "n2").ok());
  CHECK(eventually([&] { return rig.view.nodeSupply("n2") == nullptr; }));
}

TEST_CASE("ClusterAgent: an unreachable API server loses nothing", "[unit][cluster]") {
  FakeApiServer server;
  Rig rig(server);
  server.failNextRequests(1 << 30, 503);
  rig.start();
  rig.backend.pushDevice("/dev/fake9");
  carina::storage::VolumeSpec spec;
  spec.name = "pv-9";
  spec.required_bytes = kGiB;
  auto vol = rig.backend.createVolume(spec);
  REQUIRE(vol.ok());
  rig.agent->volumeCreated(vol->id, "pv-9", {});
  std::this_thread::sleep_for(1s);
  CHECK_FALSE(rig.agent->published());
  CHECK_FALSE(rig.agent->stats().api_live);
  CHECK(rig.agent->stats().write_failures > 0);
  server.failNextRequests(0);
  CHECK(eventually([&] { return rig.agent->published(); }));
  CHECK(eventually([&] { return stored<k8s::LogicVolume>(server, "", vol->id).has_value(); }));
  CHECK(eventually([&] { return rig.agent->stats().api_live; }));
}

TEST_CASE("ClusterAgent: the orphan reconciler deletes a volume only under its CSI lock",
          "[unit][cluster]") {
  FakeApiServer server;
  Rig rig(server);
  rig.backend.pushDevice("/dev/fake3");
  carina::storage::VolumeSpec spec;
  spec.name = "pvc-gone";
  spec.required_bytes = kGiB;
  auto vol = rig.backend.createVolume(spec);  // no PV, no LogicVolume: an orphan
  REQUIRE(vol.ok());
  // A CSI call (say a retried CreateVolume of the same name) holds the volume.
  std::optional<carina::csi::VolumeLocks::Guard> held = rig.locks.tryLock(vol->id);
  REQUIRE(held);
  rig.start({}, /*orphans=*/true);
  // Pass after pass the busy volume is kept: not deleted, not a failure.
  REQUIRE(eventually([&] { return rig.agent->stats().orphans.skipped_in_use >= 3; }));
  CHECK(rig.backend.listVolumes().size() == 1);
  CHECK(rig.agent->stats().orphans.volumes_deleted == 0);
  CHECK(rig.agent->stats().orphans.failures == 0);
  // Released: a later pass deletes it.
  held.reset();
  CHECK(eventually([&] { return rig.agent->stats().orphans.volumes_deleted == 1; }));
  CHECK(rig.backend.listVolumes().empty());
  CHECK(rig.agent->stats().orphans.failures == 0);
}

TEST_CASE("ClusterAgent: a NodeStorageResource without its owner gets it, also after re-creation",
          "[unit][cluster]") {
  FakeApiServer server;
  // Written by an older agent: no ownerReferences.
  REQUIRE(server
              .upsert(k8s::NodeStorageResource::kResource,
                      R"({"apiVersion":"carina.storage.io/v1","kind":"NodeStorageResource",)"
                      R"("metadata":{"name":"n1"},"spec":{"nodeName":"n1"}})")
              .ok());
  REQUIRE(server
              .upsert(k8s::Node::kResource,
                      R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}})")
              .ok());
  auto uid = [&] { return stored<k8s::Node>(server, "", "n1")->metadata.uid; };
  auto ownerUid = [&]() -> std::string {
    auto n = stored<k8s::NodeStorageResource>(server, "", "n1");
    if (!n || n->metadata.owner_references.size() != 1) {
      return "";
    }
    return n->metadata.owner_references[0].uid;
  };
  Rig rig(server);
  rig.start();
  CHECK(eventually([&] { return ownerUid() == uid(); }));
  // The Node is re-created (new uid): the reference follows at the next resync.
  REQUIRE(server.erase(k8s::Node::kResource, "", "n1").ok());
  REQUIRE(server
              .upsert(k8s::Node::kResource,
                      R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}})")
              .ok());
  const std::string fresh = uid();
  CHECK(eventually([&] { return ownerUid() == fresh; }));
  CHECK(rig.agent->stats().write_failures == 0);
}
