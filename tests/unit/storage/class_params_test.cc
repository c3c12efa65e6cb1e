#include "agent/storage/class_params.h"

#include <string>

#include <catch2/catch.hpp>

using carina::core::SchedulerStrategy;
using carina::storage::ClassParams;
using carina::storage::parseClassParams;
using carina::storage::parseSchedulerStrategy;

namespace {

std::string errorOf(const std::map<std::string, std::string>& params) {
  auto p = parseClassParams(params);
  REQUIRE_FALSE(p.ok());
  CHECK(p.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(p.status().message());
}

}  // namespace

TEST_CASE("parseClassParams: defaults and every known key", "[unit][storage]") {
  auto none = parseClassParams({});
  REQUIRE(none.ok());
  CHECK(*none == ClassParams{});

  auto all = parseClassParams({{"carina.storage.io/disk-group-name", "ssd"},
                               {"carina.storage.io/exclusivity-disk", "true"},
                               {"carina.storage.io/scheduler-strategy", "spreadout"},
                               {"csi.storage.k8s.io/fstype", "xfs"},
                               {"csi.storage.k8s.io/pvc/name", "data"},
                               {"volumeGroup", "ignored"}});
  REQUIRE(all.ok());
  CHECK(all->group == "ssd");
  CHECK(all->exclusive);
  CHECK(all->fs_type == "xfs");
  REQUIRE(all->strategy);
  CHECK(*all->strategy == SchedulerStrategy::Spreadout);
}

TEST_CASE("parseClassParams: group from disk-group-name or Carina's disk-type", "[unit][storage]") {
  CHECK(parseClassParams({{"carina.storage.io/disk-type", "hdd"}})->group == "hdd");
  CHECK(parseClassParams({{"carina.storage.io/disk-group-name", "ssd"}})->group == "ssd");
  CHECK(parseClassParams(
            {{"carina.storage.io/disk-type", "ssd"}, {"carina.storage.io/disk-group-name", "ssd"}})
            ->group == "ssd");
  // An empty disk-group-name falls back to disk-type.
  CHECK(parseClassParams(
            {{"carina.storage.io/disk-type", "hdd"}, {"carina.storage.io/disk-group-name", ""}})
            ->group == "hdd");
  std::string msg =
      errorOf({{"carina.storage.io/disk-type", "a"}, {"carina.storage.io/disk-group-name", "b"}});
  CHECK(msg.find("disagree") != std::string::npos);
  CHECK(msg.find("\"a\" vs \"b\"") != std::string::npos);
}

TEST_CASE("parseClassParams: exclusivity, both spellings, any case", "[unit][storage]") {
  for (const char* key :
       {"carina.storage.io/exclusivity-disk", "carina.storage.io/exclusively-raw-disk"}) {
    CAPTURE(key);
    CHECK(parseClassParams({{key, "true"}})->exclusive);
    CHECK(parseClassParams({{key, "True"}})->exclusive);
    CHECK(parseClassParams({{key, "TRUE"}})->exclusive);
    CHECK_FALSE(parseClassParams({{key, "false"}})->exclusive);
    CHECK_FALSE(parseClassParams({{key, "FALSE"}})->exclusive);
    CHECK_FALSE(parseClassParams({{key, ""}})->exclusive);
    std::string msg = errorOf({{key, "yes"}});
    CHECK(msg.find(key) != std::string::npos);
    CHECK(msg.find("is not a boolean") != std::string::npos);
  }
  // Either key true makes the volume exclusive.
  CHECK(parseClassParams({{"carina.storage.io/exclusivity-disk", "false"},
                          {"carina.storage.io/exclusively-raw-disk", "true"}})
            ->exclusive);
}

TEST_CASE("parseClassParams: scheduler strategy and fs type", "[unit][storage]") {
  CHECK(*parseClassParams({{"carina.storage.io/scheduler-strategy", "binpack"}})->strategy ==
        SchedulerStrategy::Binpack);
  CHECK(*parseClassParams({{"carina.storage.io/scheduler-strategy", "SpreadOut"}})->strategy ==
        SchedulerStrategy::Spreadout);
  CHECK_FALSE(parseClassParams({{"carina.storage.io/scheduler-strategy", ""}})->strategy);
  CHECK(errorOf({{"carina.storage.io/scheduler-strategy", "fast"}}).find("binpack or spreadout") !=
        std::string::npos);

  CHECK(parseClassParams({{"csi.storage.k8s.io/fstype", "ext4"}})->fs_type == "ext4");
  CHECK(parseClassParams({{"csi.storage.k8s.io/fstype", ""}})->fs_type.empty());
  CHECK(errorOf({{"csi.storage.k8s.io/fstype", "btrfs"}}).find("not supported") !=
        std::string::npos);
}

TEST_CASE("parseClassParams: unknown carina keys are refused, others ignored", "[unit][storage]") {
  CHECK(errorOf({{"carina.storage.io/disk-typo", "x"}}) ==
        "unknown parameter carina.storage.io/disk-typo");
  CHECK(parseClassParams({{"csi.storage.k8s.io/provisioner-secret-name", "s"}}).ok());
}

TEST_CASE("parseSchedulerStrategy", "[unit][storage]") {
  CHECK(parseSchedulerStrategy("binpack") == SchedulerStrategy::Binpack);
  CHECK(parseSchedulerStrategy("BINPACK") == SchedulerStrategy::Binpack);
  CHECK(parseSchedulerStrategy("spreadout") == SchedulerStrategy::Spreadout);
  CHECK_FALSE(parseSchedulerStrategy(""));
  CHECK_FALSE(parseSchedulerStrategy("spread"));
}
