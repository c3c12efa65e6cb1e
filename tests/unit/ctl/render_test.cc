#include "csi/carinactl/render.h"

#include <catch2/catch.hpp>

#include "agent/storage/placement.h"
#include "extender/request_stats.h"

namespace ctl = carina::ctl;

namespace {

// The document agent/app/inventory_json.cc produces (field names of NodeStorageResource).
constexpr const char* kInventory = R"({
  "node": "worker-1", "generation": 7,
  "groups": [
    { "name": "raw", "policy": "RAW", "totalBytes": 4294967296, "freeBytes": 3221225472,
      "largestAllocatableBytes": 2147483648, "emptyDisks": 1,
      "disks": [
        { "name": "loop3", "devnode": "/dev/loop3", "sizeBytes": 2147483648, "partitions": 1,
          "exclusive": false, "largestFreeBytes": 1073741824,
          "freeSegments": [ { "start": 1048576, "length": 1073741824 } ] },
        { "name": "loop4", "devnode": "/dev/loop4", "sizeBytes": 2147483648, "partitions": 0,
          "exclusive": false, "largestFreeBytes": 2146435072,
          "freeSegments": [ { "start": 1048576, "length": 2146435072 } ] } ] } ],
  "unassigned": [ { "name": "vda", "devnode": "/dev/vda", "group": "", "sizeBytes": 10737418240,
                    "reason": "has a partition table that is not carina's" } ]
})";

}  // namespace

TEST_CASE("renderTable aligns columns without trailing spaces", "[unit][ctl]") {
  std::string out = ctl::renderTable({"NAME", "SIZE"}, {{"a", "1GiB"}, {"longer-name", ""}});
  CHECK(out ==
        "NAME         SIZE\n"
        "a            1GiB\n"
        "longer-name\n");
  CHECK(ctl::renderTable({"A"}, {}) == "A\n");
  // Rows longer than the header still line up.
  CHECK(ctl::renderTable({"A"}, {{"x", "y"}}) == "A\nx  y\n");
}

TEST_CASE("humanBytes uses binary units", "[unit][ctl]") {
  CHECK(ctl::humanBytes(0) == carina::storage::formatBytes(0));
  CHECK(ctl::humanBytes(1ULL << 30) == carina::storage::formatBytes(1ULL << 30));
  CHECK(ctl::humanBytes(1ULL << 30).find("GiB") != std::string::npos);
}

TEST_CASE("parseInventoryJson reads the agent's /debug/inventory document", "[unit][ctl]") {
  auto inv = ctl::parseInventoryJson(kInventory);
  INFO(inv.status().ToString());
  REQUIRE(inv.ok());
  CHECK(inv->node == "worker-1");
  CHECK(inv->snapshot.generation == 7);
  REQUIRE(inv->snapshot.groups.size() == 1);
  const auto& g = inv->snapshot.groups[0];
  CHECK(g.name == "raw");
  CHECK(g.policy == carina::core::DiskPolicy::Raw);
  CHECK(g.total_bytes == 4294967296ULL);
  CHECK(g.empty_disks == 1);
  REQUIRE(g.disks.size() == 2);
  CHECK(g.disks[0].info.name == "loop3");
  CHECK(g.disks[0].info.group == "raw");
  CHECK(g.disks[0].space.partitions == 1);
  REQUIRE(g.disks[0].space.free.size() == 1);
  CHECK(g.disks[0].space.free[0] == carina::storage::Segment{1048576, 1073741824});
  REQUIRE(inv->snapshot.unassigned.size() == 1);
  CHECK(inv->snapshot.unassigned[0].reason == "has a partition table that is not carina's");
}

TEST_CASE("parseInventoryJson rejects bad documents naming the field", "[unit][ctl]") {
  struct Case {
    const char* text;
    const char* expect;
  };
  for (const Case& c : {
           Case{"", "inventory JSON"},
           Case{"[1,2]", "not an object"},
           Case{"{\"groups\": 3}", "groups: not an array"},
           Case{"{\"groups\": [{}]}", "groups[0].name: missing"},
           Case{"{\"groups\": [{\"name\": \"g\", \"policy\": \"ZFS\"}]}", "unknown policy"},
           Case{"{\"groups\": [{\"name\": \"g\", \"totalBytes\": -5}]}", "groups[0].totalBytes"},
           Case{"{\"groups\": [{\"name\": \"g\", \"disks\": [{\"name\": \"d\", \"freeSegments\": "
                "[{\"start\": 1}]}]}]}",
                "groups[0].disks[0].freeSegments[0].length: missing"},
           Case{"{\"unassigned\": [{\"name\": 5}]}", "unassigned[0].name: not a string"},
           Case{"{\"groups\": [{\"name\": \"g\", \"disks\": [{\"name\": \"d\", \"exclusive\": "
                "\"yes\"}]}]}",
                "exclusive: not a boolean"},
       }) {
    INFO(c.text);
    auto inv = ctl::parseInventoryJson(c.text);
    REQUIRE_FALSE(inv.ok());
    CHECK(inv.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(std::string(inv.status().message()).find(c.expect) != std::string::npos);
  }
  // Missing optional sections are fine.
  auto empty = ctl::parseInventoryJson("{}");
  REQUIRE(empty.ok());
  CHECK(empty->snapshot.groups.empty());
}

TEST_CASE("renderDisks shows groups, disks and unassigned disks", "[unit][ctl]") {
  auto inv = ctl::parseInventoryJson(kInventory);
  REQUIRE(inv.ok());
  std::string text = ctl::renderDisks(*inv, false);
  CHECK(text.find("node worker-1") != std::string::npos);
  CHECK(text.find("GROUP  POLICY  DISKS  TOTAL") != std::string::npos);
  CHECK(text.find("raw    RAW     2      4GiB") != std::string::npos);
  CHECK(text.find("loop3  raw    /dev/loop3  2GiB  1           no") != std::string::npos);
  CHECK(text.find("has a partition table that is not carina's") != std::string::npos);

  std::string json = ctl::renderDisks(*inv, true);
  auto back = ctl::parseInventoryJson(json);  // our JSON reads back the same
  REQUIRE(back.ok());
  CHECK(back->snapshot.groups[0].disks[1].space.free ==
        inv->snapshot.groups[0].disks[1].space.free);
  CHECK(json.find("\"freeBytes\":1073741824") != std::string::npos);

  ctl::Inventory none;
  CHECK(ctl::renderDisks(none, false).find("no disk groups") != std::string::npos);
}

TEST_CASE("volumes render as a table and as JSON", "[unit][ctl]") {
  ctl::VolumeView v;
  v.volume_id = "carina-abc";
  v.capacity_bytes = 512ULL << 20;
  v.context = {{"carina.storage.io/group", "raw"},
               {"carina.storage.io/fstype", "xfs"},
               {"carina.storage.io/device", "/dev/loop3p1"},
               {"carina.storage.io/exclusive", "false"}};
  v.topology = {{{"topology.carina.storage.io/node", "n1"}}};
  std::string text = ctl::renderVolumes({v}, false);
  CHECK(text ==
        "ID          SIZE    GROUP  FS   DEVICE        EXCLUSIVE\n"
        "carina-abc  512MiB  raw    xfs  /dev/loop3p1  no\n");
  v.name = "data";
  CHECK(ctl::renderVolume(v, false).rfind("NAME  ID", 0) == 0);
  std::string json = ctl::renderVolumes({v}, true);
  CHECK(json.find("\"volumeId\":\"carina-abc\"") != std::string::npos);
  CHECK(json.find("\"capacityBytes\":536870912") != std::string::npos);
  CHECK(json.find("\"name\":\"data\"") != std::string::npos);
  CHECK(json.find("\"topology.carina.storage.io/node\":\"n1\"") != std::string::npos);
  CHECK(ctl::renderVolumes({}, false) == "no volumes\n");
  CHECK(ctl::renderVolumes({}, true) == "{\"volumes\":[]}\n");
  ctl::VolumeView bare;
  bare.volume_id = "x";
  CHECK(ctl::renderVolume(bare, false).find("x   0B    -      -   -       -") != std::string::npos);
}

TEST_CASE("contextValue matches the last key segment case-insensitively", "[unit][ctl]") {
  std::map<std::string, std::string> ctx = {{"carina.storage.io/fsType", "xfs"}, {"group", "g"}};
  CHECK(ctl::contextValue(ctx, {"fstype"}) == "xfs");
  CHECK(ctl::contextValue(ctx, {"diskGroup", "group"}) == "g");
  CHECK(ctl::contextValue(ctx, {"disk"}).empty());
}

TEST_CASE("stats, probe, actions and errors", "[unit][ctl]") {
  ctl::StatsView s{
      "carina-abc", "data",
      "/k/mnt",     {{"bytes", 1ULL << 30, 1ULL << 28, 3ULL << 28}, {"inodes", 1000, 10, 990}},
      false,        ""};
  std::string text = ctl::renderStats(s, false);
  CHECK(text.find("volume carina-abc (data) at /k/mnt") != std::string::npos);
  CHECK(text.find("bytes   1GiB   256MiB  768MiB     25%") != std::string::npos);
  CHECK(text.find("inodes  1000   10      990        1%") != std::string::npos);
  CHECK(text.find("condition: normal") != std::string::npos);
  CHECK(ctl::renderStats(s, true).find("\"unit\":\"inodes\",\"total\":1000") != std::string::npos);

  ctl::ProbeView p{"carina.storage.io", "0.1.0", std::nullopt, "n1", {"CREATE_DELETE_VOLUME"}};
  CHECK(ctl::renderProbe(p, false).find("carina.storage.io  0.1.0    yes") != std::string::npos);
  CHECK(ctl::renderProbe(p, true).find("\"ready\":true") != std::string::npos);

  ctl::ActionView a{"deleted", {{"name", "data"}}, "deleted volume data"};
  CHECK(ctl::renderAction(a, false) == "deleted volume data\n");
  CHECK(ctl::renderAction(a, true) == "{\"action\":\"deleted\",\"name\":\"data\"}\n");

  CHECK(ctl::renderError(absl::NotFoundError("no such volume"), false) ==
        "error: NOT_FOUND: no such volume\n");
  CHECK(ctl::renderError(absl::ResourceExhaustedError("full"), true) ==
        "{\"error\":{\"code\":\"RESOURCE_EXHAUSTED\",\"message\":\"full\"}}\n");
}

TEST_CASE("requests: the agent's /debug/extender document, as a table and as JSON", "[unit][ctl]") {
  // The document exactly as the agent writes it (the producer is the contract).
  carina::extender::RequestStats stats(100);
  for (int i = 1; i <= 10; ++i) {
    stats.record("/scheduler/filter", i == 10 ? 400 : 200, std::chrono::microseconds(i * 250));
  }
  stats.record("/healthz", 200, std::chrono::microseconds(12));
  auto view = ctl::parseRequestsJson(stats.json());
  REQUIRE(view.ok());
  CHECK(view->window_size == 100);
  REQUIRE(view->paths.size() == 2);
  const ctl::RequestPathView& f = view->paths[1];
  CHECK(f.path == "/scheduler/filter");
  CHECK(f.count == 10);
  CHECK(f.errors == 1);
  CHECK(f.window == 10);
  CHECK(f.p50_us == 1250);
  CHECK(f.p99_us == 2500);
  CHECK(f.max_us == 2500);

  std::string table = ctl::renderRequests(*view, false);
  CHECK(table.find("PATH") != std::string::npos);
  CHECK(table.find("/scheduler/filter") != std::string::npos);
  CHECK(table.find("1.25ms") != std::string::npos);  // p50
  CHECK(table.find("12us") != std::string::npos);    // /healthz
  CHECK(ctl::parseRequestsJson(ctl::renderRequests(*view, true)).ok());
  CHECK(ctl::renderRequests(ctl::RequestsView{}, false) == "no requests yet\n");

  // Bad documents name the field.
  for (const char* bad :
       {"", "[]", R"({"windowSize":"x","paths":[]})", R"({"windowSize":1,"paths":[{}]})",
        R"({"windowSize":1,"paths":[{"path":"/x","count":"many"}]})",
        R"({"windowSize":1,"paths":[5]})"}) {
    INFO(bad);
    auto r = ctl::parseRequestsJson(bad);
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
}
