// libfdisk (FdiskPartitionTable) on plain image files: no root, no kernel view. Exercises the
// real library: label creation, exact adds, clamping detection, delete, resize, wipe, and the
// whole engine end to end on image files.

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include <catch2/catch.hpp>

#include "agent/core/constants.h"
#include "agent/os/linux/fdisk_partition_table.h"
#include "agent/storage/partition_engine.h"
#include "tests/support/test_support.h"
#include "tests/unit/storage/partition_test_util.h"

using carina::os::NewPartition;
using carina::os::openFdiskPartitionTable;
using carina::os::PartitionTablePtr;
using carina::storage::PartitionEngine;
using carina::test::TempDir;
using namespace carina::test::partition;

namespace {

std::string makeImage(const TempDir& dir, const std::string& name, uint64_t bytes) {
  std::string path = dir.file(name);
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, static_cast<off_t>(bytes)) == 0);
  ::close(fd);
  return path;
}

std::string readAt(const std::string& path, uint64_t offset, std::size_t n) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string s(n, '\0');
  in.read(s.data(), static_cast<std::streamsize>(n));
  return s;
}

void writeAt(const std::string& path, uint64_t offset, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)) ==
          static_cast<ssize_t>(data.size()));
  ::close(fd);
}

NewPartition part(uint64_t start, uint64_t size, const std::string& name) {
  NewPartition p;
  p.start = start;
  p.size = size;
  p.type_guid = std::string(carina::kSharedPartitionTypeGuid);
  p.name = name;
  return p;
}

}  // namespace

TEST_CASE("libfdisk table on an image file: label, add, read back, delete, resize",
          "[unit][partition][fdisk]") {
  TempDir dir;
  const std::string img = makeImage(dir, "disk.img", 256 * MiB);
  {
    auto t = openFdiskPartitionTable(img);
    REQUIRE(t.ok());
    auto info = (*t)->read();
    REQUIRE(info.ok());
    CHECK_FALSE(info->hasLabel());
    CHECK(info->sector_size == 512);
    CHECK(info->total_sectors == 256 * MiB / 512);
    CHECK(info->first_usable == 2048);
    CHECK(info->last_usable == 256 * MiB / 512 - 34);
    CHECK_FALSE((*t)->hasKernelView());
    // No label yet: adds are refused.
    CHECK((*t)->addPartition(part(2048, 2048, "x")).status().code() ==
          absl::StatusCode::kFailedPrecondition);
    REQUIRE((*t)->createGptLabel().ok());
    auto gpt = (*t)->read();
    CHECK(gpt->label == "gpt");
    // libfdisk's view of the usable area matches the one we computed without a label.
    CHECK(gpt->first_usable == info->first_usable);
    CHECK(gpt->last_usable == info->last_usable);
    auto p0 = (*t)->addPartition(part(2048, 20480, "vol-a"));
    INFO(p0.status());
    REQUIRE(p0.ok());
    CHECK(*p0 == 0);
    auto p1 = (*t)->addPartition(part(2048 + 20480, 40960, "vol-b"));
    REQUIRE(p1.ok());
    CHECK(*p1 == 1);
    REQUIRE((*t)->wipePartition(*p1).ok());
    REQUIRE((*t)->write().ok());
    CHECK((*t)->syncKernel().ok());  // no kernel view: no-op
    CHECK((*t)->kernelPartitions()->empty());
    CHECK_FALSE(*(*t)->partitionInUse(0));
  }
  {
    auto t = openFdiskPartitionTable(img);
    REQUIRE(t.ok());
    auto info = (*t)->read();
    REQUIRE(info.ok());
    CHECK(info->label == "gpt");
    REQUIRE(info->partitions.size() == 2);
    CHECK(info->partitions[0].partno == 0);
    CHECK(info->partitions[0].start == 2048);
    CHECK(info->partitions[0].size == 20480);
    CHECK(info->partitions[0].name == "vol-a");
    CHECK(info->partitions[0].type_guid == carina::kSharedPartitionTypeGuid);
    CHECK(info->partitions[1].name == "vol-b");
    // A label is never created over an existing one.
    CHECK((*t)->createGptLabel().code() == absl::StatusCode::kFailedPrecondition);

    SECTION("clamping and overlaps are errors, not silent changes") {
      // Unaligned size: libfdisk aligns the end down (rc 0); we read back and refuse.
      auto odd = (*t)->addPartition(part(100 * 2048, 2051, "odd"));
      CHECK(odd.status().code() == absl::StatusCode::kOutOfRange);
      CHECK(std::string(odd.status().message()).find("libfdisk changed") != std::string::npos);
      CHECK((*t)->read()->partitions.size() == 2);  // undone
      // Beyond the usable area, overlapping, below the first usable sector, slot in use.
      CHECK((*t)->addPartition(part(200 * 2048, 100 * 2048, "big")).status().code() ==
            absl::StatusCode::kOutOfRange);
      CHECK((*t)->addPartition(part(2048 + 100, 2048, "ovl")).status().code() ==
            absl::StatusCode::kOutOfRange);
      CHECK((*t)->addPartition(part(34, 2048, "low")).status().code() ==
            absl::StatusCode::kOutOfRange);
      auto used = part(100 * 2048, 2048, "slot");
      used.partno = 1;
      CHECK((*t)->addPartition(used).status().code() == absl::StatusCode::kAlreadyExists);
      auto bad = part(100 * 2048, 2048, "bad");
      bad.type_guid = "not-a-guid";
      CHECK((*t)->addPartition(bad).status().code() == absl::StatusCode::kInvalidArgument);
      CHECK((*t)->addPartition(part(100 * 2048, 0, "zero")).status().code() ==
            absl::StatusCode::kInvalidArgument);
    }

    SECTION("delete, reuse of the lowest slot, resize in place") {
      REQUIRE((*t)->deletePartition(0).ok());
      CHECK((*t)->deletePartition(0).code() == absl::StatusCode::kNotFound);
      auto again = (*t)->addPartition(part(2048, 10240, "vol-c"));
      REQUIRE(again.ok());
      CHECK(*again == 0);  // lowest free slot
      // Grow vol-c up to vol-b but not into it.
      CHECK((*t)->resizePartition(0, 20480 + 2048).code() == absl::StatusCode::kOutOfRange);
      REQUIRE((*t)->resizePartition(0, 20480).ok());
      // vol-b grows to the end of the usable area exactly.
      auto info2 = (*t)->read();
      const uint64_t b_start = 2048 + 20480;
      REQUIRE((*t)->resizePartition(1, info2->last_usable + 1 - b_start).ok());
      CHECK((*t)->resizePartition(1, info2->last_usable + 2 - b_start).code() ==
            absl::StatusCode::kOutOfRange);
      CHECK((*t)->resizePartition(5, 2048).code() == absl::StatusCode::kNotFound);
      REQUIRE((*t)->write().ok());
      auto t2 = openFdiskPartitionTable(img);
      REQUIRE(t2.ok());
      auto back = (*t2)->read();
      REQUIRE(back->partitions.size() == 2);
      CHECK(back->partitions[0].name == "vol-c");
      CHECK(back->partitions[0].size == 20480);
      CHECK(back->partitions[1].end() == info2->last_usable + 1);
    }
  }
}

TEST_CASE("libfdisk wipes stale signatures of a new partition on write",
          "[unit][partition][fdisk]") {
  TempDir dir;
  const std::string img = makeImage(dir, "disk.img", 64 * MiB);
  // An ext4 superblock magic (0xEF53 at 1080) plus a plausible superblock: make a real one.
  const std::string fs = makeImage(dir, "fs.img", 8 * MiB);
  auto mk = carina::test::run({"mkfs.ext4", "-q", "-F", fs});
  REQUIRE(mk.exit_code == 0);
  writeAt(img, 4 * MiB, readAt(fs, 0, 64 * 1024));
  REQUIRE(readAt(img, 4 * MiB + 1080, 2) == std::string("\x53\xEF", 2));
  auto t = openFdiskPartitionTable(img);
  REQUIRE(t.ok());
  REQUIRE((*t)->createGptLabel().ok());
  auto no = (*t)->addPartition(part(4 * 2048, 16 * 2048, "v"));
  REQUIRE(no.ok());
  REQUIRE((*t)->wipePartition(*no).ok());
  REQUIRE((*t)->write().ok());
  CHECK(readAt(img, 4 * MiB + 1080, 2) != std::string("\x53\xEF", 2));
}

TEST_CASE("engine end to end on image files through libfdisk", "[unit][partition][fdisk]") {
  TempDir dir;
  const std::string img1 = makeImage(dir, "d1.img", 512 * MiB);
  const std::string img2 = makeImage(dir, "d2.img", 256 * MiB);
  std::vector<carina::storage::DiskInfo> disks = {diskInfo("d1", 512 * MiB),
                                                  diskInfo("d2", 256 * MiB)};
  disks[0].devnode = img1;
  disks[1].devnode = img2;
  auto factory = carina::os::makeFdiskPartitionTableFactory();
  auto engine = std::make_unique<PartitionEngine>(factory);
  REQUIRE(engine->setDisks(disks).ok());
  auto a = engine->createVolume(spec("a", 100 * MiB));
  auto b = engine->createVolume(spec("b", 50 * MiB));
  auto c = engine->createVolume(spec("c", 100 * MiB));
  auto x = engine->createVolume(spec("x", 200 * MiB, true));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  REQUIRE(x.ok());
  CHECK(x->disk == "d1");  // the only empty disk left that fits 200 MiB
  CHECK(a->disk == "d2");
  REQUIRE(engine->deleteVolume(b->id).ok());
  auto small = engine->createVolume(spec("small", 40 * MiB));
  REQUIRE(small.ok());
  CHECK(small->disk == "d2");
  auto grown = engine->expandVolume(x->id, 400 * MiB);
  REQUIRE(grown.ok());
  CHECK(grown->size_bytes == 400 * MiB);
  CHECK(engine->expandVolume(a->id, 200 * MiB).status().code() ==
        absl::StatusCode::kResourceExhausted);
  // Restart from the images alone.
  auto before = engine->listVolumes();
  engine = std::make_unique<PartitionEngine>(factory);
  REQUIRE(engine->setDisks(disks).ok());
  auto after = engine->listVolumes();
  auto byId = [](const auto& l, const auto& r) { return l.id < r.id; };
  std::sort(before.begin(), before.end(), byId);
  std::sort(after.begin(), after.end(), byId);
  CHECK(before == after);
  CHECK(after.size() == 4);
  CHECK(engine->findVolume(x->id)->exclusive);
}
