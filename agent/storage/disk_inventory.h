#pragma once

// Disk eligibility: a PURE function from facts (sysfs, mountinfo, blkid signatures) and the
// configured selectors to DiskInfo. No I/O here; disk_discovery.h gathers the facts.
//
// Rules (docs/discovery.md):
//  * A disk is considered only when it is a whole disk with a medium (size > 0) and at least one
//    selector that applies to this node matches its whole kernel name (std::regex_match,
//    ECMAScript). Disks matched by no selector are not listed at all: other processes' loop
//    devices and the system disk must not clutter the inventory. Partitions are never listed.
//  * A disk matched by two or more groups is listed, ineligible ("matched by groups a and b").
//  * Eligible only if: writable, not mounted, no holders, no signature of any kind, no partition
//    table unless it is a GPT whose partitions all carry one of carina's type GUIDs (then
//    has_carina_label), and size >= minDiskSize. The first failing rule is the reason.

#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

#include "agent/core/config.h"
#include "agent/os/block_devices.h"
#include "agent/storage/disk_types.h"

namespace carina::storage {

/** Everything discovery knows about one whole disk. */
struct DiskFacts {
  os::BlockDeviceFacts device;
  std::optional<os::DeviceSignatures> signatures;  // nullopt when probing failed
  std::string probe_error;                         // why probing failed
};

/** The configuration discovery works with (a projection of core::AgentConfig). */
struct DiscoveryConfig {
  std::vector<core::DiskSelector> selectors;
  uint64_t min_disk_size_bytes = 10ULL * 1024 * 1024 * 1024;
  uint32_t scan_interval_seconds = 300;  // 0: no periodic rescan
  /** The node's labels. nullopt in standalone mode (labels unknown): nodeLabel is then ignored
   *  and every selector applies. */
  std::optional<std::map<std::string, std::string>> node_labels;

  static DiscoveryConfig fromAgentConfig(
      const core::AgentConfig& cfg,
      std::optional<std::map<std::string, std::string>> node_labels = std::nullopt);
};

/**
 * True when @p selector applies on a node with @p node_labels: nodeLabel empty, labels unknown
 * (standalone), nodeLabel "key" present, or nodeLabel "key=value" present with that value.
 */
bool selectorAppliesToNode(const core::DiskSelector& selector,
                           const std::optional<std::map<std::string, std::string>>& node_labels);

/** The selectors that apply on this node, with their regexes compiled once. */
class DiskSelectorSet {
public:
  /** InvalidArgument ("diskSelector[1].re[0]: invalid regex ...") on a bad regex. */
  static absl::StatusOr<DiskSelectorSet> compile(const DiscoveryConfig& config);

  /** Selectors (of those that apply to this node) whose regexes match all of @p name. */
  std::vector<const core::DiskSelector*> match(std::string_view name) const;
  bool empty() const { return entries_.empty(); }

private:
  struct Entry {
    core::DiskSelector selector;
    std::vector<std::regex> regexes;
  };
  std::vector<Entry> entries_;
};

/**
 * Eligibility of one disk matched by @p matched (non-empty). Pure.
 * @return the DiskInfo with group (the first matched group), eligible and reason filled in.
 */
DiskInfo evaluateDisk(const DiskFacts& facts, const std::vector<const core::DiskSelector*>& matched,
                      uint64_t min_disk_size_bytes);

/** evaluateDisk() over every matched whole disk with a medium, sorted by name. Pure. */
std::vector<DiskInfo> evaluateDisks(const std::vector<DiskFacts>& facts,
                                    const DiskSelectorSet& selectors, uint64_t min_disk_size_bytes);

/** True for carina's two GPT partition type GUIDs (any case). */
bool isCarinaPartitionType(std::string_view type_guid);

}  // namespace carina::storage
