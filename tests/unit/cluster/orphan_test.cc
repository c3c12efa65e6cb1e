#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include "agent/cluster/orphan_reconciler.h"
#include "agent/core/status.h"
#include "agent/storage/volume_backend.h"

namespace carina::cluster {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using Wall = std::chrono::system_clock;

const std::string kNode = "node-1";
const Steady::time_point kT0 = Steady::time_point{} + 1000h;
const Wall::time_point kWall0 = Wall::time_point{} + 480000h;  // ~2024

LocalVolume vol(const std::string& id, bool in_use = false) {
  LocalVolume v;
  v.id = id;
  v.group = "ssd";
  v.size_bytes = 1 << 30;
  v.device = "/dev/" + id;
  v.in_use = in_use;
  v.in_use_reason = in_use ? "mounted at /mnt/x" : "";
  return v;
}

LogicVolumeRef lv(const std::string& name, const std::string& volume_id = "",
                  const std::string& node = kNode) {
  LogicVolumeRef l;
  l.name = name;
  l.volume_id = volume_id;
  l.node = node;
  return l;
}

OrphanInputs inputs(std::vector<LocalVolume> local, std::set<std::string> pvs = {},
                    std::vector<LogicVolumeRef> lvs = {}, bool synced = true) {
  OrphanInputs in;
  in.cluster.caches_synced = synced;
  in.cluster.pv_volume_handles = std::move(pvs);
  in.cluster.logic_volumes = std::move(lvs);
  in.local = std::move(local);
  return in;
}

OrphanOptions options(std::chrono::milliseconds grace = 1h) {
  OrphanOptions o;
  o.grace = grace;
  o.node_name = kNode;
  return o;
}

/** "delete-volume volume/v1", "skip logicvolume/l1 (waiting for the grace period)". */
std::vector<std::string> describe(const std::vector<OrphanAction>& actions) {
  std::vector<std::string> out;
  for (const auto& a : actions) {
    std::string s = std::string(toString(a.kind));
    if (a.reason == SkipReason::CachesUnsynced) {
      out.push_back(s + " (caches not synced)");
      continue;
    }
    s += " " + std::string(toString(a.target)) + "/" + a.name;
    if (a.kind == OrphanActionKind::Skip) {
      s += " (" + std::string(toString(a.reason)) + ")";
    }
    out.push_back(s);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The pure decision core

struct Step {
  std::chrono::minutes at;  // since kT0 (and kWall0)
  OrphanInputs in;
};

struct DecisionCase {
  std::string name;
  std::vector<Step> steps;
  std::vector<std::string> expected;  // the actions of the LAST step
  std::chrono::milliseconds grace = 1h;
};

TEST_CASE("OrphanTracker decides from a table of scenarios", "[unit][orphan]") {
  const std::string named_id = storage::volumeIdForName("pvc-123");
  LogicVolumeRef young = lv("l-young");
  young.created = kWall0 + 2h - 5min;  // created 5 minutes before the last step
  LogicVolumeRef old_lv = lv("l-old");
  old_lv.created = kWall0 - 24h;
  LogicVolumeRef deleting = lv("l-del");
  deleting.deleting = true;

  std::vector<DecisionCase> cases = {
      {"an orphan volume waits for the grace period",
       {{0min, inputs({vol("v1")})}, {59min, inputs({vol("v1")})}},
       {"skip volume/v1 (waiting for the grace period)"}},
      {"an orphan volume is deleted once the grace period has passed",
       {{0min, inputs({vol("v1")})}, {60min, inputs({vol("v1")})}},
       {"delete-volume volume/v1"}},
      {"a volume newly seen after the grace period elapsed elsewhere still waits",
       {{0min, inputs({})}, {120min, inputs({vol("v1")})}},
       {"skip volume/v1 (waiting for the grace period)"}},
      {"a volume with a PV is never an orphan",
       {{0min, inputs({vol("v1")}, {"v1"})}, {600min, inputs({vol("v1")}, {"v1"})}},
       {}},
      {"a volume with a LogicVolume (status.volumeID) is never an orphan",
       {{0min, inputs({vol("v1")}, {}, {lv("x", "v1")})},
        {600min, inputs({vol("v1")}, {}, {lv("x", "v1")})}},
       {}},
      {"a LogicVolume named after the volume id protects it without a status",
       {{0min, inputs({vol("v1")}, {}, {lv("v1")})}, {600min, inputs({vol("v1")}, {}, {lv("v1")})}},
       {}},
      {"a LogicVolume named after the CSI name protects volumeIdForName(name)",
       {{0min, inputs({vol(named_id)}, {}, {lv("pvc-123")})},
        {600min, inputs({vol(named_id)}, {}, {lv("pvc-123")})}},
       {}},
      {"a LogicVolume of another node still protects a volume",
       {{0min, inputs({vol("v1")}, {}, {lv("v1", "v1", "node-2")})},
        {600min, inputs({vol("v1")}, {}, {lv("v1", "v1", "node-2")})}},
       {}},
      {"an orphan volume in use is never deleted",
       {{0min, inputs({vol("v1")})}, {600min, inputs({vol("v1", true)})}},
       {"skip volume/v1 (in use)"}},
      {"in use restarts the clock",
       {{0min, inputs({vol("v1")})},
        {120min, inputs({vol("v1", true)})},
        {121min, inputs({vol("v1")})}},
       {"skip volume/v1 (waiting for the grace period)"}},
      {"nothing at all while the caches are not synced",
       {{0min, inputs({vol("v1")})}, {600min, inputs({vol("v1")}, {}, {lv("l1")}, false)}},
       {"skip (caches not synced)"}},
      {"unsynced passes start no clock",
       {{0min, inputs({vol("v1")}, {}, {}, false)}, {60min, inputs({vol("v1")})}},
       {"skip volume/v1 (waiting for the grace period)"}},
      {"unsynced passes keep the clocks already running",
       {{0min, inputs({vol("v1")})},
        {30min, inputs({vol("v1")}, {}, {}, false)},
        {60min, inputs({vol("v1")})}},
       {"delete-volume volume/v1"}},
      {"a PV that appears and disappears restarts the clock",
       {{0min, inputs({vol("v1")})},
        {50min, inputs({vol("v1")}, {"v1"})},
        {100min, inputs({vol("v1")})}},
       {"skip volume/v1 (waiting for the grace period)"}},
      {"... and the volume is deleted a full grace period after the PV vanished",
       {{0min, inputs({vol("v1")})},
        {50min, inputs({vol("v1")}, {"v1"})},
        {100min, inputs({vol("v1")})},
        {160min, inputs({vol("v1")})}},
       {"delete-volume volume/v1"}},
      {"a LogicVolume with neither PV nor volume waits for the grace period",
       {{0min, inputs({}, {}, {lv("l1", "v9")})}, {30min, inputs({}, {}, {lv("l1", "v9")})}},
       {"skip logicvolume/l1 (waiting for the grace period)"}},
      {"a LogicVolume with neither PV nor volume is deleted after the grace period",
       {{0min, inputs({}, {}, {lv("l1", "v9")})}, {60min, inputs({}, {}, {lv("l1", "v9")})}},
       {"delete-logicvolume logicvolume/l1"}},
      {"a LogicVolume without status (CreateVolume failed) is deleted after the grace period",
       {{0min, inputs({}, {}, {lv("l1")})}, {60min, inputs({}, {}, {lv("l1")})}},
       {"delete-logicvolume logicvolume/l1"}},
      {"a LogicVolume whose volume exists is kept",
       {{0min, inputs({vol("v1")}, {}, {lv("l1", "v1")})},
        {600min, inputs({vol("v1")}, {}, {lv("l1", "v1")})}},
       {}},
      {"a LogicVolume with a PV is kept (its volume missing or not)",
       {{0min, inputs({}, {"v1"}, {lv("l1", "v1")})},
        {600min, inputs({}, {"v1"}, {lv("l1", "v1")})}},
       {}},
      {"a LogicVolume of another node is never deleted",
       {{0min, inputs({}, {}, {lv("l1", "v1", "node-2")})},
        {600min, inputs({}, {}, {lv("l1", "v1", "node-2")})}},
       {}},
      {"a LogicVolume created less than the grace period ago is kept",
       {{0min, inputs({}, {}, {young})}, {120min, inputs({}, {}, {young})}},
       {"skip logicvolume/l-young (waiting for the grace period)"}},
      {"an old LogicVolume still waits for its first-seen grace (a restarted agent)",
       {{0min, inputs({}, {}, {old_lv})}, {10min, inputs({}, {}, {old_lv})}},
       {"skip logicvolume/l-old (waiting for the grace period)"}},
      {"a LogicVolume being deleted is left to whoever deletes it",
       {{0min, inputs({}, {}, {deleting})}, {120min, inputs({}, {}, {deleting})}},
       {"skip logicvolume/l-del (deletion in progress)"}},
      {"grace 0 deletes at first sight",
       {{0min, inputs({vol("v1")}, {}, {lv("l1", "v9")})}},
       {"delete-volume volume/v1", "delete-logicvolume logicvolume/l1"},
       0ms},
      {"volumes first, sorted; duplicates decided once; healthy ones absent",
       {{0min, inputs({vol("v3"), vol("v1"), vol("v2"), vol("v1")}, {"v2"}, {lv("l1", "v9")})}},
       {"skip volume/v1 (waiting for the grace period)",
        "skip volume/v3 (waiting for the grace period)",
        "skip logicvolume/l1 (waiting for the grace period)"}},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      OrphanTracker tracker;
      OrphanOptions o = options(c.grace);
      std::vector<OrphanAction> actions;
      for (const auto& step : c.steps) {
        actions = tracker.decide(kT0 + step.at, kWall0 + step.at, step.in, o);
      }
      CHECK(describe(actions) == c.expected);
    }
  }
}

TEST_CASE("OrphanTracker reports how long and forgets what is gone", "[unit][orphan]") {
  OrphanTracker tracker;
  auto o = options();
  tracker.decide(kT0, kWall0, inputs({vol("v1"), vol("v2")}), o);
  CHECK(tracker.trackedCount() == 2);
  auto actions = tracker.decide(kT0 + 30min, kWall0 + 30min, inputs({vol("v1")}), o);
  REQUIRE(actions.size() == 1);
  CHECK(actions[0].orphaned_for == 30min);
  CHECK(actions[0].device == "/dev/v1");
  CHECK(actions[0].size_bytes == (1u << 30));
  CHECK(tracker.trackedCount() == 1);  // v2 vanished: forgotten
  CHECK(tracker.firstSeen(OrphanTarget::Volume, "v1") == kT0);
  CHECK_FALSE(tracker.firstSeen(OrphanTarget::Volume, "v2").has_value());
  tracker.forget(OrphanTarget::Volume, "v1");
  CHECK(tracker.trackedCount() == 0);
}

TEST_CASE("checkVolume and checkLogicVolume say why something is not an orphan", "[unit][orphan]") {
  auto in = inputs({vol("v1"), vol("v2", true), vol("v3"), vol("v4")}, {"v3"},
                   {lv("v4"), lv("l1"), lv("l2", "v1"), lv("l3", "", "node-2"), lv("l4", "v3")});
  CHECK(checkVolume(in, "v1") == OrphanCheck::HasLogicVolume);  // l2
  CHECK(checkVolume(in, "v2") == OrphanCheck::InUse);
  CHECK(checkVolume(in, "v3") == OrphanCheck::HasPersistentVolume);
  CHECK(checkVolume(in, "v4") == OrphanCheck::HasLogicVolume);
  CHECK(checkVolume(in, "v5") == OrphanCheck::Gone);
  CHECK(checkVolume(in, "") == OrphanCheck::Gone);
  CHECK(checkLogicVolume(in, "l1", kNode) == OrphanCheck::Orphan);
  CHECK(checkLogicVolume(in, "l2", kNode) == OrphanCheck::HasLocalVolume);
  CHECK(checkLogicVolume(in, "l3", kNode) == OrphanCheck::OtherNode);
  CHECK(checkLogicVolume(in, "l4", kNode) == OrphanCheck::HasPersistentVolume);
  CHECK(checkLogicVolume(in, "l9", kNode) == OrphanCheck::Gone);
  CHECK(checkLogicVolume(in, "l1", "") == OrphanCheck::OtherNode);
  auto orphan = inputs({vol("v1")});
  CHECK(checkVolume(orphan, "v1") == OrphanCheck::Orphan);
  orphan.cluster.caches_synced = false;
  CHECK(checkVolume(orphan, "v1") == OrphanCheck::Unsynced);
  CHECK(checkLogicVolume(orphan, "l1", kNode) == OrphanCheck::Unsynced);
}

TEST_CASE("toLocalVolumes maps volumes and marks them unchecked", "[unit][orphan]") {
  storage::Volume v;
  v.id = "carina-1";
  v.group = "ssd";
  v.device = "/dev/sdb3";
  v.size_bytes = 42;
  auto out = toLocalVolumes({v});
  REQUIRE(out.size() == 1);
  CHECK(out[0].id == "carina-1");
  CHECK(out[0].group == "ssd");
  CHECK(out[0].device == "/dev/sdb3");
  CHECK(out[0].size_bytes == 42);
  CHECK(out[0].in_use);  // until probed
}

TEST_CASE("orphanOptionsFromConfig takes the reconciler section", "[unit][orphan]") {
  core::ReconcilerConfig cfg;
  cfg.interval_seconds = 30;
  cfg.grace_period_seconds = 0;
  cfg.dry_run = true;
  cfg.enabled = false;
  auto o = orphanOptionsFromConfig(cfg, "n1");
  CHECK(o.interval == 30s);
  CHECK(o.grace == 0s);
  CHECK(o.dry_run);
  CHECK_FALSE(o.enabled);
  CHECK(o.node_name == "n1");
  auto d = orphanOptionsFromConfig(core::ReconcilerConfig{}, "n1");
  CHECK(d.interval == 10min);
  CHECK(d.grace == 1h);
  CHECK(d.enabled);
  CHECK_FALSE(d.dry_run);
}

TEST_CASE("parseKubeTimestamp reads RFC 3339 and rejects garbage", "[unit][orphan]") {
  using std::chrono::sys_days;
  using namespace std::chrono;
  auto base = sys_days(year(2026) / November / 23) + 4h + 25min + 33s;
  CHECK(parseKubeTimestamp("2026-11-23T04:25:33Z") == base);
  CHECK(parseKubeTimestamp("2026-11-23t04:25:33z") == base);
  CHECK(parseKubeTimestamp("2026-11-23T06:25:33+02:00") == base);
  CHECK(parseKubeTimestamp("2026-11-23T01:25:33-03:00") == base);
  CHECK(parseKubeTimestamp("2026-11-23T04:25:33.5Z") == base + 500ms);
  CHECK(parseKubeTimestamp("1970-01-01T00:00:00Z") == Wall::time_point{});
  for (std::string bad :
       {"", "2026-11-23", "2026-11-23T04:25:33", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
        "2026-11-23T24:00:00Z", "2026-11-23T04:25:33.Z", "2026-11-23T04:25:33Zjunk",
        "x026-11-23T04:25:33Z", "2026-11-23T04:25:33+2:00"}) {
    CAPTURE(bad);
    CHECK_FALSE(parseKubeTimestamp(bad).has_value());
  }
}

// ---------------------------------------------------------------------------------------------
// The runner, with fake dependencies

/** The node and the cluster, as the fake deps see them. Thread-safe (the pool calls in). */
struct World {
  std::mutex mu;
  ClusterView view;
  std::vector<LocalVolume> local;
  std::map<std::string, DeviceUseAnswer> use;  // by device; default: not in use
  std::set<std::string> probe_error;           // devices whose probe fails
  std::vector<std::string> probed;
  std::vector<std::string> deleted_volumes;
  std::vector<std::string> deleted_lvs;
  int volume_delete_failures = 0;  // the next N volume deletions fail
  absl::Status lv_delete_status;   // returned (once) by the next LogicVolume deletion
  absl::Status list_status;        // returned by local_volumes when not OK
  int list_calls = 0;
  std::function<void(World&, int call)> on_list;  // runs (locked) on every local_volumes call
  std::function<void(World&)> on_probe;           // runs (locked) on every probe
  std::vector<OrphanEvent> events;
  Steady::time_point now = kT0;

  World() { view.caches_synced = true; }

  OrphanDeps deps() {
    OrphanDeps d;
    d.cluster_view = [this] {
      std::lock_guard<std::mutex> lock(mu);
      return view;
    };
    d.local_volumes = [this]() -> absl::StatusOr<std::vector<LocalVolume>> {
      std::lock_guard<std::mutex> lock(mu);
      ++list_calls;
      if (on_list) {
        on_list(*this, list_calls);
      }
      if (!list_status.ok()) {
        return list_status;
      }
      auto out = local;
      for (auto& v : out) {
        v.in_use = true;  // as toLocalVolumes: the probe decides
        v.in_use_reason = "not checked";
      }
      return out;
    };
    d.device_use = [this](const std::string& device) -> absl::StatusOr<DeviceUseAnswer> {
      std::lock_guard<std::mutex> lock(mu);
      probed.push_back(device);
      if (on_probe) {
        on_probe(*this);
      }
      if (probe_error.count(device) > 0) {
        return absl::PermissionDeniedError("open " + device + ": EACCES");
      }
      auto it = use.find(device);
      return it == use.end() ? DeviceUseAnswer{false, ""} : it->second;
    };
    d.delete_volume = [this](const std::string& id) -> absl::Status {
      std::lock_guard<std::mutex> lock(mu);
      if (volume_delete_failures > 0) {
        --volume_delete_failures;
        return absl::FailedPreconditionError("delete " + id + ": EBUSY");
      }
      deleted_volumes.push_back(id);
      std::erase_if(local, [&](const LocalVolume& v) { return v.id == id; });
      return absl::OkStatus();
    };
    d.delete_logic_volume = [this](std::string name) -> Task<absl::Status> {
      std::lock_guard<std::mutex> lock(mu);
      absl::Status st = lv_delete_status;
      lv_delete_status = absl::OkStatus();
      if (st.ok() || st.code() == absl::StatusCode::kNotFound) {
        deleted_lvs.push_back(name);
        std::erase_if(view.logic_volumes, [&](const LogicVolumeRef& l) { return l.name == name; });
      }
      co_return st;
    };
    d.report = [this](const OrphanEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(e);
    };
    d.steady_now = [this] {
      std::lock_guard<std::mutex> lock(mu);
      return now;
    };
    d.wall_now = [this] {
      std::lock_guard<std::mutex> lock(mu);
      return kWall0 + (now - kT0);
    };
    return d;
  }

  void advance(std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> lock(mu);
    now += d;
  }
  std::vector<std::string> eventReasons() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<std::string> out;
    for (const auto& e : events) {
      out.push_back(e.reason + " " + std::string(toString(e.target)) + "/" + e.name);
    }
    return out;
  }
};

struct Harness {
  net::io_context ioc;
  net::thread_pool pool{1};
  World world;
  std::unique_ptr<OrphanReconciler> reconciler;

  explicit Harness(OrphanOptions o = options()) { make(std::move(o)); }
  ~Harness() {
    reconciler.reset();
    pool.join();
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  void make(OrphanOptions o) {
    reconciler =
        std::make_unique<OrphanReconciler>(ioc.get_executor(), pool, std::move(o), world.deps());
  }

  OrphanRunReport runOnce() {
    std::optional<OrphanRunReport> out;
    std::exception_ptr error;
    net::co_spawn(ioc, reconciler->runOnce(), [&](std::exception_ptr e, OrphanRunReport r) {
      error = e;
      out = std::move(r);
    });
    ioc.restart();
    ioc.run();
    if (error) {
      std::rethrow_exception(error);
    }
    REQUIRE(out.has_value());
    return *out;
  }
};

TEST_CASE("OrphanReconciler deletes orphans only after the grace period", "[unit][orphan]") {
  Harness h;
  h.world.local = {vol("v-orphan"), vol("v-pv"), vol("v-lv")};
  h.world.view.pv_volume_handles = {"v-pv"};
  h.world.view.logic_volumes = {lv("v-lv", "v-lv"), lv("l-orphan", "v-gone")};

  auto r1 = h.runOnce();
  CHECK(r1.synced);
  CHECK(r1.status.ok());
  CHECK(describe(r1.actions) ==
        std::vector<std::string>{"skip volume/v-orphan (waiting for the grace period)",
                                 "skip logicvolume/l-orphan (waiting for the grace period)"});
  CHECK(h.world.deleted_volumes.empty());
  CHECK(h.world.deleted_lvs.empty());
  // Only the candidate was probed: volumes with a PV or LogicVolume are never opened.
  CHECK(h.world.probed == std::vector<std::string>{"/dev/v-orphan"});

  h.world.advance(59min);
  h.runOnce();
  CHECK(h.world.deleted_volumes.empty());

  h.world.advance(1min);
  auto r3 = h.runOnce();
  CHECK(r3.volumes_deleted == std::vector<std::string>{"v-orphan"});
  CHECK(r3.logic_volumes_deleted == std::vector<std::string>{"l-orphan"});
  CHECK(h.world.deleted_volumes == std::vector<std::string>{"v-orphan"});
  CHECK(h.world.deleted_lvs == std::vector<std::string>{"l-orphan"});
  CHECK(h.world.eventReasons() ==
        std::vector<std::string>{"OrphanVolumeDeleted volume/v-orphan",
                                 "OrphanLogicVolumeDeleted logicvolume/l-orphan"});

  auto r4 = h.runOnce();
  CHECK(r4.actions.empty());
  auto s = h.reconciler->stats();
  CHECK(s.runs == 4);
  CHECK(s.volumes_deleted == 1);
  CHECK(s.logic_volumes_deleted == 1);
  CHECK(s.failures == 0);
  CHECK(s.skipped_unsynced == 0);
  CHECK(s.dry_run_reports == 0);
}

TEST_CASE("OrphanReconciler in dry-run reports but deletes nothing", "[unit][orphan]") {
  auto o = options(0ms);
  o.dry_run = true;
  Harness h(o);
  h.world.local = {vol("v1")};
  h.world.view.logic_volumes = {lv("l1", "v9")};
  for (int i = 0; i < 2; ++i) {
    auto r = h.runOnce();
    CHECK(r.would_delete == std::vector<std::string>{"volume/v1", "logicvolume/l1"});
  }
  CHECK(h.world.deleted_volumes.empty());
  CHECK(h.world.deleted_lvs.empty());
  CHECK(h.world.list_calls == 2);  // no re-check listing in dry-run
  auto s = h.reconciler->stats();
  CHECK(s.dry_run_reports == 4);
  CHECK(s.volumes_deleted == 0);
  CHECK(s.logic_volumes_deleted == 0);
  auto reasons = h.world.eventReasons();
  REQUIRE(reasons.size() == 4);
  CHECK(reasons[0] == "OrphanWouldDelete volume/v1");
  CHECK(reasons[1] == "OrphanWouldDelete logicvolume/l1");
}

TEST_CASE("OrphanReconciler does nothing while the caches are not synced", "[unit][orphan]") {
  Harness h(options(0ms));
  h.world.local = {vol("v1")};
  h.world.view.logic_volumes = {lv("l1", "v9")};
  h.world.view.caches_synced = false;
  auto r = h.runOnce();
  CHECK_FALSE(r.synced);
  CHECK(describe(r.actions) == std::vector<std::string>{"skip (caches not synced)"});
  CHECK(h.world.list_calls == 0);  // not even the disks are looked at
  CHECK(h.world.deleted_volumes.empty());
  CHECK(h.world.deleted_lvs.empty());
  CHECK(h.reconciler->stats().skipped_unsynced == 1);

  SECTION("... nor when they become unsynced while the disks are listed") {
    h.world.view.caches_synced = true;
    h.world.on_list = [](World& w, int) { w.view.caches_synced = false; };
    auto r2 = h.runOnce();
    CHECK_FALSE(r2.synced);
    CHECK(h.world.deleted_volumes.empty());
    CHECK(h.reconciler->stats().skipped_unsynced == 2);
  }
}

TEST_CASE("OrphanReconciler never deletes a volume in use", "[unit][orphan]") {
  Harness h(options(0ms));
  h.world.local = {vol("v1"), vol("v2")};
  h.world.use["/dev/v1"] = {true, "mounted at /var/lib/kubelet/x"};
  h.world.probe_error = {"/dev/v2"};  // cannot check: counts as in use
  auto r = h.runOnce();
  CHECK(describe(r.actions) ==
        std::vector<std::string>{"skip volume/v1 (in use)", "skip volume/v2 (in use)"});
  CHECK(r.actions[0].detail == "mounted at /var/lib/kubelet/x");
  CHECK(r.actions[1].detail.find("cannot check") == 0);
  CHECK(h.world.deleted_volumes.empty());
  CHECK(h.reconciler->stats().skipped_in_use == 2);
  REQUIRE(h.world.events.size() == 2);
  CHECK(h.world.events[0].reason == "OrphanVolumeInUse");
  CHECK(h.world.events[0].warning);
}

TEST_CASE("OrphanReconciler re-checks right before deleting", "[unit][orphan]") {
  Harness h(options(0ms));
  h.world.local = {vol("v1")};
  h.world.view.logic_volumes = {lv("l1", "v9")};

  SECTION("a PV that appeared meanwhile keeps the volume") {
    // Call 1 is the pass, call 2 the volume's re-check: the PV shows up in between.
    h.world.on_list = [](World& w, int call) {
      if (call == 2) {
        w.view.pv_volume_handles.insert("v1");
      }
    };
    auto r = h.runOnce();
    CHECK(describe(r.actions) ==
          std::vector<std::string>{"delete-volume volume/v1", "delete-logicvolume logicvolume/l1"});
    CHECK(r.rechecked_kept == std::vector<std::string>{"volume/v1"});
    CHECK(h.world.deleted_volumes.empty());
    CHECK(h.world.deleted_lvs == std::vector<std::string>{"l1"});
    CHECK(h.reconciler->stats().recheck_aborts == 1);
  }
  SECTION("a mount that appeared meanwhile keeps the volume") {
    h.world.on_probe = [](World& w) {
      if (w.probed.size() == 2) {
        w.use["/dev/v1"] = {true, "mounted at /mnt"};
      }
    };
    auto r = h.runOnce();
    CHECK(r.rechecked_kept == std::vector<std::string>{"volume/v1"});
    CHECK(h.world.deleted_volumes.empty());
    CHECK(h.reconciler->stats().skipped_in_use == 1);
  }
  SECTION("a volume that appeared for the LogicVolume keeps it") {
    h.world.on_list = [](World& w, int call) {
      if (call == 3) {  // the LogicVolume's re-check
        w.local.push_back(vol("v9"));
      }
    };
    auto r = h.runOnce();
    CHECK(r.rechecked_kept == std::vector<std::string>{"logicvolume/l1"});
    CHECK(h.world.deleted_lvs.empty());
    CHECK(h.world.deleted_volumes == std::vector<std::string>{"v1"});
  }
  SECTION("a LogicVolume that started being deleted meanwhile is left alone") {
    h.world.on_list = [](World& w, int call) {
      if (call == 3) {
        w.view.logic_volumes[0].deleting = true;
      }
    };
    auto r = h.runOnce();
    CHECK(r.rechecked_kept == std::vector<std::string>{"logicvolume/l1"});
    CHECK(h.world.deleted_lvs.empty());
  }
  SECTION("a failed re-check listing deletes nothing") {
    h.world.on_list = [](World& w, int call) {
      if (call >= 2) {
        w.list_status = absl::UnavailableError("disk busy");
      }
    };
    auto r = h.runOnce();
    CHECK(h.world.deleted_volumes.empty());
    CHECK(h.world.deleted_lvs.empty());
    CHECK(r.failed.size() == 2);
    CHECK(h.reconciler->stats().failures == 2);
  }
}

TEST_CASE("OrphanReconciler counts a failed deletion and retries it next pass", "[unit][orphan]") {
  Harness h(options(0ms));
  h.world.local = {vol("v1")};
  h.world.view.logic_volumes = {lv("l1", "v9")};
  h.world.volume_delete_failures = 1;
  h.world.lv_delete_status = absl::UnavailableError("apiserver down");
  auto r1 = h.runOnce();
  CHECK(r1.failed == std::vector<std::string>{"volume/v1", "logicvolume/l1"});
  CHECK(h.reconciler->stats().failures == 2);
  CHECK(h.world.eventReasons() == std::vector<std::string>{"OrphanDeleteFailed volume/v1",
                                                           "OrphanDeleteFailed logicvolume/l1"});
  auto r2 = h.runOnce();
  CHECK(r2.volumes_deleted == std::vector<std::string>{"v1"});
  CHECK(r2.logic_volumes_deleted == std::vector<std::string>{"l1"});
  auto s = h.reconciler->stats();
  CHECK(s.failures == 2);
  CHECK(s.volumes_deleted == 1);
  CHECK(s.logic_volumes_deleted == 1);
}

TEST_CASE("OrphanReconciler treats a LogicVolume already gone as deleted", "[unit][orphan]") {
  Harness h(options(0ms));
  h.world.view.logic_volumes = {lv("l1", "v9")};
  h.world.lv_delete_status = absl::NotFoundError("logicvolumes l1 not found");
  auto r = h.runOnce();
  CHECK(r.logic_volumes_deleted == std::vector<std::string>{"l1"});
  CHECK(h.reconciler->stats().failures == 0);
}

TEST_CASE("OrphanReconciler deletes nothing when the disks cannot be listed", "[unit][orphan]") {
  Harness h(options(0ms));
  h.world.view.logic_volumes = {lv("l1", "v1")};  // would look orphaned without the listing
  h.world.list_status = absl::InternalError("libfdisk: cannot read");
  auto r = h.runOnce();
  CHECK_FALSE(r.status.ok());
  CHECK(r.actions.empty());
  CHECK(h.world.deleted_lvs.empty());
  CHECK(h.reconciler->stats().failures == 1);
}

TEST_CASE("OrphanReconciler runs one pass at a time", "[unit][orphan]") {
  Harness h(options(0ms));
  h.world.local = {vol("v1")};
  std::promise<void> release;
  auto released = release.get_future().share();
  h.world.on_list = [released](World& w, int call) {
    if (call == 1) {
      w.mu.unlock();  // let the other pass read the view meanwhile
      released.wait();
      w.mu.lock();
    }
  };
  std::optional<OrphanRunReport> first;
  std::optional<OrphanRunReport> second;
  net::co_spawn(h.ioc, h.reconciler->runOnce(),
                [&](std::exception_ptr, OrphanRunReport r) { first = std::move(r); });
  net::co_spawn(h.ioc, h.reconciler->runOnce(), [&](std::exception_ptr, OrphanRunReport r) {
    second = std::move(r);
    release.set_value();
  });
  h.ioc.run();
  REQUIRE(first.has_value());
  REQUIRE(second.has_value());
  CHECK_FALSE(first->busy);
  CHECK(second->busy);
  CHECK(first->volumes_deleted == std::vector<std::string>{"v1"});
}

TEST_CASE("OrphanReconciler start() validates and the loop runs every interval", "[unit][orphan]") {
  auto o = options(0ms);
  o.interval = 2ms;
  Harness h(o);
  h.world.local = {vol("v1")};

  SECTION("the loop deletes, then stop() ends it") {
    REQUIRE(h.reconciler->start().ok());
    CHECK(h.reconciler->start().code() == absl::StatusCode::kFailedPrecondition);
    // Run until the loop has done its work (bounded, no timing assertion).
    for (int i = 0; i < 5000 && h.reconciler->stats().runs < 3; ++i) {
      h.ioc.run_for(2ms);
    }
    CHECK(h.reconciler->stats().runs >= 3);
    CHECK(h.world.deleted_volumes == std::vector<std::string>{"v1"});
    h.reconciler->stop();
    h.reconciler->stop();  // idempotent
    h.ioc.restart();
    h.ioc.run();  // returns: the loop ended
    auto r = h.runOnce();
    CHECK(r.status.code() == absl::StatusCode::kCancelled);
  }
  SECTION("disabled: start() is OK and nothing runs") {
    auto off = o;
    off.enabled = false;
    h.make(off);
    REQUIRE(h.reconciler->start().ok());
    h.ioc.run_for(20ms);
    CHECK(h.reconciler->stats().runs == 0);
    CHECK(h.world.deleted_volumes.empty());
  }
  SECTION("bad options and missing deps are InvalidArgument") {
    auto no_node = o;
    no_node.node_name.clear();
    h.make(no_node);
    CHECK(h.reconciler->start().code() == absl::StatusCode::kInvalidArgument);
    auto zero = o;
    zero.interval = 0ms;
    h.make(zero);
    CHECK(h.reconciler->start().code() == absl::StatusCode::kInvalidArgument);
    OrphanDeps deps = h.world.deps();
    deps.delete_volume = nullptr;
    OrphanReconciler r(h.ioc.get_executor(), h.pool, o, deps);
    CHECK(r.start().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("OrphanReconciler applies new settings on reload", "[unit][orphan]") {
  auto o = options(0ms);
  o.interval = std::chrono::hours(1);
  o.dry_run = true;
  Harness h(o);
  h.world.local = {vol("v1")};
  REQUIRE(h.reconciler->start().ok());
  h.ioc.run_for(20ms);
  CHECK(h.reconciler->stats().runs == 0);  // the first pass is an hour away

  SECTION("a shorter interval cuts the current wait; dry-run off deletes") {
    auto next = o;
    next.interval = 2ms;
    next.dry_run = false;
    next.node_name = "ignored";  // the node name stays
    next.enabled = false;        // enabling/disabling takes a restart
    REQUIRE(h.reconciler->updateOptions(next).ok());
    // The deletion runs on the pool: read what it wrote under the world's lock.
    auto deleted = [&] {
      std::lock_guard<std::mutex> lock(h.world.mu);
      return h.world.deleted_volumes;
    };
    for (int i = 0; i < 5000 && deleted().empty(); ++i) {
      h.ioc.run_for(2ms);
    }
    CHECK(deleted() == std::vector<std::string>{"v1"});
    CHECK(h.reconciler->stats().dry_run_reports == 0);
    OrphanOptions now = h.reconciler->options();
    CHECK(now.node_name == o.node_name);
    CHECK(now.enabled);
    CHECK(now.interval == 2ms);
    CHECK_FALSE(now.dry_run);
  }
  SECTION("the same interval leaves the wait alone; dry-run applies at the next pass") {
    auto next = o;
    next.dry_run = false;
    REQUIRE(h.reconciler->updateOptions(next).ok());
    h.ioc.run_for(20ms);
    CHECK(h.reconciler->stats().runs == 0);
    CHECK_FALSE(h.reconciler->options().dry_run);
    // A pass by hand (the loop's timer is still pending: run the context until it is done).
    std::optional<OrphanRunReport> r;
    net::co_spawn(h.ioc, h.reconciler->runOnce(),
                  [&](std::exception_ptr, OrphanRunReport rep) { r = std::move(rep); });
    for (int i = 0; i < 5000 && !r; ++i) {
      h.ioc.run_for(2ms);
    }
    REQUIRE(r.has_value());
    CHECK(r->volumes_deleted == std::vector<std::string>{"v1"});
  }
  SECTION("a non-positive interval is refused and changes nothing") {
    auto bad = o;
    bad.interval = 0ms;
    CHECK(h.reconciler->updateOptions(bad).code() == absl::StatusCode::kInvalidArgument);
    h.ioc.run_for(5ms);
    CHECK(h.reconciler->options().interval == std::chrono::hours(1));
  }
  h.reconciler->stop();
  h.ioc.restart();
  h.ioc.run_for(50ms);
}

}  // namespace
}  // namespace carina::cluster
