// The partition engine on real loop devices (root): libfdisk tables, BLKPG, sysfs, mkfs/mount.
// Every device, mount and file is created by the test and removed by RAII even on failure.

#include <algorithm>
#include <atomic>
#include <fstream>
#include <set>
#include <sys/statvfs.h>
#include <thread>

#include <catch2/catch.hpp>

#include "agent/core/constants.h"
#include "agent/os/linux/fdisk_partition_table.h"
#include "agent/storage/partition_engine.h"
#include "tests/support/loop_device.h"
#include "tests/support/test_support.h"

using carina::os::KernelPartition;
using carina::storage::DiskInfo;
using carina::storage::PartitionEngine;
using carina::storage::PartitionEngineOptions;
using carina::storage::Volume;
using carina::storage::VolumeSpec;
using carina::test::LoopDevice;
using carina::test::run;
using carina::test::TempDir;

namespace {

constexpr uint64_t MiB = 1024ULL * 1024ULL;
constexpr uint64_t GiB = 1024ULL * MiB;

DiskInfo infoOf(const LoopDevice& loop, uint64_t bytes, uint32_t sector = 512,
                const std::string& group = "raw") {
  DiskInfo d;
  d.name = loop.name();
  d.devnode = loop.devnode();
  d.group = group;
  d.policy = carina::core::DiskPolicy::Raw;
  d.size_bytes = bytes;
  d.logical_sector_size = sector;
  d.eligible = true;
  return d;
}

VolumeSpec spec(const std::string& name, uint64_t bytes, bool exclusive = false) {
  VolumeSpec s;
  s.name = name;
  s.required_bytes = bytes;
  s.exclusive = exclusive;
  return s;
}

std::unique_ptr<PartitionEngine> newEngine(PartitionEngineOptions opts = {}) {
  return std::make_unique<PartitionEngine>(carina::os::makeFdiskPartitionTableFactory(),
                                           std::move(opts));
}

/** The kernel's partitions (sysfs) equal the on-disk table, and nothing overlaps. */
void checkKernelMatchesTable(const LoopDevice& loop) {
  auto table = carina::os::openFdiskPartitionTable(loop.devnode());
  REQUIRE(table.ok());
  auto info = (*table)->read();
  REQUIRE(info.ok());
  auto kernel = (*table)->kernelPartitions();
  REQUIRE(kernel.ok());
  std::vector<KernelPartition> want;
  for (const auto& e : info->partitions) {
    want.push_back(
        KernelPartition{e.partno + 1, "", e.start * info->sector_size, e.size * info->sector_size});
  }
  std::sort(want.begin(), want.end(),
            [](const auto& a, const auto& b) { return a.number < b.number; });
  std::vector<KernelPartition> have = *kernel;
  for (auto& k : have) {
    CHECK(k.name == carina::os::partitionDevnode(loop.name(), k.number));
    k.name.clear();
  }
  CHECK(have == want);
  for (std::size_t i = 1; i < info->partitions.size(); ++i) {
    CHECK(info->partitions[i - 1].end() <= info->partitions[i].start);
  }
}

uint64_t partitionStart(const LoopDevice& loop, const Volume& v) {
  auto table = carina::os::openFdiskPartitionTable(loop.devnode());
  REQUIRE(table.ok());
  auto info = (*table)->read();
  for (const auto& e : info->partitions) {
    if (e.name == v.id) {
      return e.start * info->sector_size;
    }
  }
  FAIL("volume " << v.id << " not in the table");
  return 0;
}

bool exists(const std::string& path) { return std::ifstream(path).good(); }

}  // namespace

TEST_CASE("create three, delete the middle, best fit reuses the smallest hole",
          "[integration][partition]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(1 * GiB);
  auto engine = newEngine();
  REQUIRE(engine->setDisks({infoOf(loop, 1 * GiB)}).ok());
  auto a = engine->createVolume(spec("a", 100 * MiB));
  auto b = engine->createVolume(spec("b", 100 * MiB));
  auto c = engine->createVolume(spec("c", 100 * MiB));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  CHECK(a->device == loop.devnode() + "p1");
  CHECK(exists(b->device));
  checkKernelMatchesTable(loop);
  REQUIRE(engine->deleteVolume(b->id).ok());
  CHECK_FALSE(exists(b->device));
  checkKernelMatchesTable(loop);
  // Holes now: 100 MiB (b's) and the large tail. A small hole of 30 MiB too:
  auto d = engine->createVolume(spec("d", 70 * MiB));  // into b's hole (smallest that fits)
  REQUIRE(d.ok());
  CHECK(partitionStart(loop, *d) == 101 * MiB);
  auto e = engine->createVolume(spec("e", 40 * MiB));  // the 30 MiB hole is too small: tail
  REQUIRE(e.ok());
  CHECK(partitionStart(loop, *e) == 301 * MiB);
  auto f = engine->createVolume(spec("f", 20 * MiB));  // fits the 30 MiB hole after d
  REQUIRE(f.ok());
  CHECK(partitionStart(loop, *f) == 171 * MiB);
  checkKernelMatchesTable(loop);
  CHECK(engine->listVolumes().size() == 5);
}

TEST_CASE("grow in place while mounted, refusals, delete refused while mounted",
          "[integration][partition]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(1 * GiB);
  TempDir mnt;
  auto engine = newEngine();
  REQUIRE(engine->setDisks({infoOf(loop, 1 * GiB)}).ok());
  auto v = engine->createVolume(spec("xfs-vol", 320 * MiB));
  auto next = engine->createVolume(spec("next", 64 * MiB));
  REQUIRE(v.ok());
  REQUIRE(next.ok());
  auto mk = run({"mkfs.xfs", "-q", "-f", v->device});
  REQUIRE(mk.exit_code == 0);
  auto mount = run({"mount", v->device, mnt.path()});
  REQUIRE(mount.exit_code == 0);
  { std::ofstream(mnt.file("data")) << "payload"; }
  // The next segment is taken: clear refusal, nothing changes.
  auto refused = engine->expandVolume(v->id, 400 * MiB);
  CHECK(refused.status().code() == absl::StatusCode::kResourceExhausted);
  // Mounted: delete is refused.
  CHECK(engine->deleteVolume(v->id).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(exists(v->device));
  REQUIRE(engine->deleteVolume(next->id).ok());
  // Now it grows in place while mounted (BLKPG resize), and xfs_growfs sees the space.
  struct statvfs before {};
  REQUIRE(statvfs(mnt.path().c_str(), &before) == 0);
  auto grown = engine->expandVolume(v->id, 600 * MiB);
  REQUIRE(grown.ok());
  CHECK(grown->size_bytes == 600 * MiB);
  checkKernelMatchesTable(loop);
  auto growfs = run({"xfs_growfs", mnt.path()});
  INFO(growfs.output);
  REQUIRE(growfs.exit_code == 0);
  struct statvfs after {};
  REQUIRE(statvfs(mnt.path().c_str(), &after) == 0);
  CHECK(after.f_blocks * after.f_frsize > before.f_blocks * before.f_frsize + 200 * MiB);
  std::string data;
  std::ifstream(mnt.file("data")) >> data;
  CHECK(data == "payload");
  // Beyond the disk: OutOfRange.
  CHECK(engine->expandVolume(v->id, 2 * GiB).status().code() == absl::StatusCode::kOutOfRange);
  carina::test::unmountBelow(mnt.path());
  REQUIRE(engine->deleteVolume(v->id).ok());
  checkKernelMatchesTable(loop);
}

TEST_CASE("exclusive disks are reserved and grow to near the disk end",
          "[integration][partition]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  LoopDevice small(512 * MiB);
  LoopDevice large(768 * MiB);
  auto engine = newEngine();
  REQUIRE(engine->setDisks({infoOf(small, 512 * MiB), infoOf(large, 768 * MiB)}).ok());
  auto ex = engine->createVolume(spec("ex", 100 * MiB, true));
  REQUIRE(ex.ok());
  CHECK(ex->disk == small.name());  // the smallest empty disk that fits
  CHECK(ex->exclusive);
  for (int i = 0; i < 4; ++i) {
    auto s = engine->createVolume(spec("s" + std::to_string(i), 100 * MiB));
    REQUIRE(s.ok());
    CHECK(s->disk == large.name());
  }
  CHECK(engine->createVolume(spec("s-too-big", 400 * MiB)).status().code() ==
        absl::StatusCode::kResourceExhausted);
  CHECK(engine->createVolume(spec("ex2", 10 * MiB, true)).status().code() ==
        absl::StatusCode::kResourceExhausted);
  const uint64_t usable_end = (512 * MiB - 34 * 512) / MiB * MiB;
  CHECK(ex->max_bytes == usable_end - MiB);
  auto grown = engine->expandVolume(ex->id, ex->max_bytes);
  REQUIRE(grown.ok());
  CHECK(grown->size_bytes == usable_end - MiB);
  checkKernelMatchesTable(small);
  checkKernelMatchesTable(large);
}

TEST_CASE("50 concurrent creates on one loop disk: no overlaps, table == sysfs",
          "[integration][partition]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(1 * GiB);
  auto engine = newEngine();
  REQUIRE(engine->setDisks({infoOf(loop, 1 * GiB)}).ok());
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      if (engine->createVolume(spec("c" + std::to_string(i), 16 * MiB)).ok()) {
        ok++;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(ok == 50);
  checkKernelMatchesTable(loop);
  auto vols = engine->listVolumes();
  CHECK(vols.size() == 50);
  std::set<std::string> devices;
  for (const Volume& v : vols) {
    devices.insert(v.device);
    CHECK(exists(v.device));
  }
  CHECK(devices.size() == 50);
}

TEST_CASE("restart: volumes come back from the disk, the kernel view is repaired",
          "[integration][partition]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(1 * GiB);
  DiskInfo disk = infoOf(loop, 1 * GiB);
  std::vector<Volume> made;
  {
    auto engine = newEngine();
    REQUIRE(engine->setDisks({disk}).ok());
    for (int i = 0; i < 3; ++i) {
      auto v = engine->createVolume(spec("r" + std::to_string(i), 64 * MiB));
      REQUIRE(v.ok());
      made.push_back(*v);
    }
  }
  // Simulated crash damage in the kernel's view only: p2 gone, p1 wrong size, stale p9.
  const std::string dev = loop.devnode();
  REQUIRE(run({"delpart", dev, "2"}).exit_code == 0);
  REQUIRE(run({"resizepart", dev, "1", std::to_string(32 * MiB / 512)}).exit_code == 0);
  REQUIRE(
      run({"addpart", dev, "9", std::to_string(800 * MiB / 512), std::to_string(10 * MiB / 512)})
          .exit_code == 0);
  CHECK(exists(dev + "p9"));
  auto engine = newEngine();
  REQUIRE(engine->setDisks({disk}).ok());
  checkKernelMatchesTable(loop);
  CHECK_FALSE(exists(dev + "p9"));
  CHECK(exists(dev + "p2"));
  auto listed = engine->listVolumes();
  auto byId = [](const Volume& a, const Volume& b) { return a.id < b.id; };
  std::sort(listed.begin(), listed.end(), byId);
  std::sort(made.begin(), made.end(), byId);
  REQUIRE(listed.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(listed[i].id == made[i].id);
    CHECK(listed[i].device == made[i].device);
    CHECK(listed[i].size_bytes == made[i].size_bytes);
  }
  // Retrying a create of an existing volume returns it.
  auto again = engine->createVolume(spec("r1", 64 * MiB));
  REQUIRE(again.ok());
  CHECK(again->id == carina::storage::volumeIdForName("r1"));
  CHECK(engine->listVolumes().size() == 3);
}

TEST_CASE("crash after the table write, before the kernel update, on a loop device",
          "[integration][partition]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(512 * MiB);
  DiskInfo disk = infoOf(loop, 512 * MiB);
  for (const char* crash_at : {"create.kernel", "expand.kernel", "delete.kernel"}) {
    INFO("crash at " << crash_at);
    auto setup = newEngine();
    REQUIRE(setup->setDisks({disk}).ok());
    auto base = setup->createVolume(spec(std::string("base-") + crash_at, 32 * MiB));
    REQUIRE(base.ok());
    PartitionEngineOptions opts;
    const std::string step = crash_at;
    opts.step_hook_for_test = [step](std::string_view s) {
      return s == step ? absl::InternalError("crash") : absl::OkStatus();
    };
    auto crashing = newEngine(opts);
    REQUIRE(crashing->setDisks({disk}).ok());
    absl::Status st;
    std::string vid;
    if (step == "create.kernel") {
      auto r = crashing->createVolume(spec("victim", 48 * MiB));
      st = r.status();
      vid = carina::storage::volumeIdForName("victim");
    } else if (step == "expand.kernel") {
      st = crashing->expandVolume(base->id, 64 * MiB).status();
    } else {
      st = crashing->deleteVolume(base->id);
    }
    CHECK_FALSE(st.ok());
    // The table is written; the kernel was not told. A new engine repairs it.
    auto engine = newEngine();
    REQUIRE(engine->setDisks({disk}).ok());
    checkKernelMatchesTable(loop);
    if (step == "create.kernel") {
      auto v = engine->findVolume(vid);
      REQUIRE(v);
      CHECK(exists(v->device));
      auto retry = engine->createVolume(spec("victim", 48 * MiB));
      REQUIRE(retry.ok());
      CHECK(retry->device == v->device);
      REQUIRE(engine->deleteVolume(vid).ok());
    } else if (step == "expand.kernel") {
      CHECK(engine->findVolume(base->id)->size_bytes == 64 * MiB);
      REQUIRE(engine->expandVolume(base->id, 64 * MiB).ok());
    } else {
      CHECK_FALSE(engine->findVolume(base->id));
      CHECK_FALSE(exists(base->device));
      CHECK(engine->deleteVolume(base->id).ok());
    }
    REQUIRE(engine->deleteVolume(base->id).ok());
    checkKernelMatchesTable(loop);
  }
}

TEST_CASE("crash after add before the wipe: no partition, and the retry wipes old signatures",
          "[integration][partition]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(512 * MiB);
  DiskInfo disk = infoOf(loop, 512 * MiB);
  {
    // A previous volume with an ext4 filesystem, deleted: its signature stays on the disk.
    auto engine = newEngine();
    REQUIRE(engine->setDisks({disk}).ok());
    auto old = engine->createVolume(spec("old", 64 * MiB));
    REQUIRE(old.ok());
    REQUIRE(run({"mkfs.ext4", "-q", "-F", old->device}).exit_code == 0);
    REQUIRE(run({"blkid", "-p", old->device}).output.find("ext4") != std::string::npos);
    REQUIRE(engine->deleteVolume(old->id).ok());
  }
  PartitionEngineOptions opts;
  opts.step_hook_for_test = [](std::string_view s) {
    return s == "create.wipe" ? absl::InternalError("crash") : absl::OkStatus();
  };
  auto crashing = newEngine(opts);
  REQUIRE(crashing->setDisks({disk}).ok());
  CHECK_FALSE(crashing->createVolume(spec("new", 64 * MiB)).ok());
  // Added in memory only: nothing reached the disk.
  auto engine = newEngine();
  REQUIRE(engine->setDisks({disk}).ok());
  CHECK(engine->listVolumes().empty());
  checkKernelMatchesTable(loop);
  auto v = engine->createVolume(spec("new", 64 * MiB));
  REQUIRE(v.ok());
  CHECK(partitionStart(loop, *v) == 1 * MiB);  // the same place as the old one
  auto probe = run({"blkid", "-p", v->device});
  INFO(probe.output);
  CHECK(probe.output.find("ext4") == std::string::npos);
}

TEST_CASE("4096-byte logical sectors", "[integration][partition]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  LoopDevice loop(512 * MiB, 4096);
  DiskInfo disk = infoOf(loop, 512 * MiB, 4096);
  auto engine = newEngine();
  REQUIRE(engine->setDisks({disk}).ok());
  auto a = engine->createVolume(spec("a", 100 * MiB));
  auto b = engine->createVolume(spec("b", 50 * MiB + 1));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(b->size_bytes == 51 * MiB);
  auto table = carina::os::openFdiskPartitionTable(loop.devnode());
  REQUIRE(table.ok());
  CHECK((*table)->read()->sector_size == 4096);
  CHECK((*table)->read()->first_usable == 256);
  checkKernelMatchesTable(loop);
  REQUIRE(engine->deleteVolume(a->id).ok());
  auto grown = engine->expandVolume(b->id, 200 * MiB);
  REQUIRE(grown.ok());
  checkKernelMatchesTable(loop);
  auto restarted = newEngine();
  REQUIRE(restarted->setDisks({disk}).ok());
  REQUIRE(restarted->findVolume(b->id));
  CHECK(restarted->findVolume(b->id)->size_bytes == 200 * MiB);
  const uint64_t usable_end = (512 * MiB - 6 * 4096) / MiB * MiB;
  CHECK(restarted->findVolume(b->id)->max_bytes == usable_end - 101 * MiB);
}
