#include "agent/storage/placement.h"

#include <catch2/catch.hpp>

using carina::storage::Demand;
using carina::storage::DiskSpace;
using carina::storage::Placement;
using carina::storage::Segment;

namespace {
constexpr uint64_t MiB = 1024 * 1024;
constexpr uint64_t GiB = 1024 * MiB;

DiskSpace disk(std::string name, std::vector<Segment> free, uint32_t parts = 0) {
  DiskSpace d;
  d.name = std::move(name);
  d.size_bytes = 100 * GiB;
  d.free = std::move(free);
  d.partitions = parts;
  return d;
}
}  // namespace

TEST_CASE("alignment rounds to whole MiB", "[unit][placement]") {
  CHECK(carina::storage::alignUp(0) == 0);
  CHECK(carina::storage::alignUp(1) == MiB);
  CHECK(carina::storage::alignUp(MiB) == MiB);
  CHECK(carina::storage::alignUp(MiB + 1) == 2 * MiB);
  CHECK(carina::storage::alignDown(2 * MiB - 1) == MiB);
}

TEST_CASE("best fit takes the smallest hole that fits, across segments and disks",
          "[unit][placement]") {
  struct Case {
    std::string name;
    std::vector<DiskSpace> disks;
    uint64_t bytes;
    std::optional<std::pair<std::string, uint64_t>> want;  // disk, offset
  };
  std::vector<Case> cases = {
      {"small hole preferred over large hole on one disk",
       {disk("a", {{MiB, 100 * MiB}, {200 * MiB, 10 * MiB}, {300 * MiB, 50 * MiB}})},
       8 * MiB,
       std::pair<std::string, uint64_t>{"a", 200 * MiB}},
      {"too-small holes are skipped",
       {disk("a", {{MiB, 100 * MiB}, {200 * MiB, 10 * MiB}, {300 * MiB, 50 * MiB}})},
       20 * MiB,
       std::pair<std::string, uint64_t>{"a", 300 * MiB}},
      {"best fit across disks",
       {disk("a", {{MiB, 64 * MiB}}), disk("b", {{MiB, 40 * MiB}}), disk("c", {{MiB, 10 * MiB}})},
       32 * MiB,
       std::pair<std::string, uint64_t>{"b", MiB}},
      {"exclusive disks are never shared",
       {[] {
          auto d = disk("a", {{MiB, 64 * MiB}}, 1);
          d.exclusive = true;
          return d;
        }(),
        disk("b", {{MiB, 80 * MiB}})},
       32 * MiB,
       std::pair<std::string, uint64_t>{"b", MiB}},
      {"exact fit",
       {disk("a", {{MiB, 32 * MiB}})},
       32 * MiB,
       std::pair<std::string, uint64_t>{"a", MiB}},
      {"sizes round up to MiB before fitting",
       {disk("a", {{MiB, 32 * MiB}})},
       32 * MiB + 1,
       std::nullopt},
      {"nothing fits", {disk("a", {{MiB, 10 * MiB}})}, 11 * MiB, std::nullopt},
      {"zero bytes is no placement", {disk("a", {{MiB, 10 * MiB}})}, 0, std::nullopt},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      auto p = carina::storage::bestFitShared(c.disks, c.bytes);
      if (!c.want) {
        CHECK_FALSE(p.has_value());
      } else {
        REQUIRE(p.has_value());
        CHECK(p->disk == c.want->first);
        CHECK(p->offset == c.want->second);
        CHECK(p->bytes == carina::storage::alignUp(c.bytes));
      }
    }
  }
}

TEST_CASE("exclusive placement needs an empty disk; a disk with one partition is not free",
          "[unit][placement]") {
  std::vector<DiskSpace> disks = {disk("used", {{200 * MiB, 800 * MiB}}, 1),
                                  disk("big", {{MiB, 2000 * MiB}}),
                                  disk("small", {{MiB, 500 * MiB}})};
  auto p = carina::storage::bestFitExclusive(disks, 300 * MiB);
  REQUIRE(p.has_value());
  CHECK(p->disk == "small");  // smallest empty disk that fits
  CHECK(p->offset == MiB);
  CHECK_FALSE(carina::storage::bestFitExclusive(disks, 2001 * MiB).has_value());
  // The disk with a partition has 800 MiB free but is not empty.
  std::vector<DiskSpace> only_used = {disks[0]};
  CHECK_FALSE(carina::storage::bestFitExclusive(only_used, 100 * MiB).has_value());
}

TEST_CASE("consume splits segments and reserves exclusive disks", "[unit][placement]") {
  std::vector<DiskSpace> disks = {disk("a", {{MiB, 100 * MiB}})};
  Placement p{"v", 0, "a", 11 * MiB, 10 * MiB};
  carina::storage::consume(disks, p, false);
  REQUIRE(disks[0].free.size() == 2);
  CHECK(disks[0].free[0] == Segment{MiB, 10 * MiB});
  CHECK(disks[0].free[1] == Segment{21 * MiB, 80 * MiB});
  CHECK(disks[0].partitions == 1);
  carina::storage::consume(disks, Placement{"w", 0, "a", MiB, 10 * MiB}, false);
  CHECK(disks[0].free.size() == 1);
  carina::storage::consume(disks, Placement{"x", 0, "a", 21 * MiB, MiB}, true);
  CHECK(disks[0].exclusive);
  CHECK(disks[0].free.empty());
}

TEST_CASE("placeAll places every demand at once", "[unit][placement]") {
  SECTION("several demands of one group are all counted") {
    std::vector<DiskSpace> disks = {disk("a", {{MiB, 100 * MiB}})};
    std::vector<Demand> two = {{"pvc-1", 60 * MiB, false}, {"pvc-2", 30 * MiB, false}};
    auto ok = carina::storage::placeAll(disks, two);
    REQUIRE(ok.ok());
    CHECK((*ok)[0].offset == MiB);
    CHECK((*ok)[1].offset == 61 * MiB);
    std::vector<Demand> three = {
        {"pvc-1", 60 * MiB, false}, {"pvc-2", 30 * MiB, false}, {"pvc-3", 20 * MiB, false}};
    auto fail = carina::storage::placeAll(disks, three);
    CHECK(fail.status().code() == absl::StatusCode::kResourceExhausted);
    CHECK(fail.status().message().find("pvc-3") != std::string_view::npos);
  }
  SECTION("best-fit-decreasing packs what first-fit in given order would not") {
    // Holes of 30 and 70 MiB; demands 30 then 70 given small-first would still fit with BFD,
    // and 40+30 would fail with first fit taking the 70 hole for 30.
    std::vector<DiskSpace> disks = {disk("a", {{MiB, 30 * MiB}, {100 * MiB, 70 * MiB}})};
    auto ok =
        carina::storage::placeAll(disks, {{"small", 30 * MiB, false}, {"big", 70 * MiB, false}});
    REQUIRE(ok.ok());
    CHECK((*ok)[0].offset == MiB);
    CHECK((*ok)[1].offset == 100 * MiB);
  }
  SECTION("exclusivity is per demand: each exclusive demand takes its own disk") {
    std::vector<DiskSpace> disks = {disk("a", {{MiB, 100 * MiB}}), disk("b", {{MiB, 100 * MiB}})};
    auto ok =
        carina::storage::placeAll(disks, {{"ex-1", 10 * MiB, true}, {"ex-2", 10 * MiB, true}});
    REQUIRE(ok.ok());
    CHECK((*ok)[0].disk != (*ok)[1].disk);
    auto fail = carina::storage::placeAll(
        disks, {{"ex-1", 10 * MiB, true}, {"ex-2", 10 * MiB, true}, {"shared", MiB, false}});
    CHECK(fail.status().code() == absl::StatusCode::kResourceExhausted);
    auto mixed =
        carina::storage::placeAll(disks, {{"shared", 10 * MiB, false}, {"ex", 10 * MiB, true}});
    REQUIRE(mixed.ok());
    CHECK((*mixed)[0].disk != (*mixed)[1].disk);
  }
}

TEST_CASE("free totals ignore exclusive disks", "[unit][placement]") {
  std::vector<DiskSpace> disks = {disk("a", {{MiB, 10 * MiB}, {20 * MiB, 30 * MiB}}),
                                  disk("b", {{MiB, 5 * MiB}})};
  CHECK(carina::storage::freeBytes(disks) == 45 * MiB);
  CHECK(carina::storage::largestFreeSegment(disks) == 30 * MiB);
  disks[0].exclusive = true;
  CHECK(carina::storage::freeBytes(disks) == 5 * MiB);
  CHECK(carina::storage::formatBytes(1536 * MiB) == "1.5GiB");
  CHECK(carina::storage::formatBytes(512) == "512B");
  CHECK(carina::storage::formatBytes(0) == "0B");
  CHECK(carina::storage::formatBytes(MiB) == "1MiB");
  CHECK(carina::storage::formatBytes(1023 * MiB + 1023 * 1024) == "1023.9MiB");
  CHECK(carina::storage::formatBytes(UINT64_MAX) == "16383.9PiB");
}
