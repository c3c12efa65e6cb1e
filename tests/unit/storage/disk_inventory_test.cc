#include "agent/storage/disk_inventory.h"

#include <functional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/core/constants.h"

namespace carina::storage {
namespace {

constexpr uint64_t kGiBytes = 1024ULL * 1024 * 1024;

os::BlockDeviceFacts disk(const std::string& name, uint64_t size = 20 * kGiBytes) {
  os::BlockDeviceFacts d;
  d.name = name;
  d.devnode = "/dev/" + name;
  d.size_bytes = size;
  return d;
}

core::DiskSelector selector(const std::string& name, std::vector<std::string> re,
                            core::DiskPolicy policy = core::DiskPolicy::Raw,
                            std::string node_label = "") {
  core::DiskSelector s;
  s.name = name;
  s.re = std::move(re);
  s.policy = policy;
  s.node_label = std::move(node_label);
  return s;
}

os::TablePartition part(uint32_t number, std::string type, std::string name = "") {
  os::TablePartition p;
  p.number = number;
  p.type = std::move(type);
  p.name = std::move(name);
  return p;
}

os::KernelPartition kpart(const std::string& name, uint32_t number) {
  os::KernelPartition p;
  p.name = name;
  p.number = number;
  p.size_bytes = kGiBytes;
  return p;
}

const std::string kShared(kSharedPartitionTypeGuid);
const std::string kExclusive(kExclusivePartitionTypeGuid);
const std::string kLinuxFs = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

TEST_CASE("evaluateDisk decides eligibility from facts", "[unit][discovery]") {
  struct Case {
    std::string name;
    std::function<void(DiskFacts&)> setup;
    bool eligible;
    std::string reason;  // exact, or prefix when ending in "..."
    bool carina_label = false;
  };
  std::vector<Case> cases = {
      {"empty disk", [](DiskFacts&) {}, true, ""},
      {"read-only", [](DiskFacts& f) { f.device.read_only = true; }, false, "read-only"},
      {"mounted", [](DiskFacts& f) { f.device.mount_points = {"/mnt/x"}; }, false,
       "mounted at /mnt/x"},
      {"held", [](DiskFacts& f) { f.device.holders = {"dm-0"}; }, false, "held by dm-0"},
      {"probe failed",
       [](DiskFacts& f) {
         f.signatures.reset();
         f.probe_error = "open /dev/sdb: EACCES";
       },
       false, "cannot read signatures: open /dev/sdb: EACCES"},
      {"xfs",
       [](DiskFacts& f) {
         f.signatures->type = "xfs";
         f.signatures->usage = "filesystem";
       },
       false, "has xfs filesystem signature"},
      {"ext4",
       [](DiskFacts& f) {
         f.signatures->type = "ext4";
         f.signatures->usage = "filesystem";
       },
       false, "has ext4 filesystem signature"},
      {"LVM PV",
       [](DiskFacts& f) {
         f.signatures->type = "LVM2_member";
         f.signatures->usage = "raid";
       },
       false, "has LVM2_member RAID/LVM signature"},
      {"md RAID",
       [](DiskFacts& f) {
         f.signatures->type = "linux_raid_member";
         f.signatures->usage = "raid";
       },
       false, "has linux_raid_member RAID/LVM signature"},
      {"LUKS",
       [](DiskFacts& f) {
         f.signatures->type = "crypto_LUKS";
         f.signatures->usage = "crypto";
       },
       false, "has crypto_LUKS encryption signature"},
      {"swap",
       [](DiskFacts& f) {
         f.signatures->type = "swap";
         f.signatures->usage = "other";
       },
       false, "has swap signature"},
      {"ambivalent", [](DiskFacts& f) { f.signatures->ambivalent = true; }, false,
       "has several conflicting signatures"},
      {"MBR", [](DiskFacts& f) { f.signatures->pttype = "dos"; }, false, "MBR partition table"},
      {"MBR with partitions",
       [](DiskFacts& f) {
         f.signatures->pttype = "dos";
         f.signatures->partitions = {part(1, "0x83")};
       },
       false, "MBR partition table"},
      {"other table", [](DiskFacts& f) { f.signatures->pttype = "PMBR"; }, false,
       "PMBR partition table"},
      {"empty GPT", [](DiskFacts& f) { f.signatures->pttype = "gpt"; }, true, "", true},
      {"carina GPT",
       [](DiskFacts& f) {
         f.signatures->pttype = "gpt";
         f.signatures->partitions = {part(1, kShared, "pvc-1"), part(2, kExclusive, "pvc-2")};
       },
       true, "", true},
      {"carina GPT, lower-case GUID",
       [](DiskFacts& f) {
         f.signatures->pttype = "gpt";
         f.signatures->partitions = {part(1, "191e5935-836c-43b3-b969-969701dcb0d7")};
       },
       true, "", true},
      {"GPT with a foreign partition",
       [](DiskFacts& f) {
         f.signatures->pttype = "gpt";
         f.signatures->partitions = {part(1, kShared), part(2, kLinuxFs)};
       },
       false, "GPT with foreign partition 2 (type " + kLinuxFs + ")"},
      {"carina GPT with its volumes mounted and held",
       [](DiskFacts& f) {
         f.signatures->pttype = "gpt";
         f.signatures->partitions = {part(1, kShared), part(2, kShared)};
         f.device.partitions = {kpart("sdb1", 1), kpart("sdb2", 2)};
         f.device.partitions[0].mount_points = {"/var/lib/kubelet/pods/x"};
         f.device.partitions[1].holders = {"dm-3"};
       },
       true, "", true},
      {"carina GPT with a stale kernel partition mounted",
       [](DiskFacts& f) {
         f.signatures->pttype = "gpt";
         f.signatures->partitions = {part(1, kShared)};
         f.device.partitions = {kpart("sdb1", 1), kpart("sdb3", 3)};
         f.device.partitions[1].mount_points = {"/data"};
       },
       false, "partition sdb3 mounted at /data", true},
      {"carina GPT with a stale kernel partition held",
       [](DiskFacts& f) {
         f.signatures->pttype = "gpt";
         f.device.partitions = {kpart("sdb4", 4)};
         f.device.partitions[0].holders = {"md0"};
       },
       false, "partition sdb4 held by md0", true},
      {"kernel partitions without a table",
       [](DiskFacts& f) { f.device.partitions = {kpart("sdb1", 1)}; }, false,
       "kernel partition sdb1 without a partition table"},
      {"too small", [](DiskFacts& f) { f.device.size_bytes = kGiBytes; }, false,
       "smaller than minDiskSize 10GiB (1GiB)"},
      {"exactly the minimum", [](DiskFacts& f) { f.device.size_bytes = 10 * kGiBytes; }, true, ""},
      {"read-only wins over a signature",
       [](DiskFacts& f) {
         f.device.read_only = true;
         f.signatures->type = "xfs";
       },
       false, "read-only"},
      {"mounted wins over the filesystem",
       [](DiskFacts& f) {
         f.device.mount_points = {"/mnt/x"};
         f.signatures->type = "ext4";
         f.signatures->usage = "filesystem";
       },
       false, "mounted at /mnt/x"},
      {"removable is only reported", [](DiskFacts& f) { f.device.removable = true; }, true, ""},
  };
  auto sel = selector("ssd", {"sdb"});
  for (const auto& c : cases) {
    SECTION(c.name) {
      DiskFacts f;
      f.device = disk("sdb");
      f.device.logical_sector_size = 4096;
      f.signatures = os::DeviceSignatures{};
      c.setup(f);
      DiskInfo info = evaluateDisk(f, {&sel}, 10 * kGiBytes);
      CHECK(info.name == "sdb");
      CHECK(info.devnode == "/dev/sdb");
      CHECK(info.group == "ssd");
      CHECK(info.policy == core::DiskPolicy::Raw);
      CHECK(info.size_bytes == f.device.size_bytes);
      CHECK(info.logical_sector_size == 4096);
      CHECK(info.eligible == c.eligible);
      CHECK(info.reason == c.reason);
      CHECK(info.has_carina_label == c.carina_label);
    }
  }
}

TEST_CASE("evaluateDisks matches whole names and reports conflicts", "[unit][discovery]") {
  DiscoveryConfig cfg;
  cfg.min_disk_size_bytes = kGiBytes;
  cfg.selectors = {selector("ssd", {"sd[b-c]", "nvme0n1"}),
                   selector("hdd", {"sdc", "sdd"}, core::DiskPolicy::Lvm),
                   selector("loops", {"loop7"})};
  auto set = DiskSelectorSet::compile(cfg);
  REQUIRE(set.ok());
  std::vector<DiskFacts> facts;
  for (const char* name :
       {"sda", "sdb", "sdc", "sdd", "sdbb", "nvme0n1", "loop7", "loop70", "loop17", "sde"}) {
    DiskFacts f;
    f.device = disk(name);
    f.signatures = os::DeviceSignatures{};
    facts.push_back(f);
  }
  auto out = evaluateDisks(facts, *set, cfg.min_disk_size_bytes);
  std::vector<std::string> names;
  for (const auto& d : out) {
    names.push_back(d.name);
  }
  CHECK(names == std::vector<std::string>{"loop7", "nvme0n1", "sdb", "sdc", "sdd"});
  auto find = [&](const std::string& n) {
    return *std::find_if(out.begin(), out.end(), [&](const DiskInfo& d) { return d.name == n; });
  };
  CHECK(find("sdb").eligible);
  CHECK(find("sdb").group == "ssd");
  CHECK_FALSE(find("sdc").eligible);
  CHECK(find("sdc").reason == "matched by groups ssd and hdd");
  CHECK(find("sdd").eligible);
  CHECK(find("sdd").group == "hdd");
  CHECK(find("sdd").policy == core::DiskPolicy::Lvm);
  CHECK(find("loop7").group == "loops");

  // A detached loop device (size 0, no medium) matching a selector is not listed.
  auto none = evaluateDisks({DiskFacts{disk("loop7", 0), os::DeviceSignatures{}, ""}}, *set,
                            cfg.min_disk_size_bytes);
  CHECK(none.empty());
}

TEST_CASE("three groups matching one disk are all named", "[unit][discovery]") {
  auto a = selector("a", {"sdb"});
  auto b = selector("b", {"sd.*"});
  auto c = selector("c", {".*"});
  DiskFacts f{disk("sdb"), os::DeviceSignatures{}, ""};
  auto info = evaluateDisk(f, {&a, &b, &c}, 0);
  CHECK_FALSE(info.eligible);
  CHECK(info.reason == "matched by groups a, b and c");
}

TEST_CASE("nodeLabel decides whether a selector applies", "[unit][discovery]") {
  using Labels = std::map<std::string, std::string>;
  struct Case {
    std::string name;
    std::string node_label;
    std::optional<Labels> labels;
    bool applies;
  };
  std::vector<Case> cases = {
      {"no nodeLabel", "", Labels{}, true},
      {"standalone ignores nodeLabel", "carina.storage.io/ssd", std::nullopt, true},
      {"key present", "kubernetes.io/hostname", Labels{{"kubernetes.io/hostname", "n1"}}, true},
      {"key absent", "carina.storage.io/ssd", Labels{{"kubernetes.io/hostname", "n1"}}, false},
      {"key=value equal", "disk=ssd", Labels{{"disk", "ssd"}}, true},
      {"key=value different", "disk=ssd", Labels{{"disk", "hdd"}}, false},
      {"key=value absent", "disk=ssd", Labels{}, false},
      {"key= empty value", "disk=", Labels{{"disk", ""}}, true},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      auto sel = selector("g", {"sdb"}, core::DiskPolicy::Raw, c.node_label);
      CHECK(selectorAppliesToNode(sel, c.labels) == c.applies);
      DiscoveryConfig cfg;
      cfg.selectors = {sel};
      cfg.node_labels = c.labels;
      auto set = DiskSelectorSet::compile(cfg);
      REQUIRE(set.ok());
      CHECK(set->match("sdb").size() == (c.applies ? 1U : 0U));
    }
  }
}

TEST_CASE("DiskSelectorSet rejects bad regexes with the path", "[unit][discovery]") {
  DiscoveryConfig cfg;
  cfg.selectors = {selector("a", {"sdb"}), selector("b", {"ok", "sd[b-"})};
  auto set = DiskSelectorSet::compile(cfg);
  REQUIRE_FALSE(set.ok());
  CHECK(set.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(set.status().message()).rfind("diskSelector[1].re[1]: invalid regex", 0) == 0);
}

TEST_CASE("DiscoveryConfig comes from the agent config", "[unit][discovery]") {
  core::AgentConfig agent;
  agent.disk_selectors = {selector("a", {"sdb"})};
  agent.min_disk_size_bytes = 123;
  agent.disk_scan_interval_seconds = 7;
  auto cfg = DiscoveryConfig::fromAgentConfig(agent);
  CHECK(cfg.selectors.size() == 1);
  CHECK(cfg.min_disk_size_bytes == 123);
  CHECK(cfg.scan_interval_seconds == 7);
  CHECK_FALSE(cfg.node_labels.has_value());
}

}  // namespace
}  // namespace carina::storage
