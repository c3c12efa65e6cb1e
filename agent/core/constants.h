#pragma once

// Names that are part of carina's contract with clusters and disks. Never change them: PVs,
// StorageClasses and partitions on users' disks refer to them.

#include <cstdint>
#include <string_view>

namespace carina {

/** The CSI driver name (StorageClass provisioner, PV spec.csi.driver). */
inline constexpr std::string_view kDriverName = "carina.storage.io";
/** Topology key returned by NodeGetInfo and CreateVolume. */
inline constexpr std::string_view kTopologyKey = "topology.carina.storage.io/node";

/** GPT partition type GUID of a partition carina created for a shared-disk volume. */
inline constexpr std::string_view kSharedPartitionTypeGuid = "191E5935-836C-43B3-B969-969701DCB0D7";
/** GPT partition type GUID of a partition carina created for an exclusive-disk volume (the
 *  whole disk is reserved for that volume's growth). */
inline constexpr std::string_view kExclusivePartitionTypeGuid =
    "CE8B6504-4240-4B5C-BEEE-1A4818053BBC";

inline constexpr uint64_t kMiB = 1024ULL * 1024ULL;
inline constexpr uint64_t kGiB = 1024ULL * kMiB;

}  // namespace carina
