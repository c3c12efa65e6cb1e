// Informers with the real client against the stand-in API server.

#include "k8s-client/informer.h"

#include <chrono>
#include <map>
#include <string>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "k8s-client/kube_client.h"
#include "tests/k8s_server/fake_api_server.h"
#include "tests/unit/k8s/k8s_test_util.h"

namespace {

namespace net = boost::asio;
using namespace carina::k8s;
using carina::test::FakeApiServer;
using carina::test::FakeApiServerOptions;
using carina::test::runFor;
using carina::test::runUntil;

std::string nodeJson(const std::string& name, const std::string& label = "v0") {
  return R"({"metadata":{"name":")" + name + R"(","labels":{"gen":")" + label + R"("}}})";
}

/** Handler calls per object name, to prove no event is lost or delivered twice. */
struct Recorder {
  std::map<std::string, int> adds, updates, deletes;
  std::map<std::string, std::string> last_label;
  InformerHandlers<Node> handlers() {
    return {
        [this](const Node& n) {
          ++adds[n.metadata.name];
          last_label[n.metadata.name] =
              n.metadata.labels.count("gen") ? n.metadata.labels.at("gen") : "";
        },
        [this](const Node&, const Node& n) {
          ++updates[n.metadata.name];
          last_label[n.metadata.name] =
              n.metadata.labels.count("gen") ? n.metadata.labels.at("gen") : "";
        },
        [this](const Node& n) { ++deletes[n.metadata.name]; },
    };
  }
  static int total(const std::map<std::string, int>& m) {
    int t = 0;
    for (const auto& [k, v] : m) {
      t += v;
    }
    return t;
  }
};

InformerOptions fastOptions() {
  InformerOptions o;
  o.min_backoff = std::chrono::milliseconds(20);
  o.max_backoff = std::chrono::milliseconds(200);
  return o;
}

struct Fixture {
  explicit Fixture(FakeApiServerOptions opts = {}) : server(opts) {
    auto c = makeKubeClient(ioc.get_executor(), server.clientConfig());
    REQUIRE(c.ok());
    client = std::move(*c);
  }
  ~Fixture() {
    // Let informers observe stop() before the client goes away.
    runFor(ioc, std::chrono::milliseconds(50));
  }
  FakeApiServer server;
  net::io_context ioc;
  std::unique_ptr<KubeClient> client;
};

TEST_CASE("informer: list then watch keeps the cache and calls handlers", "[unit][k8s]") {
  Fixture f;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(f.server.upsert(Node::kResource, nodeJson("n" + std::to_string(i))).ok());
  }
  Informer<Node> informer(f.ioc.get_executor(), f.client->nodes(), fastOptions());
  Recorder rec;
  informer.addHandlers(rec.handlers());
  CHECK_FALSE(informer.hasSynced());
  informer.start();
  REQUIRE(runUntil(f.ioc, [&] { return informer.hasSynced(); }));
  CHECK(informer.size() == 3);
  CHECK(Recorder::total(rec.adds) == 3);
  REQUIRE(runUntil(f.ioc, [&] { return f.server.activeWatches() == 1; }));

  REQUIRE(f.server.upsert(Node::kResource, nodeJson("n3")).ok());
  REQUIRE(f.server.upsert(Node::kResource, nodeJson("n0", "v1")).ok());
  REQUIRE(f.server.erase(Node::kResource, "", "n1").ok());
  REQUIRE(runUntil(f.ioc, [&] { return rec.deletes["n1"] == 1; }));
  CHECK(rec.adds["n3"] == 1);
  CHECK(rec.updates["n0"] == 1);
  CHECK(rec.last_label["n0"] == "v1");
  CHECK(informer.size() == 3);
  CHECK(informer.get("", "n1") == nullptr);
  REQUIRE(informer.get("", "n0") != nullptr);
  CHECK(informer.get("", "n0")->metadata.labels.at("gen") == "v1");
  CHECK(informer.stats().resource_version == std::to_string(f.server.resourceVersion()));
  // A write that changes nothing produces no event.
  REQUIRE(f.server.upsert(Node::kResource, nodeJson("n0", "v1")).ok());
  runFor(f.ioc, std::chrono::milliseconds(100));
  CHECK(rec.updates["n0"] == 1);
  informer.stop();
  REQUIRE(runUntil(f.ioc, [&] { return !informer.running(); }));
}

TEST_CASE("informer: bookmarks advance the resume resourceVersion", "[unit][k8s]") {
  Fixture f;
  REQUIRE(f.server.upsert(Node::kResource, nodeJson("n0")).ok());
  // Changes to another resource type move the global RV without events for this watch.
  Informer<Node> informer(f.ioc.get_executor(), f.client->nodes(), fastOptions());
  informer.start();
  REQUIRE(runUntil(f.ioc, [&] { return f.server.activeWatches() == 1; }));
  REQUIRE(f.server
              .upsert(StorageClass::kResource,
                      R"({"metadata":{"name":"sc"},"provisioner":"carina.storage.io"})")
              .ok());
  std::string rv_before = informer.stats().resource_version;
  f.server.sendBookmarks();
  REQUIRE(runUntil(f.ioc, [&] { return informer.stats().bookmarks == 1; }));
  CHECK(informer.stats().resource_version == std::to_string(f.server.resourceVersion()));
  CHECK(informer.stats().resource_version != rv_before);
  CHECK(informer.stats().events == 0);
  informer.stop();
}

TEST_CASE("informer: a dropped watch resumes from the last RV without loss or duplicates",
          "[unit][k8s]") {
  Fixture f;
  for (int i = 0; i < 5; ++i) {
    REQUIRE(f.server.upsert(Node::kResource, nodeJson("n" + std::to_string(i))).ok());
  }
  Informer<Node> informer(f.ioc.get_executor(), f.client->nodes(), fastOptions());
  Recorder rec;
  informer.addHandlers(rec.handlers());
  informer.start();
  REQUIRE(runUntil(f.ioc, [&] { return informer.hasSynced() && f.server.activeWatches() == 1; }));
  for (int round = 0; round < 3; ++round) {
    f.server.dropConnections();
    // Changes while the informer is disconnected (it reconnects after a backoff).
    std::string gen = "r" + std::to_string(round);
    REQUIRE(f.server.upsert(Node::kResource, nodeJson("new" + std::to_string(round))).ok());
    REQUIRE(f.server.upsert(Node::kResource, nodeJson("n0", gen)).ok());
    REQUIRE(f.server.erase(Node::kResource, "", "n" + std::to_string(round + 1)).ok());
    REQUIRE(runUntil(f.ioc, [&] {
      return rec.deletes["n" + std::to_string(round + 1)] == 1 && rec.last_label["n0"] == gen;
    }));
    REQUIRE(runUntil(f.ioc, [&] { return f.server.activeWatches() == 1; }));
  }
  runFor(f.ioc, std::chrono::milliseconds(100));
  CHECK(informer.stats().lists == 1);  // resumed every time, never relisted
  CHECK(informer.stats().watch_errors >= 3);
  CHECK(Recorder::total(rec.adds) == 5 + 3);
  CHECK(rec.updates["n0"] == 3);
  CHECK(Recorder::total(rec.updates) == 3);
  CHECK(Recorder::total(rec.deletes) == 3);
  CHECK(informer.size() == 5);
  CHECK(informer.get("", "new2") != nullptr);
  CHECK(informer.get("", "n3") == nullptr);
  informer.stop();
}

TEST_CASE("informer: 410 Gone triggers a relist that reconciles the cache", "[unit][k8s]") {
  FakeApiServerOptions opts;
  opts.gone_as_http_status = GENERATE(false, true);
  Fixture f(opts);
  for (int i = 0; i < 4; ++i) {
    REQUIRE(f.server.upsert(Node::kResource, nodeJson("n" + std::to_string(i))).ok());
  }
  Informer<Node> informer(f.ioc.get_executor(), f.client->nodes(), fastOptions());
  Recorder rec;
  informer.addHandlers(rec.handlers());
  informer.start();
  REQUIRE(runUntil(f.ioc, [&] { return informer.hasSynced() && f.server.activeWatches() == 1; }));
  // Disconnect, change things, and compact the history so the resume RV is too old.
  f.server.dropConnections();
  REQUIRE(f.server.upsert(Node::kResource, nodeJson("n0", "changed")).ok());
  REQUIRE(f.server.erase(Node::kResource, "", "n1").ok());
  REQUIRE(f.server.upsert(Node::kResource, nodeJson("n9")).ok());
  f.server.compactHistory();
  REQUIRE(runUntil(f.ioc, [&] { return informer.stats().lists == 2; }));
  CHECK(informer.stats().relists_gone == 1);
  CHECK(rec.updates["n0"] == 1);
  CHECK(rec.last_label["n0"] == "changed");
  CHECK(rec.deletes["n1"] == 1);
  CHECK(rec.adds["n9"] == 1);
  CHECK(Recorder::total(rec.updates) == 1);  // unchanged objects are not re-announced
  CHECK(informer.size() == 4);
  // And it watches again after the relist.
  REQUIRE(runUntil(f.ioc, [&] { return f.server.activeWatches() == 1; }));
  REQUIRE(f.server.upsert(Node::kResource, nodeJson("n10")).ok());
  REQUIRE(runUntil(f.ioc, [&] { return rec.adds["n10"] == 1; }));
  informer.stop();
}

TEST_CASE("informer: paged initial list, failing requests retried, periodic resync",
          "[unit][k8s]") {
  Fixture f;
  for (int i = 0; i < 7; ++i) {
    REQUIRE(f.server.upsert(Node::kResource, nodeJson("n" + std::to_string(i))).ok());
  }
  f.server.failNextRequests(2, 503);
  InformerOptions o = fastOptions();
  o.page_size = 3;
  o.resync_period = std::chrono::milliseconds(50);
  Informer<Node> informer(f.ioc.get_executor(), f.client->nodes(), o);
  Recorder rec;
  informer.addHandlers(rec.handlers());
  informer.start();
  REQUIRE(runUntil(f.ioc, [&] { return informer.hasSynced(); }));
  CHECK(informer.size() == 7);
  int pages = 0;
  for (const auto& r : f.server.requests()) {
    if (r.query.find("limit=3") != std::string::npos &&
        r.query.find("watch") == std::string::npos) {
      ++pages;
    }
  }
  CHECK(pages == 2 + 3);  // two injected failures, then three pages
  // Resync re-announces every cached object as an update (old == new).
  REQUIRE(runUntil(f.ioc, [&] { return informer.stats().resyncs >= 2; }));
  CHECK(Recorder::total(rec.updates) >= 7);
  informer.stop();
  REQUIRE(runUntil(f.ioc, [&] { return !informer.running(); }));
}

TEST_CASE("informer: namespaced PVC cache with lookups by namespace", "[unit][k8s]") {
  Fixture f;
  REQUIRE(f.server
              .upsert(PersistentVolumeClaim::kResource,
                      R"({"metadata":{"name":"d","namespace":"a","annotations":{
                          "volume.kubernetes.io/selected-node":"node-1"}},
                          "spec":{"storageClassName":"carina","resources":{"requests":{"storage":"1Gi"}}}})")
              .ok());
  REQUIRE(f.server
              .upsert(PersistentVolumeClaim::kResource,
                      R"({"metadata":{"name":"d","namespace":"b"},"spec":{}})")
              .ok());
  Informer<PersistentVolumeClaim> pvcs(f.ioc.get_executor(), f.client->persistentVolumeClaims(),
                                       fastOptions());
  pvcs.start();
  REQUIRE(runUntil(f.ioc, [&] { return pvcs.hasSynced(); }));
  auto a = pvcs.get("a", "d");
  REQUIRE(a != nullptr);
  CHECK(a->requested_bytes == 1ULL << 30);
  CHECK(a->selectedNode() == "node-1");
  REQUIRE(pvcs.get("b", "d") != nullptr);
  CHECK_FALSE(pvcs.get("b", "d")->storage_class_name.has_value());
  CHECK(pvcs.list().size() == 2);
  pvcs.stop();
}

}  // namespace
