#include "agent/storage/disk_inventory.h"

#include <algorithm>
#include <cctype>

#include "agent/core/constants.h"
#include "agent/storage/placement.h"

namespace carina::storage {
namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string joinGroups(const std::vector<const core::DiskSelector*>& matched) {
  std::string out;
  for (size_t i = 0; i < matched.size(); ++i) {
    if (i > 0) {
      out += i + 1 == matched.size() ? " and " : ", ";
    }
    out += matched[i]->name;
  }
  return out;
}

std::string signatureReason(const os::DeviceSignatures& sig) {
  if (sig.ambivalent) {
    return "has several conflicting signatures";
  }
  std::string kind;
  if (sig.usage == "filesystem") {
    kind = " filesystem";
  } else if (sig.usage == "raid") {
    kind = " RAID/LVM";
  } else if (sig.usage == "crypto") {
    kind = " encryption";
  }
  return "has " + sig.type + kind + " signature";
}

const os::TablePartition* tablePartition(const os::DeviceSignatures* sig, uint32_t number) {
  if (sig == nullptr) {
    return nullptr;
  }
  for (const auto& p : sig->partitions) {
    if (p.number == number) {
      return &p;
    }
  }
  return nullptr;
}

// Why the partition table makes the disk ineligible; "" when there is none or it is all ours.
std::string tableReason(const os::DeviceSignatures& sig) {
  if (sig.pttype.empty()) {
    return "";
  }
  if (sig.pttype == "dos") {
    return "MBR partition table";
  }
  if (sig.pttype != "gpt") {
    return sig.pttype + " partition table";
  }
  for (const auto& p : sig.partitions) {
    if (!isCarinaPartitionType(p.type)) {
      return "GPT with foreign partition " + std::to_string(p.number) + " (type " + p.type + ")";
    }
  }
  return "";
}

}  // namespace

DiscoveryConfig DiscoveryConfig::fromAgentConfig(
    const core::AgentConfig& cfg, std::optional<std::map<std::string, std::string>> node_labels) {
  DiscoveryConfig out;
  out.selectors = cfg.disk_selectors;
  out.min_disk_size_bytes = cfg.min_disk_size_bytes;
  out.scan_interval_seconds = cfg.disk_scan_interval_seconds;
  out.node_labels = std::move(node_labels);
  return out;
}

bool selectorAppliesToNode(const core::DiskSelector& selector,
                           const std::optional<std::map<std::string, std::string>>& node_labels) {
  if (selector.node_label.empty() || !node_labels.has_value()) {
    return true;
  }
  auto eq = selector.node_label.find('=');
  if (eq == std::string::npos) {
    return node_labels->count(selector.node_label) != 0;
  }
  auto it = node_labels->find(selector.node_label.substr(0, eq));
  return it != node_labels->end() && it->second == selector.node_label.substr(eq + 1);
}

absl::StatusOr<DiskSelectorSet> DiskSelectorSet::compile(const DiscoveryConfig& config) {
  DiskSelectorSet set;
  for (size_t i = 0; i < config.selectors.size(); ++i) {
    const auto& sel = config.selectors[i];
    if (!selectorAppliesToNode(sel, config.node_labels)) {
      continue;
    }
    Entry entry{sel, {}};
    for (size_t j = 0; j < sel.re.size(); ++j) {
      try {
        entry.regexes.emplace_back(sel.re[j], std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return absl::InvalidArgumentError("diskSelector[" + std::to_string(i) + "].re[" +
                                          std::to_string(j) + "]: invalid regex \"" + sel.re[j] +
                                          "\": " + e.what());
      }
    }
    set.entries_.push_back(std::move(entry));
  }
  return set;
}

std::vector<const core::DiskSelector*> DiskSelectorSet::match(std::string_view name) const {
  std::vector<const core::DiskSelector*> out;
  for (const auto& e : entries_) {
    for (const auto& re : e.regexes) {
      if (std::regex_match(name.begin(), name.end(), re)) {
        out.push_back(&e.selector);
        break;
      }
    }
  }
  return out;
}

bool isCarinaPartitionType(std::string_view type_guid) {
  return equalsIgnoreCase(type_guid, kSharedPartitionTypeGuid) ||
         equalsIgnoreCase(type_guid, kExclusivePartitionTypeGuid);
}

DiskInfo evaluateDisk(const DiskFacts& facts, const std::vector<const core::DiskSelector*>& matched,
                      uint64_t min_disk_size_bytes) {
  const os::BlockDeviceFacts& dev = facts.device;
  DiskInfo info;
  info.name = dev.name;
  info.devnode = dev.devnode;
  info.size_bytes = dev.size_bytes;
  info.logical_sector_size = dev.logical_sector_size;
  if (!matched.empty()) {
    info.group = matched.front()->name;
    info.policy = matched.front()->policy;
  }
  const os::DeviceSignatures* sig = facts.signatures ? &*facts.signatures : nullptr;
  auto reason = [&]() -> std::string {
    if (matched.size() > 1) {
      return "matched by groups " + joinGroups(matched);
    }
    if (matched.empty()) {
      return "matched by no group";
    }
    if (dev.read_only) {
      return "read-only";
    }
    if (!dev.mount_points.empty()) {
      return "mounted at " + dev.mount_points.front();
    }
    if (!dev.holders.empty()) {
      return "held by " + dev.holders.front();
    }
    if (sig == nullptr) {
      return "cannot read signatures: " +
             (facts.probe_error.empty() ? std::string("unknown error") : facts.probe_error);
    }
    if (!sig->type.empty() || sig->ambivalent) {
      return signatureReason(*sig);
    }
    if (std::string r = tableReason(*sig); !r.empty()) {
      return r;
    }
    // Partitions the kernel knows: in use (mounted, held) is fine only for carina's own
    // partitions of a carina GPT (volumes in use); anything else means the disk is in use.
    for (const auto& part : dev.partitions) {
      const os::TablePartition* tp = tablePartition(sig, part.number);
      bool ours = sig->pttype == "gpt" && tp != nullptr && isCarinaPartitionType(tp->type);
      if (ours) {
        continue;
      }
      if (sig->pttype.empty()) {
        return "kernel partition " + part.name + " without a partition table";
      }
      if (!part.mount_points.empty()) {
        return "partition " + part.name + " mounted at " + part.mount_points.front();
      }
      if (!part.holders.empty()) {
        return "partition " + part.name + " held by " + part.holders.front();
      }
    }
    if (dev.size_bytes < min_disk_size_bytes) {
      return "smaller than minDiskSize " + formatBytes(min_disk_size_bytes) + " (" +
             formatBytes(dev.size_bytes) + ")";
    }
    return "";
  }();
  info.reason = std::move(reason);
  info.eligible = info.reason.empty();
  info.has_carina_label = sig != nullptr && sig->type.empty() && !sig->ambivalent &&
                          sig->pttype == "gpt" && tableReason(*sig).empty();
  return info;
}

std::vector<DiskInfo> evaluateDisks(const std::vector<DiskFacts>& facts,
                                    const DiskSelectorSet& selectors,
                                    uint64_t min_disk_size_bytes) {
  std::vector<DiskInfo> out;
  for (const auto& f : facts) {
    if (f.device.size_bytes == 0) {
      continue;  // no medium: a detached loop device, an empty card reader
    }
    auto matched = selectors.match(f.device.name);
    if (matched.empty()) {
      continue;
    }
    out.push_back(evaluateDisk(f, matched, min_disk_size_bytes));
  }
  std::sort(out.begin(), out.end(),
            [](const DiskInfo& a, const DiskInfo& b) { return a.name < b.name; });
  return out;
}

}  // namespace carina::storage
