// carinactl score's agent side: OverlayClusterView, ClusterView::nodeNames()/nodeStates() and
// handleScore() (POST /debug/score; the HTTP round trip is in http_server_test.cc).

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "extender/extender_api.h"
#include "tests/unit/extender/test_cluster.h"

namespace carina::extender {
namespace {

using namespace testing;  // NOLINT
namespace json = boost::json;

/** A cluster with two LVM nodes (70 and 8 GiB free of 100) and one PVC of 10 GiB. */
void buildCluster(InMemoryClusterView& view) {
  addClasses(view);
  view.upsertClaim(claim("data", "lvm", 10 * GiB));
  view.setNodeSupply(node("worker-2", {lvmGroup("vg", 100 * GiB, 8 * GiB)}));
  view.setNodeSupply(node("worker-1", {lvmGroup("vg", 100 * GiB, 70 * GiB)}));
}

const char* kPod =
    R"({"metadata":{"name":"db-0","namespace":"default","uid":"u1"},)"
    R"("spec":{"volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data"}}]}})";

json::object nodeResult(const json::value& reply, const std::string& name) {
  for (const json::value& n : reply.at("nodes").as_array()) {
    if (n.at("node").as_string() == name.c_str()) {
      return n.as_object();
    }
  }
  FAIL("node " << name << " not in reply " << json::serialize(reply));
  return {};
}

}  // namespace

TEST_CASE("InMemoryClusterView: nodeNames and nodeStates", "[unit][extender]") {
  InMemoryClusterView view;
  buildCluster(view);
  CHECK(view.nodeNames() == std::vector<std::string>{"worker-1", "worker-2"});

  Claim promised = claim("p", "lvm", GiB);
  promised.selected_node = "worker-1";
  view.upsertClaim(promised);
  Claim orphan = claim("q", "lvm", GiB);
  orphan.selected_node = "ghost";  // a promise to a node without supply
  view.upsertClaim(orphan);
  CHECK(view.nodeNames() == std::vector<std::string>{"worker-1", "worker-2"});

  std::vector<std::string> names = {"worker-1", "ghost", "worker-2", "none"};
  std::vector<NodeState> states;
  view.nodeStates(names, states);
  REQUIRE(states.size() == 4);
  CHECK(states[0].supply != nullptr);
  REQUIRE(states[0].promised.size() == 1);
  CHECK(states[0].promised[0].name == "p");
  CHECK(states[1].supply == nullptr);
  CHECK(states[1].promised.size() == 1);  // same answer as promisedClaims("ghost")
  CHECK(states[2].promised.empty());
  CHECK(states[3].supply == nullptr);
  CHECK(states[3].promised.empty());
  // The batch agrees with the per-node calls (the default implementation).
  for (std::size_t i = 0; i < names.size(); ++i) {
    CHECK(states[i].supply == view.nodeSupply(names[i]));
    CHECK(states[i].promised.size() == view.promisedClaims(names[i]).size());
  }

  // Removing a node keeps the promises made to it; removing the promise drops the entry.
  view.removeNode("worker-1");
  CHECK(view.nodeNames() == std::vector<std::string>{"worker-2"});
  CHECK(view.promisedClaims("worker-1").size() == 1);
  view.removeClaim("default", "p");
  CHECK(view.promisedClaims("worker-1").empty());
  view.setNodeSupply(node("worker-1", {lvmGroup("vg", 100 * GiB, 70 * GiB)}));
  CHECK(view.nodeNames() == std::vector<std::string>{"worker-1", "worker-2"});
  // Reusing the output vector: sizes follow the input.
  std::vector<std::string> one = {"worker-2"};
  view.nodeStates(one, states);
  CHECK(states.size() == 1);
  CHECK(states[0].promised.empty());
}

TEST_CASE("OverlayClusterView: the file's objects win, the rest delegates", "[unit][extender]") {
  InMemoryClusterView base;
  buildCluster(base);
  Claim promised = claim("p", "lvm", 2 * GiB);
  promised.selected_node = "worker-1";
  base.upsertClaim(promised);

  OverlayClusterView overlay(base);
  SECTION("nothing overlaid: every answer is the base's") {
    CHECK(overlay.claim("default", "data")->request_bytes == 10 * GiB);
    CHECK(overlay.storageClass("lvm")->parameters == base.storageClass("lvm")->parameters);
    CHECK(overlay.nodeSupply("worker-1") == base.nodeSupply("worker-1"));
    CHECK(overlay.nodeNames() == base.nodeNames());
    CHECK(overlay.promisedClaims("worker-1").size() == 1);
    CHECK_FALSE(overlay.claim("default", "new"));
  }
  SECTION("overlaid claims and classes win; new ones appear") {
    overlay.addClaim(claim("data", "lvm", 50 * GiB));
    overlay.addClaim(claim("new", "lvm-fast", GiB));
    overlay.addStorageClass(carinaClass("lvm-fast", {{"carina.storage.io/disk-group-name", "vg"}}));
    overlay.addStorageClass(StorageClass{"lvm", "other.driver", {}});
    CHECK(overlay.claim("default", "data")->request_bytes == 50 * GiB);
    CHECK(base.claim("default", "data")->request_bytes == 10 * GiB);  // base untouched
    CHECK(overlay.claim("default", "new"));
    CHECK(overlay.storageClass("lvm-fast"));
    CHECK(overlay.storageClass("lvm")->provisioner == "other.driver");
    CHECK(overlay.storageClass("raw")->provisioner == kDriverName);
  }
  SECTION("promises are recomputed with the overlaid claims") {
    Claim moved = promised;
    moved.selected_node = "worker-2";  // the file's version of p went elsewhere
    overlay.addClaim(moved);
    Claim extra = claim("extra", "lvm", GiB);
    extra.selected_node = "worker-1";
    overlay.addClaim(extra);
    Claim bound = claim("bound", "lvm", GiB);
    bound.selected_node = "worker-1";
    bound.volume_name = "pv-1";  // bound: no longer a promise
    overlay.addClaim(bound);
    std::vector<Claim> w1 = overlay.promisedClaims("worker-1");
    REQUIRE(w1.size() == 1);
    CHECK(w1[0].name == "extra");
    std::vector<Claim> w2 = overlay.promisedClaims("worker-2");
    REQUIRE(w2.size() == 1);
    CHECK(w2[0].name == "p");
  }
}

TEST_CASE("handleScore: judges the pod on every node, with the file's objects overlaid",
          "[unit][extender]") {
  InMemoryClusterView view;
  buildCluster(view);
  ScoringOptions binpack{core::SchedulerStrategy::Binpack};

  SECTION("claims from the cluster (nothing overlaid)") {
    ApiReply r = handleScore(std::string(R"({"pod":)") + kPod + "}", view, binpack);
    REQUIRE(r.status == 200);
    json::value v = json::parse(r.body);
    CHECK(v.at("error").as_string() == "");
    CHECK(v.at("pod").as_string() == "default/db-0");
    CHECK(v.at("strategy").as_string() == "binpack");
    CHECK(v.at("relevant").as_bool());
    REQUIRE(v.at("nodes").as_array().size() == 2);
    CHECK(v.at("nodes").as_array()[0].at("node").as_string() == "worker-1");  // sorted
    json::object w1 = nodeResult(v, "worker-1");
    CHECK(w1.at("fits").as_bool());
    CHECK(w1.at("score").as_int64() == 4);  // (30 + 10) / 100 -> round(4.0)
    json::object w2 = nodeResult(v, "worker-2");
    CHECK_FALSE(w2.at("fits").as_bool());
    CHECK(std::string(w2.at("reason").as_string().c_str()).starts_with("carina: "));
    CHECK(w2.at("score").as_int64() == 0);
    REQUIRE(v.at("volumes").as_array().size() == 1);
    CHECK(v.at("volumes").as_array()[0].at("claim").as_string() == "default/data");
    CHECK(v.at("volumes").as_array()[0].at("strategy").as_string() == "");
    CHECK(v.at("volumes").as_array()[0].at("bytes").as_int64() == static_cast<int64_t>(10 * GiB));
  }
  SECTION("the file's claim and class win over the cluster's, and may be new") {
    std::string body = std::string(R"({"pod":)") + kPod + R"(,"claims":[)" +
                       R"({"metadata":{"name":"data"},"spec":{"storageClassName":"spread",)" +
                       R"("resources":{"requests":{"storage":"5Gi"}}}}],"storageClasses":[)" +
                       R"({"metadata":{"name":"spread"},"provisioner":"carina.storage.io",)" +
                       R"("parameters":{"carina.storage.io/disk-group-name":"vg",)" +
                       R"("carina.storage.io/scheduler-strategy":"spreadout"}}]})";
    ApiReply r = handleScore(body, view, binpack);
    REQUIRE(r.status == 200);
    json::value v = json::parse(r.body);
    CHECK(v.at("error").as_string() == "");
    CHECK(v.at("strategy").as_string() == "spreadout");
    CHECK(v.at("defaultStrategy").as_string() == "binpack");
    CHECK(v.at("volumes").as_array()[0].at("storageClass").as_string() == "spread");
    CHECK(v.at("volumes").as_array()[0].at("strategy").as_string() == "spreadout");
    // 5 GiB now fits worker-2 too; spreadout prefers the emptier worker-1.
    json::object w1 = nodeResult(v, "worker-1");
    json::object w2 = nodeResult(v, "worker-2");
    CHECK(w1.at("fits").as_bool());
    CHECK(w2.at("fits").as_bool());
    CHECK(w1.at("score").as_int64() > w2.at("score").as_int64());
    // The cluster itself is unchanged.
    CHECK(view.claim("default", "data")->request_bytes == 10 * GiB);
    CHECK_FALSE(view.storageClass("spread"));
  }
  SECTION("explicit node list, unknown nodes fail with a reason") {
    ApiReply r = handleScore(std::string(R"({"pod":)") + kPod + R"(,"nodes":["worker-1","x"]})",
                             view, binpack);
    json::value v = json::parse(r.body);
    REQUIRE(v.at("nodes").as_array().size() == 2);
    CHECK_FALSE(nodeResult(v, "x").at("fits").as_bool());
  }
  SECTION("a pod without carina volumes passes everywhere") {
    ApiReply r = handleScore(R"({"pod":{"metadata":{"name":"web"},"spec":{"volumes":null}}})", view,
                             binpack);
    json::value v = json::parse(r.body);
    CHECK_FALSE(v.at("relevant").as_bool());
    CHECK(nodeResult(v, "worker-2").at("fits").as_bool());
  }
  SECTION("a claim nobody knows: 200 with the error, no nodes") {
    ApiReply r = handleScore(R"({"pod":{"metadata":{"name":"p"},"spec":{"volumes":[{"name":"v",)"
                             R"("persistentVolumeClaim":{"claimName":"nope"}}]}}})",
                             view, binpack);
    REQUIRE(r.status == 200);
    json::value v = json::parse(r.body);
    CHECK(std::string(v.at("error").as_string().c_str()).find("default/nope") != std::string::npos);
    CHECK(v.at("nodes").as_array().empty());
  }
  SECTION("a bad class parameter in the file is the same error CreateVolume gives") {
    std::string body = std::string(R"({"pod":)") + kPod + R"(,"storageClasses":[)" +
                       R"({"metadata":{"name":"lvm"},"provisioner":"carina.storage.io",)" +
                       R"("parameters":{"carina.storage.io/exclusivity-disk":"maybe"}}]})";
    json::value v = json::parse(handleScore(body, view, binpack).body);
    std::string err(v.at("error").as_string().c_str());
    CHECK(err.find("StorageClass lvm") != std::string::npos);
    CHECK(err.find("is not a boolean") != std::string::npos);
  }
  SECTION("unquoted YAML scalars in parameters are accepted as text") {
    std::string body = std::string(R"({"pod":)") + kPod + R"(,"storageClasses":[)" +
                       R"({"metadata":{"name":"lvm"},"provisioner":"carina.storage.io",)" +
                       R"("parameters":{"carina.storage.io/disk-group-name":"vg",)" +
                       R"("carina.storage.io/exclusivity-disk":false}}]})";
    json::value v = json::parse(handleScore(body, view, binpack).body);
    CHECK(v.at("error").as_string() == "");
  }
  SECTION("malformed requests: 400 naming the field") {
    auto bad = [&](const std::string& body, const std::string& needle) {
      ApiReply r = handleScore(body, view, binpack);
      CHECK(r.status == 400);
      CHECK_THAT(r.body, Catch::Contains(needle));
    };
    bad("{", "malformed JSON");
    bad("[]", "expected a JSON object");
    bad("{}", "pod is missing");
    bad(std::string(R"({"pod":)") + kPod + R"(,"claims":{}})", "claims: expected an array");
    bad(std::string(R"({"pod":)") + kPod + R"(,"claims":[{"spec":{}}]})", "claims[0].metadata");
    bad(std::string(R"({"pod":)") + kPod +
            R"(,"claims":[{"metadata":{"name":"a"},"spec":{"resources":{"requests":)"
            R"({"storage":"lots"}}}}]})",
        "claims[0].spec.resources.requests.storage");
    bad(std::string(R"({"pod":)") + kPod + R"(,"storageClasses":[{"metadata":{"name":"a"}}]})",
        "storageClasses[0].provisioner: required");
    bad(std::string(R"({"pod":)") + kPod +
            R"(,"storageClasses":[{"metadata":{"name":"a"},"provisioner":"x","parameters":)"
            R"({"k":{"nested":1}}}]})",
        "storageClasses[0].parameters[k]");
    bad(std::string(R"({"pod":)") + kPod + R"(,"nodes":[1]})", "nodes:");
  }
}

TEST_CASE("parseClaimJson and parseStorageClassJson", "[unit][extender]") {
  auto c = parseClaimJson(
      R"({"metadata":{"name":"d","annotations":{"volume.kubernetes.io/selected-node":"w1"},)"
      R"("ownerReferences":[{"uid":"other"},{"uid":"pod-uid","controller":true}]},)"
      R"("spec":{"storageClassName":"lvm","volumeName":"pv-1",)"
      R"("resources":{"requests":{"storage":1048576}}}})",
      "ns1");
  REQUIRE(c.ok());
  CHECK(c->ns == "ns1");
  CHECK(c->selected_node == "w1");
  CHECK(c->owner_uid == "pod-uid");
  CHECK(c->volume_name == "pv-1");
  CHECK(c->request_bytes == 1048576);
  auto sc = parseStorageClassJson(
      R"({"metadata":{"name":"s"},"provisioner":"carina.storage.io","parameters":null})");
  REQUIRE(sc.ok());
  CHECK(sc->parameters.empty());
  CHECK_FALSE(parseStorageClassJson("[]").ok());
}

}  // namespace carina::extender
