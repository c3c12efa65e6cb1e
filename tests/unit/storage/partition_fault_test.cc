// Crash safety of the partition engine, Beast's fail_count pattern: for n = 0, 1, 2, ... the
// n-th step fails (fake table steps: open, label, add, wipe, table write, each BLKPG call, in-use
// probe; or engine steps through the step hook). Each time: the error is reported, a NEW engine
// on the same disks repairs the state in setDisks (kernel view == table, nothing leaked, nothing
// lost), and the retried request succeeds with the expected final state. The same holds when the
// same engine instance retries.

#include <functional>
#include <string>

#include <catch2/catch.hpp>

#include "agent/storage/partition_engine.h"
#include "tests/fakes/fake_partition_table.h"
#include "tests/unit/storage/partition_test_util.h"

using carina::storage::DiskInfo;
using carina::storage::PartitionEngine;
using carina::storage::PartitionEngineOptions;
using carina::storage::volumeIdForName;
using carina::test::FakeDisk;
using carina::test::FakePartitionTableFactory;
using namespace carina::test::partition;

namespace {

struct Scenario {
  std::string name;
  std::function<void(PartitionEngine&)> setup;                    // runs without faults
  std::function<absl::Status(PartitionEngine&)> op;               // the operation under test
  std::function<void(const FakeDisk&, PartitionEngine&)> verify;  // final state after success
};

std::vector<Scenario> scenarios() {
  const std::string a = volumeIdForName("a");
  const std::string b = volumeIdForName("b");
  auto countNamed = [](const FakeDisk& d, const std::string& id) {
    return std::count_if(d.partitions.begin(), d.partitions.end(),
                         [&](const auto& e) { return e.name == id; });
  };
  return {
      {"create on an empty disk (label + partition)", [](PartitionEngine&) {},
       [](PartitionEngine& e) { return e.createVolume(spec("a", 64 * MiB)).status(); },
       [=](const FakeDisk& d, PartitionEngine& e) {
         CHECK(d.label == "gpt");
         CHECK(d.partitions.size() == 1);
         CHECK(countNamed(d, a) == 1);
         CHECK(e.findVolume(a)->size_bytes == 64 * MiB);
         CHECK(d.signatures.empty());
       }},
      {"create next to an existing volume",
       [](PartitionEngine& e) { REQUIRE(e.createVolume(spec("b", 32 * MiB)).ok()); },
       [](PartitionEngine& e) { return e.createVolume(spec("a", 64 * MiB)).status(); },
       [=](const FakeDisk& d, PartitionEngine& e) {
         CHECK(d.partitions.size() == 2);
         CHECK(countNamed(d, a) == 1);
         CHECK(countNamed(d, b) == 1);
         CHECK(e.findVolume(a)->size_bytes == 64 * MiB);
         CHECK(d.signatures.empty());
       }},
      {"create exclusive", [](PartitionEngine&) {},
       [](PartitionEngine& e) { return e.createVolume(spec("a", 64 * MiB, true)).status(); },
       [=](const FakeDisk& d, PartitionEngine& e) {
         CHECK(d.partitions.size() == 1);
         CHECK(e.findVolume(a)->exclusive);
       }},
      {"delete",
       [](PartitionEngine& e) {
         REQUIRE(e.createVolume(spec("a", 64 * MiB)).ok());
         REQUIRE(e.createVolume(spec("b", 32 * MiB)).ok());
       },
       [=](PartitionEngine& e) { return e.deleteVolume(a); },
       [=](const FakeDisk& d, PartitionEngine& e) {
         CHECK(d.partitions.size() == 1);
         CHECK(countNamed(d, a) == 0);
         CHECK_FALSE(e.findVolume(a));
         CHECK(e.findVolume(b));
       }},
      {"expand",
       [](PartitionEngine& e) {
         REQUIRE(e.createVolume(spec("b", 32 * MiB)).ok());
         REQUIRE(e.createVolume(spec("a", 64 * MiB)).ok());
       },
       [=](PartitionEngine& e) { return e.expandVolume(a, 200 * MiB).status(); },
       [=](const FakeDisk& d, PartitionEngine& e) {
         CHECK(d.partitions.size() == 2);
         CHECK(e.findVolume(a)->size_bytes == 200 * MiB);
         CHECK(e.findVolume(b)->size_bytes == 32 * MiB);
       }},
  };
}

const std::string kDev = "/dev/sdb";

std::vector<DiskInfo> disks() { return {diskInfo("sdb", 1 * GiB)}; }

std::shared_ptr<FakePartitionTableFactory> freshDisk() {
  auto fake = std::make_shared<FakePartitionTableFactory>();
  fake->addDisk(kDev, 1 * GiB);
  // A stale filesystem signature where the first volume will go: the wipe must remove it.
  fake->editDisk(kDev, [](FakeDisk& d) { d.signatures[1 * MiB + 1080] = "ext4"; });
  return fake;
}

}  // namespace

TEST_CASE("fault matrix over fake table steps: new engine repairs, retry succeeds",
          "[unit][partition][fault]") {
  for (const Scenario& sc : scenarios()) {
    for (bool same_engine : {false, true}) {
      SECTION(sc.name + (same_engine ? " (same engine retries)" : " (new engine)")) {
        bool succeeded = false;
        uint64_t n = 0;
        for (; n < 100 && !succeeded; ++n) {
          INFO("fault at step " << n);
          auto fake = freshDisk();
          auto engine = std::make_unique<PartitionEngine>(fake);
          REQUIRE(engine->setDisks(disks()).ok());
          sc.setup(*engine);
          fake->failAt(n);
          absl::Status st = sc.op(*engine);
          const bool fired = fake->faultFired();
          fake->clearFault();
          if (!fired) {
            REQUIRE(st.ok());
            sc.verify(fake->disk(kDev), *engine);
            checkConsistent(fake->disk(kDev));
            succeeded = true;
            break;
          }
          CHECK_FALSE(st.ok());
          if (!same_engine) {
            // The process "died": a new engine repairs from the disk alone.
            engine = std::make_unique<PartitionEngine>(fake);
            REQUIRE(engine->setDisks(disks()).ok());
            checkConsistent(fake->disk(kDev));
          }
          // Nothing leaked: every partition on the disk is a listed volume.
          CHECK(engine->listVolumes().size() == fake->disk(kDev).partitions.size());
          REQUIRE(sc.op(*engine).ok());
          sc.verify(fake->disk(kDev), *engine);
          checkConsistent(fake->disk(kDev));
          // Idempotent: once more is still fine and changes nothing.
          const uint64_t writes = fake->disk(kDev).writes;
          REQUIRE(sc.op(*engine).ok());
          CHECK(fake->disk(kDev).writes == writes);
        }
        CHECK(succeeded);
        CHECK(n >= 4);  // the matrix really went through several steps
      }
    }
  }
}

TEST_CASE("fault matrix over engine steps (crash between steps)", "[unit][partition][fault]") {
  for (const Scenario& sc : scenarios()) {
    SECTION(sc.name) {
      bool succeeded = false;
      std::vector<std::string> crashed_at;
      for (int n = 0; n < 50 && !succeeded; ++n) {
        auto fake = freshDisk();
        int calls = 0;
        bool armed = false;
        bool fired = false;
        std::string where;
        PartitionEngineOptions opts;
        opts.step_hook_for_test = [&](std::string_view step) -> absl::Status {
          if (armed && calls++ == n) {
            fired = true;
            where = std::string(step);
            return absl::InternalError("crash at " + where);
          }
          return absl::OkStatus();
        };
        auto engine = std::make_unique<PartitionEngine>(fake, opts);
        REQUIRE(engine->setDisks(disks()).ok());
        sc.setup(*engine);
        armed = true;
        absl::Status st = sc.op(*engine);
        armed = false;
        if (!fired) {
          REQUIRE(st.ok());
          sc.verify(fake->disk(kDev), *engine);
          succeeded = true;
          break;
        }
        INFO("crashed at " << where);
        crashed_at.push_back(where);
        CHECK_FALSE(st.ok());
        engine = std::make_unique<PartitionEngine>(fake);
        REQUIRE(engine->setDisks(disks()).ok());
        checkConsistent(fake->disk(kDev));
        REQUIRE(sc.op(*engine).ok());
        sc.verify(fake->disk(kDev), *engine);
        checkConsistent(fake->disk(kDev));
      }
      CHECK(succeeded);
      CAPTURE(crashed_at);
      CHECK(crashed_at.size() >= 3);
    }
  }
}

TEST_CASE("crash after the table write, before the kernel update", "[unit][partition][fault]") {
  auto fake = freshDisk();
  PartitionEngineOptions opts;
  opts.step_hook_for_test = [](std::string_view step) {
    return step == "create.kernel" ? absl::InternalError("crash") : absl::OkStatus();
  };
  auto engine = std::make_unique<PartitionEngine>(fake, opts);
  REQUIRE(engine->setDisks(disks()).ok());
  CHECK_FALSE(engine->createVolume(spec("a", 64 * MiB)).ok());
  FakeDisk d = fake->disk(kDev);
  CHECK(d.partitions.size() == 1);  // on the disk...
  CHECK(d.kernel.empty());          // ...but not in the kernel
  engine = std::make_unique<PartitionEngine>(fake);
  REQUIRE(engine->setDisks(disks()).ok());
  checkConsistent(fake->disk(kDev));
  CHECK(fake->disk(kDev).kernel.size() == 1);
  auto v = engine->createVolume(spec("a", 64 * MiB));
  REQUIRE(v.ok());
  CHECK(fake->disk(kDev).partitions.size() == 1);
}
