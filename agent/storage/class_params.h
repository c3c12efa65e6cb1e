#pragma once

// StorageClass parameters: the ONE parser shared by CreateVolume (csi/convert.cc) and the
// scheduler extender (extender/scoring.cc), so that the extender never accepts a class that
// CreateVolume refuses, nor reads a different group or exclusivity from it. Pure function on the
// parameter map as written in the StorageClass (external-provisioner forwards it unchanged).

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <absl/status/statusor.h>

#include "agent/core/config.h"

namespace carina::storage {

// Parameter names (Carina-compatible).
inline constexpr std::string_view kParamFsType = "csi.storage.k8s.io/fstype";
inline constexpr std::string_view kParamDiskType = "carina.storage.io/disk-type";
inline constexpr std::string_view kParamDiskGroup = "carina.storage.io/disk-group-name";
inline constexpr std::string_view kParamExclusive = "carina.storage.io/exclusivity-disk";
inline constexpr std::string_view kParamExclusiveCarina = "carina.storage.io/exclusively-raw-disk";
/** Scheduling only (read by the extender), validated by CreateVolume too. */
inline constexpr std::string_view kParamSchedulerStrategy = "carina.storage.io/scheduler-strategy";

/** The parameters, validated. */
struct ClassParams {
  /** disk-group-name, else disk-type (Carina's name for it); "" = the node's only group. */
  std::string group;
  /** exclusivity-disk or exclusively-raw-disk is true. */
  bool exclusive = false;
  /** csi.storage.k8s.io/fstype: "ext4" or "xfs"; "" = not given. */
  std::string fs_type;
  /** scheduler-strategy; nullopt = the configured default. */
  std::optional<core::SchedulerStrategy> strategy;

  friend bool operator==(const ClassParams&, const ClassParams&) = default;
};

/** Parses and validates StorageClass parameters. Rules:
 *  - booleans (exclusivity-disk, exclusively-raw-disk): true/false in any case, "" = false;
 *    either one true makes the volume exclusive;
 *  - scheduler-strategy: binpack/spreadout in any case, "" = not set;
 *  - fstype: ext4 or xfs, "" = not set;
 *  - disk-type and disk-group-name both set must agree;
 *  - any other carina.storage.io/ key is an error (a typo would otherwise be silently ignored);
 *    keys of other prefixes (csi.storage.k8s.io/pvc/name, ...) are ignored.
 *  InvalidArgument naming the parameter otherwise (no "carina:" prefix; callers add context). */
absl::StatusOr<ClassParams> parseClassParams(const std::map<std::string, std::string>& params);

/** "binpack" / "spreadout" (any case); nullopt otherwise. */
std::optional<core::SchedulerStrategy> parseSchedulerStrategy(std::string_view name);

}  // namespace carina::storage
