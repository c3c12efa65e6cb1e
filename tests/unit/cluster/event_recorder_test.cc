// The Event recorder against the stand-in API server (real client, TLS on loopback).

#include "agent/cluster/event_recorder.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "k8s-client/kube_client.h"
#include "tests/k8s_server/fake_api_server.h"
#include "tests/unit/k8s/k8s_test_util.h"

namespace {

namespace net = boost::asio;
using namespace carina;
using carina::cluster::EventRecorder;
using carina::cluster::EventRecorderOptions;
using carina::cluster::EventType;
using carina::test::FakeApiServer;
using carina::test::runTask;
using carina::test::runUntil;

/** A settable wall clock shared with the recorder. */
struct TestClock {
  std::shared_ptr<std::atomic<int64_t>> secs =
      std::make_shared<std::atomic<int64_t>>(1'800'000'000);
  std::function<std::chrono::system_clock::time_point()> fn() const {
    auto s = secs;
    return [s] { return std::chrono::system_clock::from_time_t(s->load()); };
  }
  void advance(std::chrono::seconds d) { secs->fetch_add(d.count()); }
};

struct Fixture {
  FakeApiServer server;
  net::io_context ioc;
  std::unique_ptr<k8s::KubeClient> client;
  TestClock clock;

  Fixture() {
    auto c = k8s::makeKubeClient(ioc.get_executor(), server.clientConfig());
    REQUIRE(c.ok());
    client = std::move(*c);
  }

  EventRecorderOptions options() const {
    EventRecorderOptions o;
    o.host = "node-1";
    o.min_backoff = std::chrono::milliseconds(5);
    o.max_backoff = std::chrono::milliseconds(40);
    o.clock = clock.fn();
    return o;
  }

  std::vector<k8s::Event> events(const std::string& ns) {
    auto list = runTask(ioc, client->events().list(ns, {}));
    REQUIRE(list.ok());
    return list->items;
  }

  void settle(EventRecorder& r) {
    REQUIRE(runUntil(ioc, [&] { return r.idle(); }));
  }
};

k8s::ObjectReference pvcRef(const std::string& name = "data-db-0") {
  k8s::PersistentVolumeClaim pvc;
  pvc.metadata.namespace_ = "shop";
  pvc.metadata.name = name;
  pvc.metadata.uid = "uid-" + name;
  pvc.metadata.resource_version = "17";
  return cluster::pvcReference(pvc);
}

TEST_CASE("events: create with source, involved object and timestamps", "[unit][cluster]") {
  Fixture f;
  EventRecorder rec(f.ioc.get_executor(), f.client->events(), f.options());
  rec.record(pvcRef(), EventType::Warning, "ProvisioningFailed", "no space on raw-ssd");
  f.settle(rec);

  auto items = f.events("shop");
  REQUIRE(items.size() == 1);
  const k8s::Event& e = items[0];
  CHECK(e.metadata.namespace_ == "shop");
  CHECK(e.metadata.name.rfind("data-db-0.", 0) == 0);
  CHECK(e.metadata.name.size() == std::string("data-db-0.").size() + 16);
  CHECK(e.involved_object.kind == "PersistentVolumeClaim");
  CHECK(e.involved_object.api_version == "v1");
  CHECK(e.involved_object.namespace_ == "shop");
  CHECK(e.involved_object.name == "data-db-0");
  CHECK(e.involved_object.uid == "uid-data-db-0");
  CHECK(e.type == "Warning");
  CHECK(e.reason == "ProvisioningFailed");
  CHECK(e.message == "no space on raw-ssd");
  CHECK(e.source_component == "carina-agent");
  CHECK(e.source_host == "node-1");
  CHECK(e.count == 1);
  CHECK(e.first_timestamp == "2027-01-15T08:00:00Z");
  CHECK(e.last_timestamp == e.first_timestamp);

  auto st = rec.stats();
  CHECK(st.recorded == 1);
  CHECK(st.created == 1);
  CHECK(st.queued == 0);

  SECTION("cluster-scoped objects: events in namespace default") {
    k8s::LogicVolume object;
    object.metadata.name = "carina-0123456789abcdef0123456789a";
    object.metadata.uid = "lv-uid";
    k8s::ObjectReference lv = cluster::logicVolumeReference(object);
    rec.record(lv, EventType::Normal, "OrphanDeleted", "deleted after the grace period");
    f.settle(rec);
    auto def = f.events("default");
    REQUIRE(def.size() == 1);
    CHECK(def[0].involved_object.kind == "LogicVolume");
    CHECK(def[0].involved_object.api_version == "carina.storage.io/v1");
    CHECK(def[0].involved_object.uid == "lv-uid");
    CHECK(def[0].metadata.name.rfind("carina-0123456789abcdef0123456789a.", 0) == 0);
    CHECK(def[0].involved_object.namespace_.empty());
    CHECK(def[0].type == "Normal");
  }
}

TEST_CASE("events: repeats within 10 minutes are aggregated", "[unit][cluster]") {
  Fixture f;
  EventRecorder rec(f.ioc.get_executor(), f.client->events(), f.options());
  rec.record(pvcRef(), EventType::Warning, "ExpandFailed", "disk full");
  f.settle(rec);
  f.clock.advance(std::chrono::seconds(90));
  rec.record(pvcRef(), EventType::Warning, "ExpandFailed", "disk full");
  f.settle(rec);

  auto items = f.events("shop");
  REQUIRE(items.size() == 1);
  CHECK(items[0].count == 2);
  CHECK(items[0].first_timestamp == "2027-01-15T08:00:00Z");
  CHECK(items[0].last_timestamp == "2027-01-15T08:01:30Z");
  CHECK(rec.stats().aggregated == 1);
  CHECK(rec.stats().created == 1);

  SECTION("a different message or object is a new event") {
    rec.record(pvcRef(), EventType::Warning, "ExpandFailed", "disk gone");
    rec.record(pvcRef("other"), EventType::Warning, "ExpandFailed", "disk full");
    f.settle(rec);
    CHECK(f.events("shop").size() == 3);
  }
  SECTION("after the window a new event is created") {
    f.clock.advance(std::chrono::seconds(601));
    rec.record(pvcRef(), EventType::Warning, "ExpandFailed", "disk full");
    f.settle(rec);
    auto again = f.events("shop");
    REQUIRE(again.size() == 2);
    std::set<int32_t> counts{again[0].count, again[1].count};
    CHECK(counts == std::set<int32_t>{1, 2});
  }
  SECTION("the aggregated event vanished: created anew") {
    REQUIRE(f.server.erase(k8s::Event::kResource, "shop", items[0].metadata.name).ok());
    rec.record(pvcRef(), EventType::Warning, "ExpandFailed", "disk full");
    f.settle(rec);
    auto again = f.events("shop");
    REQUIRE(again.size() == 1);
    CHECK(again[0].count == 1);
    CHECK(again[0].metadata.name != items[0].metadata.name);
    CHECK(rec.stats().created == 2);
  }
}

TEST_CASE("events: API unavailable, then back", "[unit][cluster]") {
  Fixture f;
  EventRecorder rec(f.ioc.get_executor(), f.client->events(), f.options());
  f.server.failNextRequests(3, 503);
  rec.record(pvcRef(), EventType::Warning, "ProvisioningFailed", "first");
  rec.record(pvcRef(), EventType::Warning, "ProvisioningFailed", "second");
  f.settle(rec);
  auto items = f.events("shop");
  REQUIRE(items.size() == 2);
  auto st = rec.stats();
  CHECK(st.retries == 3);
  CHECK(st.created == 2);
  CHECK(st.failed == 0);

  SECTION("connections dropped: retried too") {
    f.server.dropConnections();
    rec.record(pvcRef(), EventType::Warning, "ProvisioningFailed", "third");
    f.settle(rec);
    CHECK(f.events("shop").size() == 3);
  }
}

TEST_CASE("events: permanent errors and max attempts give up", "[unit][cluster]") {
  Fixture f;
  SECTION("forbidden: no retry") {
    EventRecorder rec(f.ioc.get_executor(), f.client->events(), f.options());
    f.server.forbid("create", "events");
    rec.record(pvcRef(), EventType::Warning, "X", "y");
    f.settle(rec);
    CHECK(rec.stats().failed == 1);
    CHECK(rec.stats().retries == 0);
    CHECK(f.events("shop").empty());
  }
  SECTION("still unavailable after max_attempts") {
    auto o = f.options();
    o.max_attempts = 3;
    EventRecorder rec(f.ioc.get_executor(), f.client->events(), o);
    f.server.failNextRequests(3, 500);
    rec.record(pvcRef(), EventType::Warning, "X", "lost");
    f.settle(rec);
    CHECK(rec.stats().failed == 1);
    CHECK(rec.stats().retries == 2);
    // The next event goes through (the server is back).
    rec.record(pvcRef(), EventType::Warning, "X", "kept");
    f.settle(rec);
    auto items = f.events("shop");
    REQUIRE(items.size() == 1);
    CHECK(items[0].message == "kept");
  }
}

TEST_CASE("events: a full queue drops the oldest; stop discards the rest", "[unit][cluster]") {
  Fixture f;
  auto o = f.options();
  o.queue_limit = 2;
  EventRecorder rec(f.ioc.get_executor(), f.client->events(), o);
  // The io_context does not run yet: everything stays queued.
  for (int i = 0; i < 5; ++i) {
    rec.record(pvcRef(), EventType::Normal, "R", "m" + std::to_string(i));
  }
  CHECK(rec.stats().dropped == 3);
  CHECK(rec.stats().queued == 2);
  f.settle(rec);
  std::set<std::string> messages;
  for (const auto& e : f.events("shop")) {
    messages.insert(e.message);
  }
  CHECK(messages == std::set<std::string>{"m3", "m4"});

  rec.record(pvcRef(), EventType::Normal, "R", "late-1");
  rec.record(pvcRef(), EventType::Normal, "R", "late-2");
  rec.stop();
  rec.record(pvcRef(), EventType::Normal, "R", "after-stop");
  f.settle(rec);
  auto st = rec.stats();
  CHECK(st.dropped == 5);
  CHECK(st.recorded == 7);
  CHECK(st.created == 2);
  CHECK(f.events("shop").size() == 2);
}

TEST_CASE("events: stop ends a backoff wait", "[unit][cluster]") {
  Fixture f;
  auto o = f.options();
  o.min_backoff = std::chrono::hours(1);
  o.max_backoff = std::chrono::hours(1);
  EventRecorder rec(f.ioc.get_executor(), f.client->events(), o);
  f.server.failNextRequests(1, 503);
  rec.record(pvcRef(), EventType::Normal, "R", "m");
  REQUIRE(runUntil(f.ioc, [&] { return rec.stats().retries == 1; }));
  rec.stop();
  f.settle(rec);
  CHECK(rec.stats().created == 0);
  CHECK(f.events("shop").empty());
}

}  // namespace
