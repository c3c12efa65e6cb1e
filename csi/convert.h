#pragma once

// Validation of CSI requests and translation between ::csi::v1 messages and plain domain structs
// (storage::VolumeSpec, storage::Volume). Pure functions: unit-tested without a server.
// Private to csi/ (includes the generated csi.pb.h); protobuf types do not leave csi/.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

#include "agent/core/constants.h"
#include "agent/storage/class_params.h"
#include "agent/storage/volume_backend.h"
#include "csi.pb.h"

namespace carina::csi {

// StorageClass parameters (Carina-compatible): one parser, agent/storage/class_params.h, shared
// with the scheduler extender.
inline constexpr std::string_view kParamFsType = storage::kParamFsType;
inline constexpr std::string_view kParamDiskType = storage::kParamDiskType;
inline constexpr std::string_view kParamDiskGroup = storage::kParamDiskGroup;
inline constexpr std::string_view kParamExclusive = storage::kParamExclusive;
inline constexpr std::string_view kParamExclusiveCarina = storage::kParamExclusiveCarina;
/** Scheduling only (read by the extender); accepted and validated here because
 *  external-provisioner forwards every StorageClass parameter to CreateVolume. */
inline constexpr std::string_view kParamSchedulerStrategy = storage::kParamSchedulerStrategy;

// volume_context keys returned by CreateVolume and read back by the node calls.
inline constexpr std::string_view kCtxGroup = "carina.storage.io/group";
inline constexpr std::string_view kCtxFsType = "carina.storage.io/fstype";
inline constexpr std::string_view kCtxExclusive = "carina.storage.io/exclusive";
inline constexpr std::string_view kCtxDevice = "carina.storage.io/device";

inline constexpr uint64_t kXfsMinBytes = 300 * kMiB;   // mkfs.xfs refuses smaller devices
inline constexpr uint64_t kDefaultVolumeBytes = kGiB;  // capacity_range absent or 0
inline constexpr std::string_view kDefaultFsType = "ext4";

/** What a VolumeCapability asks for, once validated. */
struct Capability {
  bool block = false;
  std::string fs_type;  // mount only; "" = not given in the capability
  std::vector<std::string> mount_flags;
  ::csi::v1::VolumeCapability::AccessMode::Mode mode =
      ::csi::v1::VolumeCapability::AccessMode::UNKNOWN;
};

/** Validates one capability. Missing access type or access mode, bad mount flags → InvalidArgument;
 *  a well-formed but unsupported access mode or fs type → @p unsupported (the spec wants
 *  INVALID_ARGUMENT for CreateVolume/NodeExpand and FAILED_PRECONDITION for NodeStage/Publish). */
absl::StatusOr<Capability> checkCapability(const ::csi::v1::VolumeCapability& cap,
                                           absl::StatusCode unsupported);

/** StorageClass parameters (the CreateVolume subset of storage::ClassParams). */
struct VolumeParams {
  std::string group;  // "" = the node's only group
  bool exclusive = false;
  std::string fs_type;  // "" = not given
};
/** storage::parseClassParams(): the same rules and messages as the extender. */
absl::StatusOr<VolumeParams> parseParameters(const std::map<std::string, std::string>& params);

/** The fs type a set of capabilities and parameters asks for: the capabilities' fs_type (they
 *  must agree), else the parameter, else ext4; "" when every capability is block. */
absl::StatusOr<std::string> resolveFsType(const std::vector<Capability>& caps,
                                          const VolumeParams& params);

/** The size to provision for [required, limit] (0 = unset): 1 GiB when nothing is asked, at
 *  least 300 MiB for xfs, rounded up to 1 MiB. InvalidArgument for negative numbers,
 *  OutOfRange when no such size fits below limit. */
absl::StatusOr<uint64_t> provisionSize(int64_t required, int64_t limit, std::string_view fs_type);

/** CreateVolumeRequest → VolumeSpec (+ the resolved fs type). All validation of the request
 *  except topology. */
struct CreatePlan {
  storage::VolumeSpec spec;
  std::string fs_type;  // "" for block-only volumes
  std::vector<Capability> caps;
};
absl::StatusOr<CreatePlan> planCreate(const ::csi::v1::CreateVolumeRequest& req);

/** True when @p req (may be absent) allows a volume on @p node: some requisite or preferred
 *  topology has kTopologyKey = node. A requirement with no topologies allows every node. */
bool topologyAllows(const ::csi::v1::CreateVolumeRequest& req, const std::string& node);

/** Fills a CSI Volume from a domain volume. */
void fillVolume(const storage::Volume& vol, const std::string& fs_type, const std::string& node,
                ::csi::v1::Volume* out);

/** Lexical check of a target/staging path: absolute, no "." / ".." components, no "//", no
 *  trailing "/", no control characters, at most 4096 bytes, and strictly below @p kubelet_dir.
 *  InvalidArgument naming @p field otherwise. */
absl::Status checkPath(const std::string& path, const std::string& kubelet_dir,
                       std::string_view field);

/** `blkid -p -o export` output → KEY=VALUE map. */
std::map<std::string, std::string> parseBlkidExport(std::string_view text);

/** argv of the mkfs for @p fs_type on @p device. */
std::vector<std::string> mkfsCommand(const std::string& fs_type, const std::string& device);

/** Proto map → std::map. */
std::map<std::string, std::string> toStdMap(
    const google::protobuf::Map<std::string, std::string>& m);

/** "INVALID_ARGUMENT" etc. */
std::string_view codeName(absl::StatusCode code);

}  // namespace carina::csi
