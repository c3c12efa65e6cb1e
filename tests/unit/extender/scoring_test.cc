#include "extender/scoring.h"

#include <set>

#include <catch2/catch.hpp>

#include "tests/unit/extender/test_cluster.h"

namespace carina::extender {
namespace {

using namespace testing;  // NOLINT
using core::SchedulerStrategy;

NodeVerdict judge(const InMemoryClusterView& view, const Pod& p, const std::string& n,
                  SchedulerStrategy s = SchedulerStrategy::Binpack) {
  std::vector<std::string> nodes{n};
  auto r = evaluatePod(p, nodes, view, ScoringOptions{s});
  REQUIRE(r.ok());
  return r->front();
}

TEST_CASE("filter and score, table-driven", "[unit][extender]") {
  struct Case {
    std::string name;
    std::vector<GroupSupply> groups;
    std::vector<Claim> claims;  // the pod's claims, in order
    bool fits;
    std::string reason_part;  // substring of the reason when !fits
    int score = -1;           // binpack score when fits (-1: don't check)
  };
  const std::vector<Case> cases = {
      // Carina defect 1: several PVCs of one group were not all counted.
      {"lvm: two PVCs of one group are summed",
       {lvmGroup("vg", 100 * GiB, 15 * GiB)},
       {claim("a", "lvm", 10 * GiB), claim("b", "lvm", 10 * GiB)},
       false,
       "need 20GiB = default/a 10GiB + default/b 10GiB, free 15GiB"},
      {"lvm: two PVCs that fit together",
       {lvmGroup("vg", 100 * GiB, 30 * GiB)},
       {claim("a", "lvm", 10 * GiB), claim("b", "lvm", 10 * GiB)},
       true,
       "",
       9},
      {"raw: two PVCs of one group do not fit one 15GiB segment",
       {rawGroup("ssd", {disk("sdb", 100 * GiB, {{MiB, 15 * GiB}}, 1)})},
       {claim("a", "raw", 10 * GiB), claim("b", "raw", 10 * GiB)},
       false,
       "carina: group ssd: no free segment of 10GiB for default/"},
      {"raw: two PVCs in two segments",
       {rawGroup("ssd", {disk("sdb", 100 * GiB, {{MiB, 10 * GiB}, {50 * GiB, 10 * GiB}}, 2)})},
       {claim("a", "raw", 10 * GiB), claim("b", "raw", 10 * GiB)},
       true,
       "",
       10},
      // Carina defect 2: exclusivity leaked from one PVC to the next.
      {"exclusivity is per PVC",
       {rawGroup("ssd", {emptyDisk("sdb", 20 * GiB),
                         disk("sdc", 20 * GiB, {{10 * GiB, 10 * GiB - MiB}}, 1)})},
       {claim("x", "raw-excl", 10 * GiB), claim("s", "raw", 5 * GiB)},
       true,
       "",
       -1},
      {"exclusivity is per PVC (shared first)",
       {rawGroup("ssd", {emptyDisk("sdb", 20 * GiB),
                         disk("sdc", 20 * GiB, {{10 * GiB, 10 * GiB - MiB}}, 1)})},
       {claim("s", "raw", 5 * GiB), claim("x", "raw-excl-carina", 10 * GiB)},
       true,
       "",
       -1},
      // Carina defect 7: a disk with ONE partition counted as free for an exclusive volume.
      {"a disk with one partition is not free for an exclusive volume",
       {rawGroup("ssd", {disk("sdb", 100 * GiB, {{20 * GiB, 80 * GiB - MiB}}, 1)})},
       {claim("x", "raw-excl", 10 * GiB)},
       false,
       "no empty disk of at least 10GiB"},
      // One demand that does not fit: the whole message, exactly as placeAll words it.
      {"raw: one PVC larger than every segment",
       {rawGroup("ssd", {disk("sdb", 100 * GiB, {{MiB, 4 * GiB}, {50 * GiB, 6 * GiB}}, 2)})},
       {claim("a", "raw", 7 * GiB)},
       false,
       "carina: group ssd: no free segment of 7GiB for default/a (largest free segment 6GiB)"},
      {"raw: one exclusive PVC and no empty disk",
       {rawGroup("ssd", {disk("sdb", 100 * GiB, {{20 * GiB, 80 * GiB - MiB}}, 1)})},
       {claim("x", "raw-excl", 10 * GiB)},
       false,
       "carina: group ssd: no empty disk of at least 10GiB for default/x (exclusive)"},
      {"an exclusive volume takes a whole empty disk",
       {rawGroup("ssd", {emptyDisk("sdb", 100 * GiB), emptyDisk("sdc", 100 * GiB)})},
       {claim("x", "raw-excl", 10 * GiB)},
       true,
       "",
       5},
      {"unknown group on the node",
       {lvmGroup("other-vg", 100 * GiB, 100 * GiB)},
       {claim("a", "lvm", GiB)},
       false,
       "carina: node n1 has no disk group vg"},
      {"no group named: the node's only group serves it",
       {lvmGroup("vg", 100 * GiB, 100 * GiB)},
       {claim("a", "nogroup", 10 * GiB)},
       true,
       "",
       1},
      {"no group named and two groups: rejected",
       {lvmGroup("vg", 100 * GiB, 100 * GiB), rawGroup("ssd", {emptyDisk("sdb", 10 * GiB)})},
       {claim("a", "nogroup", GiB)},
       false,
       "names no disk group and node n1 has 2 groups"},
      {"two groups: averaged",
       {lvmGroup("vg", 100 * GiB, 100 * GiB), rawGroup("ssd", {emptyDisk("sdb", 10 * GiB)})},
       {claim("a", "lvm", 20 * GiB), claim("b", "raw", 8 * GiB)},
       true,
       "",
       5},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      InMemoryClusterView view;
      addClasses(view);
      view.setNodeSupply(node("n1", c.groups));
      std::vector<std::string> names;
      for (const Claim& cl : c.claims) {
        view.upsertClaim(cl);
        names.push_back(cl.name);
      }
      NodeVerdict v = judge(view, pod("p", names), "n1");
      INFO(v.reason);
      CHECK(v.fits == c.fits);
      if (!c.fits) {
        CHECK(v.reason.rfind("carina: ", 0) == 0);
        CHECK(v.reason.find(c.reason_part) != std::string::npos);
        CHECK(v.score == 0);
      } else if (c.score >= 0) {
        CHECK(v.score == c.score);
      }
    }
  }
}

TEST_CASE("small requests still spread over 0..10 (Carina truncation regression)",
          "[unit][extender]") {
  InMemoryClusterView view;
  addClasses(view);
  std::vector<std::string> nodes;
  for (int i = 0; i <= 10; ++i) {
    std::string n = "n" + std::to_string(i);
    nodes.push_back(n);
    uint64_t used = static_cast<uint64_t>(i) * 10 * GiB;
    view.setNodeSupply(node(n, {lvmGroup("vg", 110 * GiB, 110 * GiB - used)}));
  }
  view.upsertClaim(claim("small", "lvm", GiB));
  for (SchedulerStrategy s : {SchedulerStrategy::Binpack, SchedulerStrategy::Spreadout}) {
    auto r = evaluatePod(pod("p", {"small"}), nodes, view, ScoringOptions{s});
    REQUIRE(r.ok());
    std::set<int> scores;
    for (const NodeVerdict& v : *r) {
      REQUIRE(v.fits);
      CHECK(v.score >= 0);
      CHECK(v.score <= 10);
      scores.insert(v.score);
    }
    CHECK(scores.size() >= 10);
    if (s == SchedulerStrategy::Binpack) {
      CHECK(r->front().score < r->back().score);  // the fuller node wins
    } else {
      CHECK(r->front().score > r->back().score);  // the emptier node wins
    }
  }
}

TEST_CASE("score formula: utilisation after placement", "[unit][extender]") {
  CHECK(scoreFromUtilisation(0.0, SchedulerStrategy::Binpack) == 0);
  CHECK(scoreFromUtilisation(1.0, SchedulerStrategy::Binpack) == 10);
  CHECK(scoreFromUtilisation(0.46, SchedulerStrategy::Binpack) == 5);
  CHECK(scoreFromUtilisation(0.46, SchedulerStrategy::Spreadout) == 5);
  CHECK(scoreFromUtilisation(0.31, SchedulerStrategy::Spreadout) == 7);
  CHECK(scoreFromUtilisation(1.7, SchedulerStrategy::Binpack) == 10);
  CHECK(scoreFromUtilisation(-1, SchedulerStrategy::Spreadout) == 10);

  // The worked example of docs/scheduler.md: VG 100GiB, 16GiB requested.
  InMemoryClusterView view;
  addClasses(view);
  view.setNodeSupply(node("w1", {lvmGroup("vg", 100 * GiB, 70 * GiB)}));
  view.setNodeSupply(node("w4", {lvmGroup("vg", 100 * GiB, 40 * GiB)}));
  view.setNodeSupply(node("w5", {lvmGroup("vg", 100 * GiB, 16 * GiB)}));
  view.upsertClaim(claim("data", "lvm", 16 * GiB));
  Pod p = pod("p", {"data"});
  CHECK(judge(view, p, "w1").score == 5);   // u = 0.46
  CHECK(judge(view, p, "w4").score == 8);   // u = 0.76
  CHECK(judge(view, p, "w5").score == 10);  // u = 1.00
  CHECK(judge(view, p, "w1", SchedulerStrategy::Spreadout).score == 5);
  CHECK(judge(view, p, "w4", SchedulerStrategy::Spreadout).score == 2);
  CHECK(judge(view, p, "w5", SchedulerStrategy::Spreadout).score == 0);

  SECTION("StorageClass overrides the configured strategy") {
    view.upsertStorageClass(
        carinaClass("lvm-spread", {{"carina.storage.io/disk-group-name", "vg"},
                                   {"carina.storage.io/scheduler-strategy", "spreadout"}}));
    view.upsertClaim(claim("data2", "lvm-spread", 16 * GiB));
    CHECK(judge(view, pod("q", {"data2"}), "w4", SchedulerStrategy::Binpack).score == 2);
  }
  SECTION("runtime strategy changes") {
    StrategyHolder h(SchedulerStrategy::Binpack);
    CHECK(judge(view, p, "w4", h.get()).score == 8);
    h.set(SchedulerStrategy::Spreadout);
    CHECK(judge(view, p, "w4", h.get()).score == 2);
  }
}

TEST_CASE("best fit across segments and across disks", "[unit][extender]") {
  // A 6GiB promise must take the 6GiB hole, not the first (10GiB) one, or the pod's 10GiB
  // volume no longer fits (Carina took the first segment that fits).
  InMemoryClusterView view;
  addClasses(view);
  Claim promised = claim("earlier", "raw", 6 * GiB);
  promised.selected_node = "n1";
  view.upsertClaim(promised);
  view.upsertClaim(claim("mine", "raw", 10 * GiB));
  SECTION("segments of one disk") {
    view.setNodeSupply(node(
        "n1",
        {rawGroup("ssd", {disk("sdb", 100 * GiB, {{MiB, 10 * GiB}, {50 * GiB, 6 * GiB}}, 2)})}));
    CHECK(judge(view, pod("p", {"mine"}), "n1").fits);
  }
  SECTION("across disks") {
    view.setNodeSupply(node("n1", {rawGroup("ssd", {disk("sdb", 20 * GiB, {{MiB, 10 * GiB}}, 1),
                                                    disk("sdc", 20 * GiB, {{MiB, 6 * GiB}}, 1)})}));
    CHECK(judge(view, pod("p", {"mine"}), "n1").fits);
  }
  SECTION("pod demands: largest first, each in the smallest hole") {
    view.setNodeSupply(node(
        "n1",
        {rawGroup("ssd", {disk("sdb", 100 * GiB, {{MiB, 10 * GiB}, {50 * GiB, 6 * GiB}}, 2)})}));
    view.removeClaim("default", "earlier");
    view.upsertClaim(claim("small", "raw", 6 * GiB));
    CHECK(judge(view, pod("p", {"small", "mine"}), "n1").fits);
  }
}

TEST_CASE("bound PVCs pin the pod to their PV's node", "[unit][extender]") {
  InMemoryClusterView view;
  addClasses(view);
  for (const char* n : {"n1", "n2"}) {
    view.setNodeSupply(node(n, {lvmGroup("vg", 100 * GiB, 50 * GiB)}));
  }
  Claim bound = claim("old", "lvm", 10 * GiB);
  bound.volume_name = "pv-old";
  view.upsertClaim(bound);
  view.upsertVolume(Volume{"pv-old", std::string(kDriverName), "n2"});
  view.upsertClaim(claim("new", "lvm", 10 * GiB));
  std::vector<std::string> nodes{"n1", "n2"};
  auto r = evaluatePod(pod("p", {"old", "new"}), nodes, view, ScoringOptions{});
  REQUIRE(r.ok());
  CHECK_FALSE((*r)[0].fits);
  CHECK((*r)[0].reason == "carina: pod is pinned to node n2 by bound PVC default/old");
  CHECK((*r)[1].fits);

  SECTION("only bound volumes: the pinned node passes") {
    auto only = evaluatePod(pod("p", {"old"}), nodes, view, ScoringOptions{});
    REQUIRE(only.ok());
    CHECK_FALSE((*only)[0].fits);
    CHECK((*only)[1].fits);
  }
  SECTION("the PV not in the view yet is retryable") {
    view.removeVolume("pv-old");
    auto e = evaluatePod(pod("p", {"old"}), nodes, view, ScoringOptions{});
    CHECK(e.status().code() == absl::StatusCode::kUnavailable);
  }
}

TEST_CASE("promised PVCs are subtracted until the PV exists", "[unit][extender]") {
  InMemoryClusterView view;
  addClasses(view);
  view.setNodeSupply(node("n1", {rawGroup("ssd", {disk("sdb", 20 * GiB, {{MiB, 10 * GiB}}, 1)})}));
  Claim first = claim("data-0", "raw", 8 * GiB);
  Claim second = claim("data-1", "raw", 8 * GiB);
  view.upsertClaim(first);
  view.upsertClaim(second);
  Pod p0 = pod("db-0", {"data-0"});
  Pod p1 = pod("db-1", {"data-1"});
  REQUIRE(judge(view, p0, "n1").fits);
  REQUIRE(judge(view, p1, "n1").fits);

  // kube-scheduler picked n1 for db-0: VolumeBinding writes selected-node.
  first.selected_node = "n1";
  view.upsertClaim(first);
  NodeVerdict v = judge(view, p1, "n1");
  CHECK_FALSE(v.fits);
  CHECK(v.reason.find("for default/data-1") != std::string::npos);
  // ... but db-0 itself (retried) is not blocked by its own promise.
  CHECK(judge(view, p0, "n1").fits);

  SECTION("released when the PV exists") {
    first.volume_name = "pv-data-0";
    view.upsertClaim(first);
    CHECK(judge(view, p1, "n1").fits);
  }
  SECTION("released when the annotation is removed (reschedule)") {
    first.selected_node.clear();
    view.upsertClaim(first);
    CHECK(judge(view, p1, "n1").fits);
  }
  SECTION("released when the PVC is deleted") {
    view.removeClaim("default", "data-0");
    CHECK(judge(view, p1, "n1").fits);
  }
  SECTION("a promise to another node does not count") {
    first.selected_node = "n2";
    view.upsertClaim(first);
    CHECK(judge(view, p1, "n1").fits);
  }
  SECTION("LVM promises") {
    view.setNodeSupply(node("n1", {lvmGroup("vg", 20 * GiB, 10 * GiB)}));
    Claim a = claim("lv-0", "lvm", 6 * GiB);
    a.selected_node = "n1";
    view.upsertClaim(a);
    view.upsertClaim(claim("lv-1", "lvm", 6 * GiB));
    NodeVerdict w = judge(view, pod("x", {"lv-1"}), "n1");
    CHECK_FALSE(w.fits);
    CHECK(w.reason.find("free 4GiB") != std::string::npos);
  }
}

TEST_CASE("pods without carina volumes are not judged", "[unit][extender]") {
  InMemoryClusterView view;
  addClasses(view);
  view.upsertClaim(claim("ebs", "other", 10 * GiB));
  view.upsertClaim(claim("noclass", "", 10 * GiB));
  std::vector<std::string> nodes{"n1", "unknown-node"};
  for (const Pod& p : {pod("a", {}), pod("b", {"ebs", "noclass"})}) {
    auto r = evaluatePod(p, nodes, view, ScoringOptions{});
    REQUIRE(r.ok());
    CHECK((*r)[0].fits);
    CHECK((*r)[1].fits);
    CHECK((*r)[0].score == (*r)[1].score);
  }
}

TEST_CASE("nodes without carina and claims not yet seen", "[unit][extender]") {
  InMemoryClusterView view;
  addClasses(view);
  view.upsertClaim(claim("a", "lvm", GiB));
  view.setNodeSupply(node("n1", {lvmGroup("vg", 10 * GiB, 10 * GiB)}));
  std::vector<std::string> nodes{"n1", "no-carina"};
  auto r = evaluatePod(pod("p", {"a"}), nodes, view, ScoringOptions{});
  REQUIRE(r.ok());
  CHECK((*r)[0].fits);
  CHECK_FALSE((*r)[1].fits);
  CHECK((*r)[1].reason.rfind("carina: no carina storage reported for node no-carina", 0) == 0);

  auto missing = evaluatePod(pod("p", {"a", "not-yet"}), nodes, view, ScoringOptions{});
  CHECK(missing.status().code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(missing.status().message()).find("default/not-yet") != std::string::npos);

  view.upsertClaim(claim("b", "missing-class", GiB));
  CHECK(evaluatePod(pod("p", {"b"}), nodes, view, ScoringOptions{}).status().code() ==
        absl::StatusCode::kUnavailable);

  view.upsertStorageClass(carinaClass("bad", {{"carina.storage.io/exclusivity-disk", "yes"}}));
  view.upsertClaim(claim("c", "bad", GiB));
  CHECK(evaluatePod(pod("p", {"c"}), nodes, view, ScoringOptions{}).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("generic ephemeral volumes", "[unit][extender]") {
  InMemoryClusterView view;
  addClasses(view);
  view.setNodeSupply(node("n1", {lvmGroup("vg", 100 * GiB, 8 * GiB)}));
  Pod p = pod("db-0", {});
  p.volumes.push_back(PodVolume{"scratch", "db-0-scratch", ClaimTemplate{"lvm", 5 * GiB}});
  CHECK(judge(view, p, "n1").fits);
  p.volumes.front().ephemeral->request_bytes = 9 * GiB;
  CHECK_FALSE(judge(view, p, "n1").fits);
  SECTION("the PVC, once created, wins over the template") {
    Claim c = claim("db-0-scratch", "lvm", 4 * GiB);
    c.owner_uid = p.uid;
    view.upsertClaim(c);
    CHECK(judge(view, p, "n1").fits);
    c.owner_uid = "someone-else";
    view.upsertClaim(c);
    std::vector<std::string> nodes{"n1"};
    CHECK(evaluatePod(p, nodes, view, ScoringOptions{}).status().code() ==
          absl::StatusCode::kFailedPrecondition);
  }
}

TEST_CASE("supply from the local inventory (standalone mode)", "[unit][extender]") {
  storage::InventorySnapshot inv;
  storage::GroupSnapshot raw;
  raw.name = "ssd";
  raw.policy = core::DiskPolicy::Raw;
  storage::DiskSnapshot good;
  good.info.name = "sdb";
  good.info.eligible = true;
  good.space = emptyDisk("sdb", 10 * GiB);
  storage::DiskSnapshot bad;
  bad.info.name = "sdc";
  bad.info.eligible = false;
  raw.disks = {good, bad};
  storage::GroupSnapshot lvm;
  lvm.name = "vg";
  lvm.policy = core::DiskPolicy::Lvm;
  lvm.total_bytes = 100 * GiB;
  lvm.free_bytes = 60 * GiB;
  inv.groups = {raw, lvm};
  NodeSupply s = supplyFromInventory("local", inv);
  REQUIRE(s.groups.size() == 2);
  CHECK(s.groups[0].disks.size() == 1);
  CHECK(s.groups[1].vg_size_bytes == 100 * GiB);
  CHECK(s.groups[1].vg_free_bytes == 60 * GiB);
}

}  // namespace
}  // namespace carina::extender

namespace carina::extender {

TEST_CASE("one request over many nodes equals one node at a time (per-request reuse)",
          "[unit][extender]") {
  using namespace testing;  // NOLINT
  InMemoryClusterView view;
  addClasses(view);
  view.upsertStorageClass(
      carinaClass("broken", {{"carina.storage.io/disk-group-name", "ssd"},
                             {"carina.storage.io/exclusivity-disk", "perhaps"}}));
  std::vector<std::string> names;
  for (uint64_t i = 0; i < 40; ++i) {
    std::string n = "node-" + std::to_string(i);
    names.push_back(n);
    std::vector<storage::DiskSpace> disks;
    for (uint64_t d = 0; d < 1 + i % 4; ++d) {
      if ((i + d) % 5 == 0) {
        disks.push_back(emptyDisk("sd" + std::to_string(d), (20 + d) * GiB));
      } else {
        disks.push_back(disk("sd" + std::to_string(d), 50 * GiB,
                             {{MiB, (2 + (i * 7 + d) % 9) * GiB}, {30 * GiB, (1 + i % 6) * GiB}},
                             1));
      }
    }
    std::vector<GroupSupply> groups{rawGroup("ssd", disks)};
    if (i % 3 != 0) {
      groups.push_back(lvmGroup("vg", 100 * GiB, (5 + i * 3 % 60) * GiB));
    }
    if (i % 7 == 6) {
      groups.clear();  // a node without groups
    }
    if (i % 11 != 10) {  // some names have no supply at all
      view.setNodeSupply(node(n, groups));
    }
    // Promises of every kind, in no particular order.
    auto promise = [&](const std::string& name, const std::string& sc, uint64_t bytes) {
      Claim c = claim(name, sc, bytes);
      c.selected_node = n;
      view.upsertClaim(c);
    };
    if (i % 2 == 0) {
      promise("p-small-" + n, "raw", GiB);
      promise("p-big-" + n, "raw", (1 + i % 4) * GiB);
    }
    if (i % 4 == 1) {
      promise("p-excl-" + n, "raw-excl", 10 * GiB);
      promise("p-lvm-" + n, "lvm", 4 * GiB);
      promise("p-broken-" + n, "broken", GiB);
      promise("p-other-" + n, "other", GiB);
    }
  }
  view.upsertClaim(claim("a", "raw", 2 * GiB));
  view.upsertClaim(claim("b", "raw", 3 * GiB));
  view.upsertClaim(claim("c", "lvm", 8 * GiB));
  view.upsertClaim(claim("d", "raw-excl", 15 * GiB));
  for (const std::vector<std::string>& claims : std::vector<std::vector<std::string>>{
           {"a"}, {"a", "b"}, {"a", "b", "c"}, {"d", "a"}, {"c"}}) {
    CAPTURE(claims);
    Pod p = pod("p", claims);
    for (SchedulerStrategy s : {SchedulerStrategy::Binpack, SchedulerStrategy::Spreadout}) {
      auto all = evaluatePod(p, names, view, ScoringOptions{s});
      REQUIRE(all.ok());
      auto demand = resolveDemand(p, view);
      REQUIRE(demand.ok());
      std::size_t fits = 0;
      for (std::size_t i = 0; i < names.size(); ++i) {
        NodeVerdict one = evaluateNode(*demand, names[i], view, ScoringOptions{s});
        CAPTURE(names[i]);
        CHECK((*all)[i].node == one.node);
        CHECK((*all)[i].fits == one.fits);
        CHECK((*all)[i].reason == one.reason);
        CHECK((*all)[i].score == one.score);
        fits += one.fits ? 1 : 0;
      }
      CHECK(fits > 0);  // the table exercises both outcomes
      CHECK(fits < names.size());
    }
  }
}

TEST_CASE("StorageClass parameters: the extender refuses what CreateVolume refuses",
          "[unit][extender]") {
  using namespace testing;  // NOLINT
  InMemoryClusterView view;
  view.setNodeSupply(node("n1", {lvmGroup("vg", 100 * GiB, 50 * GiB)}));
  std::vector<std::string> nodes{"n1"};
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"carina.storage.io/disk-typo", "x"},
           {"csi.storage.k8s.io/fstype", "btrfs"},
           {"carina.storage.io/scheduler-strategy", "fast"},
           {"carina.storage.io/exclusivity-disk", "yes"}}) {
    CAPTURE(key, value);
    view.upsertStorageClass(
        carinaClass("sc", {{"carina.storage.io/disk-group-name", "vg"}, {key, value}}));
    view.upsertClaim(claim("c", "sc", GiB));
    auto r = evaluatePod(pod("p", {"c"}), nodes, view, ScoringOptions{});
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(r.status().message()), Catch::StartsWith("carina: StorageClass sc: "));
  }
  // disk-type and disk-group-name must agree, as for CreateVolume.
  view.upsertStorageClass(carinaClass(
      "sc", {{"carina.storage.io/disk-group-name", "vg"}, {"carina.storage.io/disk-type", "ssd"}}));
  CHECK_FALSE(evaluatePod(pod("p", {"c"}), nodes, view, ScoringOptions{}).ok());
  // Accepted spellings.
  view.upsertStorageClass(carinaClass("sc", {{"carina.storage.io/disk-type", "vg"},
                                             {"carina.storage.io/exclusivity-disk", "FALSE"},
                                             {"carina.storage.io/scheduler-strategy", "SpreadOut"},
                                             {"csi.storage.k8s.io/fstype", "xfs"}}));
  auto ok = evaluatePod(pod("p", {"c"}), nodes, view, ScoringOptions{});
  REQUIRE(ok.ok());
  CHECK(ok->front().fits);
}

}  // namespace carina::extender
