#include "agent/storage/partition_engine.h"

#include <atomic>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "agent/core/constants.h"
#include "agent/storage/placement.h"
#include "tests/fakes/fake_partition_table.h"
#include "tests/unit/storage/partition_test_util.h"

using carina::storage::DiskInfo;
using carina::storage::DiskSpace;
using carina::storage::PartitionEngine;
using carina::storage::Volume;
using carina::storage::volumeIdForName;
using carina::test::FakeDisk;
using carina::test::FakePartitionTableFactory;
using namespace carina::test::partition;

namespace {

struct Fixture {
  std::shared_ptr<FakePartitionTableFactory> fake = std::make_shared<FakePartitionTableFactory>();
  std::unique_ptr<PartitionEngine> engine = std::make_unique<PartitionEngine>(fake);
  std::vector<DiskInfo> disks;

  void addDisk(const std::string& name, uint64_t bytes, const std::string& group = "raw",
               uint32_t sector = 512) {
    fake->addDisk("/dev/" + name, bytes, sector);
    disks.push_back(diskInfo(name, bytes, group, sector));
  }
  void load() { REQUIRE(engine->setDisks(disks).ok()); }
  void restart() {
    engine = std::make_unique<PartitionEngine>(fake);
    load();
  }
  FakeDisk disk(const std::string& name) { return fake->disk("/dev/" + name); }
};

const carina::os::PartitionEntry* entryByName(const FakeDisk& d, const std::string& id) {
  for (const auto& e : d.partitions) {
    if (e.name == id) {
      return &e;
    }
  }
  return nullptr;
}

}  // namespace

TEST_CASE("engine creates a shared volume as a GPT partition", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.load();
  auto v = f.engine->createVolume(spec("pvc-1", 100 * MiB + 1));
  REQUIRE(v.ok());
  CHECK(v->id == volumeIdForName("pvc-1"));
  CHECK(v->size_bytes == 101 * MiB);  // rounded up to MiB
  CHECK(v->disk == "sdb");
  CHECK(v->device == "/dev/sdb1");
  CHECK(v->group == "raw");
  CHECK_FALSE(v->exclusive);
  FakeDisk d = f.disk("sdb");
  CHECK(d.label == "gpt");
  REQUIRE(d.partitions.size() == 1);
  CHECK(d.partitions[0].start == 2048);  // 1 MiB
  CHECK(d.partitions[0].size == 101 * MiB / 512);
  CHECK(d.partitions[0].type_guid == carina::kSharedPartitionTypeGuid);
  CHECK(d.partitions[0].name == v->id);
  checkConsistent(d);
  CHECK(f.engine->findVolume(v->id) == *v);
  CHECK(f.engine->listVolumes() == std::vector<Volume>{*v});
}

TEST_CASE("engine placement is placement.h's best fit", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.addDisk("sdc", 512 * MiB);
  f.load();
  // Build holes: on sdb a 200 MiB and a 50 MiB hole.
  for (const char* n : {"a", "b", "c", "d", "e"}) {
    REQUIRE(f.engine->createVolume(spec(n, (std::string(n) == "b" ? 200 : 50) * MiB)).ok());
  }
  // a,b,c,d,e: sdc is the smaller disk, so best fit put the first ones there; whatever happened,
  // every subsequent create must agree with bestFitShared on the snapshot.
  for (int i = 0; i < 6; ++i) {
    auto snap = f.engine->snapshot();
    std::vector<DiskSpace> spaces;
    for (const auto& g : snap.groups) {
      for (const auto& d : g.disks) {
        spaces.push_back(d.space);
      }
    }
    const uint64_t bytes = (10 + 17 * static_cast<uint64_t>(i)) * MiB;
    auto expected = carina::storage::bestFitShared(spaces, bytes);
    auto v = f.engine->createVolume(spec("x" + std::to_string(i), bytes));
    if (!expected) {
      CHECK(v.status().code() == absl::StatusCode::kResourceExhausted);
      continue;
    }
    REQUIRE(v.ok());
    CHECK(v->disk == expected->disk);
    const FakeDisk d = f.disk(v->disk);
    CHECK(entryByName(d, v->id)->start * 512 == expected->offset);
    checkConsistent(d);
  }
}

TEST_CASE("engine reuses the smallest hole that fits", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.load();
  REQUIRE(f.engine->createVolume(spec("a", 100 * MiB)).ok());
  auto big = f.engine->createVolume(spec("big", 300 * MiB));
  REQUIRE(f.engine->createVolume(spec("b", 100 * MiB)).ok());
  auto small = f.engine->createVolume(spec("small", 60 * MiB));
  REQUIRE(f.engine->createVolume(spec("c", 100 * MiB)).ok());
  REQUIRE(big.ok());
  REQUIRE(small.ok());
  REQUIRE(f.engine->deleteVolume(big->id).ok());
  REQUIRE(f.engine->deleteVolume(small->id).ok());
  // holes: 300 MiB (big), 60 MiB (small), and the tail.
  auto v = f.engine->createVolume(spec("fits-small", 50 * MiB));
  REQUIRE(v.ok());
  const FakeDisk d = f.disk("sdb");
  CHECK(entryByName(d, v->id)->start * 512 == 1 * MiB + 100 * MiB + 300 * MiB + 100 * MiB);
  auto w = f.engine->createVolume(spec("fits-big", 250 * MiB));
  REQUIRE(w.ok());
  CHECK(entryByName(f.disk("sdb"), w->id)->start * 512 == 101 * MiB);
  // The reused slot is the lowest free one, and the kernel view follows.
  checkConsistent(f.disk("sdb"));
}

TEST_CASE("createVolume is idempotent by name", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.load();
  auto v1 = f.engine->createVolume(spec("pvc", 64 * MiB));
  auto v2 = f.engine->createVolume(spec("pvc", 64 * MiB));
  auto v3 = f.engine->createVolume(spec("pvc", 10 * MiB));  // smaller request, still satisfied
  REQUIRE(v1.ok());
  REQUIRE(v2.ok());
  REQUIRE(v3.ok());
  CHECK(*v1 == *v2);
  CHECK(*v1 == *v3);
  CHECK(f.disk("sdb").partitions.size() == 1);
  CHECK(f.disk("sdb").writes == 1);

  SECTION("incompatible same name is AlreadyExists") {
    CHECK(f.engine->createVolume(spec("pvc", 128 * MiB)).status().code() ==
          absl::StatusCode::kAlreadyExists);
    CHECK(f.engine->createVolume(spec("pvc", 64 * MiB, true)).status().code() ==
          absl::StatusCode::kAlreadyExists);
    auto s = spec("pvc", 10 * MiB);
    s.limit_bytes = 32 * MiB;
    CHECK(f.engine->createVolume(s).status().code() == absl::StatusCode::kAlreadyExists);
    CHECK(f.disk("sdb").partitions.size() == 1);
  }
}

TEST_CASE("createVolume rejects bad requests with clear codes", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB, "fast");
  f.addDisk("sdc", 1 * GiB, "slow");
  f.load();
  CHECK(f.engine->createVolume(spec("", MiB, false, "fast")).status().code() ==
        absl::StatusCode::kInvalidArgument);
  // Two RAW groups and none named.
  auto none = f.engine->createVolume(spec("v", MiB));
  CHECK(none.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(none.status().message()).find("fast") != std::string::npos);
  CHECK(f.engine->createVolume(spec("v", MiB, false, "nope")).status().code() ==
        absl::StatusCode::kInvalidArgument);
  auto s = spec("v", 10 * MiB, false, "fast");
  s.limit_bytes = 5 * MiB;
  CHECK(f.engine->createVolume(s).status().code() == absl::StatusCode::kOutOfRange);
  s.required_bytes = 5 * MiB + 1;
  s.limit_bytes = 5 * MiB + 2;  // no MiB multiple inside
  CHECK(f.engine->createVolume(s).status().code() == absl::StatusCode::kOutOfRange);
  CHECK(f.engine->createVolume(spec("v", 2 * GiB, false, "fast")).status().code() ==
        absl::StatusCode::kOutOfRange);
  CHECK(f.engine->createVolume(spec("v", ~0ULL, false, "fast")).status().code() ==
        absl::StatusCode::kOutOfRange);
  REQUIRE(f.engine->createVolume(spec("w", 900 * MiB, false, "fast")).ok());
  CHECK(f.engine->createVolume(spec("v", 200 * MiB, false, "fast")).status().code() ==
        absl::StatusCode::kResourceExhausted);
  // Defaults: no size at all gives the default size, capped by the limit.
  auto d = spec("dflt", 0, false, "slow");
  d.limit_bytes = 20 * MiB + 5;
  auto v = f.engine->createVolume(d);
  REQUIRE(v.ok());
  CHECK(v->size_bytes == 20 * MiB);
  CHECK(f.engine->deleteVolume("").code() == absl::StatusCode::kInvalidArgument);
  CHECK(f.engine->expandVolume("nope", MiB).status().code() == absl::StatusCode::kNotFound);
  CHECK(f.engine->expandVolume(v->id, 0).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("engine with no disks refuses creates", "[unit][partition]") {
  Fixture f;
  f.load();
  CHECK(f.engine->createVolume(spec("v", MiB)).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(f.engine->listVolumes().empty());
  CHECK(f.engine->deleteVolume("carina-0000").ok());
}

TEST_CASE("exclusive volumes get an empty disk for themselves", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.addDisk("sdc", 2 * GiB);
  f.load();
  REQUIRE(f.engine->createVolume(spec("shared", 10 * MiB)).ok());  // best fit: sdb
  auto ex = f.engine->createVolume(spec("ex", 100 * MiB, true));
  REQUIRE(ex.ok());
  CHECK(ex->disk == "sdc");
  CHECK(ex->exclusive);
  CHECK(ex->size_bytes == 100 * MiB);
  const uint64_t usable_end = (2 * GiB - 34 * 512) / MiB * MiB;
  CHECK(ex->max_bytes == usable_end - MiB);
  const FakeDisk d = f.disk("sdc");
  REQUIRE(d.partitions.size() == 1);
  CHECK(d.partitions[0].start == 2048);
  CHECK(d.partitions[0].type_guid == carina::kExclusivePartitionTypeGuid);

  // No second volume ever lands on the exclusive disk, even when it would fit only there.
  auto big = f.engine->createVolume(spec("big", 1500 * MiB));
  CHECK(big.status().code() == absl::StatusCode::kResourceExhausted);
  for (int i = 0; i < 5; ++i) {
    auto v = f.engine->createVolume(spec("s" + std::to_string(i), 100 * MiB));
    REQUIRE(v.ok());
    CHECK(v->disk == "sdb");
  }
  CHECK(f.engine->createVolume(spec("ex2", 10 * MiB, true)).status().code() ==
        absl::StatusCode::kResourceExhausted);
  CHECK(f.disk("sdc").partitions.size() == 1);

  // It grows to near the end of the disk, not beyond.
  auto grown = f.engine->expandVolume(ex->id, usable_end - MiB);
  REQUIRE(grown.ok());
  CHECK(grown->size_bytes == usable_end - MiB);
  auto beyond = f.engine->expandVolume(ex->id, usable_end);
  CHECK(beyond.status().code() == absl::StatusCode::kOutOfRange);

  // After a restart the type GUID still says exclusive.
  f.restart();
  auto again = f.engine->findVolume(ex->id);
  REQUIRE(again);
  CHECK(again->exclusive);
  CHECK(f.engine->createVolume(spec("ex", 100 * MiB, true)).ok());
  auto snap = f.engine->snapshot();
  REQUIRE(snap.groups.size() == 1);
  for (const auto& disk : snap.groups[0].disks) {
    CHECK(disk.space.exclusive == (disk.info.name == "sdc"));
  }
  checkConsistent(f.disk("sdc"));
}

TEST_CASE("expandVolume grows in place or refuses clearly", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.load();
  auto a = f.engine->createVolume(spec("a", 100 * MiB));
  auto b = f.engine->createVolume(spec("b", 100 * MiB));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->max_bytes > 100 * MiB);  // b did not exist yet
  CHECK(f.engine->findVolume(a->id)->max_bytes == 100 * MiB);
  auto grow_a = f.engine->expandVolume(a->id, 150 * MiB);
  CHECK(grow_a.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(std::string(grow_a.status().message()).find("taken") != std::string::npos);
  auto same = f.engine->expandVolume(a->id, 50 * MiB);
  REQUIRE(same.ok());
  CHECK(same->size_bytes == 100 * MiB);
  // b is last: it grows, and the kernel follows (BLKPG resize) even while "mounted".
  f.fake->editDisk("/dev/sdb", [](FakeDisk& d) { d.in_use.insert(2); });
  auto grow_b = f.engine->expandVolume(b->id, 300 * MiB - 1);
  REQUIRE(grow_b.ok());
  CHECK(grow_b->size_bytes == 300 * MiB);
  checkConsistent(f.disk("sdb"));
  // After deleting b, a can grow into its space.
  f.fake->editDisk("/dev/sdb", [](FakeDisk& d) { d.in_use.clear(); });
  REQUIRE(f.engine->deleteVolume(b->id).ok());
  auto grow_a2 = f.engine->expandVolume(a->id, 500 * MiB);
  REQUIRE(grow_a2.ok());
  CHECK(grow_a2->size_bytes == 500 * MiB);
  CHECK(f.engine->expandVolume(a->id, 2 * GiB).status().code() == absl::StatusCode::kOutOfRange);
  checkConsistent(f.disk("sdb"));
}

TEST_CASE("deleteVolume is idempotent and refuses volumes in use", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.load();
  auto v = f.engine->createVolume(spec("v", 64 * MiB));
  REQUIRE(v.ok());
  f.fake->editDisk("/dev/sdb", [](FakeDisk& d) { d.in_use.insert(1); });
  auto busy = f.engine->deleteVolume(v->id);
  CHECK(busy.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(f.disk("sdb").partitions.size() == 1);
  CHECK(f.engine->findVolume(v->id));
  f.fake->editDisk("/dev/sdb", [](FakeDisk& d) { d.in_use.clear(); });
  REQUIRE(f.engine->deleteVolume(v->id).ok());
  CHECK(f.disk("sdb").partitions.empty());
  CHECK(f.disk("sdb").kernel.empty());
  CHECK_FALSE(f.engine->findVolume(v->id));
  CHECK(f.engine->deleteVolume(v->id).ok());
  CHECK(f.engine->deleteVolume("carina-unknown").ok());
}

TEST_CASE("new partitions are wiped before the table is written", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.fake->editDisk("/dev/sdb", [](FakeDisk& d) {
    d.signatures[1 * MiB + 1024] = "ext4";  // inside the first volume
    d.signatures[900 * MiB] = "xfs";        // outside
  });
  f.load();
  REQUIRE(f.engine->createVolume(spec("v", 64 * MiB)).ok());
  auto sigs = f.disk("sdb").signatures;
  CHECK(sigs.count(1 * MiB + 1024) == 0);
  CHECK(sigs.count(900 * MiB) == 1);
}

TEST_CASE("a new engine finds every volume from the disks alone", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.addDisk("sdc", 1 * GiB, "raw", 4096);
  f.load();
  std::vector<Volume> made;
  for (int i = 0; i < 6; ++i) {
    auto v = f.engine->createVolume(
        spec("v" + std::to_string(i), (20 + 30 * static_cast<uint64_t>(i)) * MiB, i == 5));
    REQUIRE(v.ok());
    made.push_back(*v);
  }
  auto before = f.engine->listVolumes();
  f.restart();
  auto after = f.engine->listVolumes();
  auto byId = [](const Volume& a, const Volume& b) { return a.id < b.id; };
  std::sort(before.begin(), before.end(), byId);
  std::sort(after.begin(), after.end(), byId);
  CHECK(before == after);
  CHECK(after.size() == 6);
  for (const Volume& v : made) {
    auto found = f.engine->findVolume(v.id);
    REQUIRE(found);
    CHECK(found->size_bytes == v.size_bytes);
  }
}

TEST_CASE("setDisks repairs the kernel view", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.load();
  auto a = f.engine->createVolume(spec("a", 64 * MiB));
  auto b = f.engine->createVolume(spec("b", 64 * MiB));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  f.fake->editDisk("/dev/sdb", [](FakeDisk& d) {
    d.kernel.erase(d.kernel.begin());                      // p1 missing
    d.kernel.back().size_bytes -= MiB;                     // p2 wrong size
    d.kernel.push_back({7, "sdb7", 800 * MiB, 10 * MiB});  // stale p7
  });
  f.restart();
  checkConsistent(f.disk("sdb"));

  SECTION("a stale partition that is in use is reported, the disk keeps its volumes") {
    f.fake->editDisk("/dev/sdb", [](FakeDisk& d) {
      d.kernel.push_back({9, "sdb9", 900 * MiB, 10 * MiB});
      d.in_use.insert(9);
    });
    f.engine = std::make_unique<PartitionEngine>(f.fake);
    auto st = f.engine->setDisks(f.disks);
    CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(f.engine->listVolumes().size() == 2);
    // Placement avoids a disk whose kernel view is not trusted.
    CHECK_FALSE(f.engine->createVolume(spec("c", 10 * MiB)).ok());
    f.fake->editDisk("/dev/sdb", [](FakeDisk& d) { d.in_use.clear(); });
    REQUIRE(f.engine->rescan().ok());
    CHECK(f.engine->createVolume(spec("c", 10 * MiB)).ok());
    checkConsistent(f.disk("sdb"));
  }
}

TEST_CASE("setDisks manages eligible RAW disks only and reports the rest", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.addDisk("sdc", 1 * GiB);
  f.addDisk("sdd", 1 * GiB);
  f.addDisk("sde", 1 * GiB);
  f.addDisk("sdf", 1 * GiB, "");
  f.disks[1].eligible = false;
  f.disks[1].reason = "mounted";
  f.disks[2].policy = carina::core::DiskPolicy::Lvm;
  f.fake->editDisk("/dev/sde", [](FakeDisk& d) {
    d.label = "gpt";
    d.partitions.push_back({0, 2048, 2048, "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "data"});
  });
  auto st = f.engine->setDisks(f.disks);
  CHECK(st.code() == absl::StatusCode::kFailedPrecondition);
  auto snap = f.engine->snapshot();
  REQUIRE(snap.groups.size() == 1);
  REQUIRE(snap.groups[0].disks.size() == 1);
  CHECK(snap.groups[0].disks[0].info.name == "sdb");
  CHECK(snap.groups[0].empty_disks == 1);
  std::set<std::string> unassigned;
  for (const auto& d : snap.unassigned) {
    unassigned.insert(d.name);
    if (d.name == "sde") {
      CHECK_FALSE(d.eligible);
      CHECK(d.reason.find("not carina's") != std::string::npos);
    }
  }
  CHECK(unassigned == std::set<std::string>{"sdc", "sde", "sdf"});
  CHECK(f.fake->disk("/dev/sde").writes == 0);
  CHECK(f.fake->disk("/dev/sdc").label.empty());
}

TEST_CASE("a disk that disappears drops out without writes", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.addDisk("sdc", 1 * GiB);
  f.load();
  auto v = f.engine->createVolume(spec("v", 700 * MiB));
  REQUIRE(v.ok());
  auto w = f.engine->createVolume(spec("w", 700 * MiB));
  REQUIRE(w.ok());
  CHECK(v->disk != w->disk);
  const uint64_t gen = f.engine->snapshot().generation;
  auto keep = f.disks;
  keep.erase(std::remove_if(keep.begin(), keep.end(),
                            [&](const DiskInfo& d) { return d.name == v->disk; }),
             keep.end());
  REQUIRE(f.engine->setDisks(keep).ok());
  CHECK_FALSE(f.engine->findVolume(v->id));
  CHECK(f.engine->findVolume(w->id));
  CHECK(f.engine->snapshot().generation > gen);
  CHECK(f.engine->listVolumes().size() == 1);
  // It comes back with its volume.
  REQUIRE(f.engine->setDisks(f.disks).ok());
  CHECK(f.engine->findVolume(v->id));
}

TEST_CASE("snapshot reports sizes, free segments and generations", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.load();
  auto s0 = f.engine->snapshot();
  REQUIRE(s0.groups.size() == 1);
  const auto& g0 = s0.groups[0];
  CHECK(g0.total_bytes == 1 * GiB);
  const uint64_t usable = (1 * GiB - 34 * 512) / MiB * MiB - MiB;
  CHECK(g0.free_bytes == usable);
  CHECK(g0.largest_allocatable_bytes == usable);
  CHECK(g0.empty_disks == 1);
  auto a = f.engine->createVolume(spec("a", 100 * MiB));
  auto b = f.engine->createVolume(spec("b", 100 * MiB));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(f.engine->deleteVolume(a->id).ok());
  auto s1 = f.engine->snapshot();
  CHECK(s1.generation > s0.generation);
  const auto& d = s1.groups[0].disks[0];
  CHECK(d.space.partitions == 1);
  REQUIRE(d.space.free.size() == 2);
  CHECK(d.space.free[0] == carina::storage::Segment{MiB, 100 * MiB});
  CHECK(d.space.free[1].start == 201 * MiB);
  CHECK(d.largest_free_bytes == d.space.free[1].length);
  CHECK(s1.groups[0].free_bytes == usable - 100 * MiB);
  CHECK(s1.groups[0].empty_disks == 0);
  // Repeating a request that changes nothing leaves the generation alone.
  REQUIRE(f.engine->createVolume(spec("b", 100 * MiB)).ok());
  REQUIRE(f.engine->deleteVolume(a->id).ok());
  REQUIRE(f.engine->setDisks(f.disks).ok());
  CHECK(f.engine->snapshot().generation == s1.generation);
}

TEST_CASE("50 concurrent creates on one disk give 50 disjoint partitions", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 4 * GiB);
  f.load();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      if (f.engine
              ->createVolume(
                  spec("c" + std::to_string(i), (8 + static_cast<uint64_t>(i % 5)) * MiB))
              .ok()) {
        ok++;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(ok == 50);
  const FakeDisk d = f.disk("sdb");
  CHECK(d.partitions.size() == 50);
  checkConsistent(d);
  CHECK(f.engine->listVolumes().size() == 50);
}

TEST_CASE("concurrent creates of one name give exactly one volume", "[unit][partition]") {
  Fixture f;
  f.addDisk("sdb", 1 * GiB);
  f.addDisk("sdc", 1 * GiB);
  f.load();
  std::vector<std::thread> threads;
  std::vector<absl::StatusOr<Volume>> results(10, absl::UnknownError("not run"));
  for (int i = 0; i < 10; ++i) {
    threads.emplace_back([&, i] {
      results[static_cast<std::size_t>(i)] = f.engine->createVolume(spec("same", 32 * MiB));
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (const auto& r : results) {
    REQUIRE(r.ok());
    CHECK(*r == *results[0]);
  }
  CHECK(f.disk("sdb").partitions.size() + f.disk("sdc").partitions.size() == 1);
}

TEST_CASE("operations on different disks run in parallel", "[unit][partition]") {
  Fixture f;
  for (int i = 0; i < 4; ++i) {
    f.addDisk("sd" + std::string(1, static_cast<char>('b' + i)), 1 * GiB, "raw");
  }
  f.load();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        auto name = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto v = f.engine->createVolume(spec(name, 16 * MiB));
        if (v.ok() && i % 2 == 0) {
          (void)f.engine->expandVolume(v->id, 20 * MiB);
        }
        if (v.ok() && i % 3 == 0) {
          (void)f.engine->deleteVolume(v->id);
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  std::size_t total = 0;
  for (const auto& d : f.disks) {
    FakeDisk fd = f.disk(d.name);
    checkConsistent(fd);
    total += fd.partitions.size();
  }
  CHECK(total == f.engine->listVolumes().size());
  CHECK(total == 4 * 6);
}
