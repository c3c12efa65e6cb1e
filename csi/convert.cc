#include "csi/convert.h"

#include <algorithm>
#include <limits>

namespace carina::csi {

using AccessMode = ::csi::v1::VolumeCapability::AccessMode;

namespace {

bool supportedMode(AccessMode::Mode mode) {
  return mode == AccessMode::SINGLE_NODE_WRITER || mode == AccessMode::SINGLE_NODE_SINGLE_WRITER ||
         mode == AccessMode::SINGLE_NODE_MULTI_WRITER;
}

bool supportedFs(std::string_view fs) { return fs == "ext4" || fs == "xfs"; }

absl::Status checkMountFlag(const std::string& flag) {
  if (flag.empty() || flag.size() > 256 ||
      flag.find_first_of(", \t\n\r\"'\\") != std::string::npos) {
    return absl::InvalidArgumentError("volume_capability.mount.mount_flags: invalid flag \"" +
                                      flag + "\"");
  }
  for (std::string_view bad : {"bind", "rbind", "remount", "move", "shared", "rshared", "private",
                               "rprivate", "slave", "rslave"}) {
    if (flag == bad) {
      return absl::InvalidArgumentError("volume_capability.mount.mount_flags: \"" + flag +
                                        "\" is not allowed");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Capability> checkCapability(const ::csi::v1::VolumeCapability& cap,
                                           absl::StatusCode unsupported) {
  Capability out;
  if (!cap.has_access_mode() || cap.access_mode().mode() == AccessMode::UNKNOWN) {
    return absl::InvalidArgumentError("volume_capability.access_mode is required");
  }
  out.mode = cap.access_mode().mode();
  switch (cap.access_type_case()) {
    case ::csi::v1::VolumeCapability::kBlock:
      out.block = true;
      break;
    case ::csi::v1::VolumeCapability::kMount:
      out.fs_type = cap.mount().fs_type();
      for (const auto& f : cap.mount().mount_flags()) {
        if (auto st = checkMountFlag(f); !st.ok()) {
          return st;
        }
        out.mount_flags.push_back(f);
      }
      if (!cap.mount().volume_mount_group().empty()) {
        return absl::Status(unsupported, "volume_mount_group is not supported");
      }
      if (!out.fs_type.empty() && !supportedFs(out.fs_type)) {
        return absl::Status(unsupported,
                            "fs_type \"" + out.fs_type + "\" is not supported (ext4 or xfs)");
      }
      break;
    default:
      return absl::InvalidArgumentError(
          "volume_capability.access_type (mount or block) is "
          "required");
  }
  if (!supportedMode(out.mode)) {
    return absl::Status(unsupported, "access mode " + AccessMode::Mode_Name(out.mode) +
                                         " is not supported (local volumes are single-node)");
  }
  return out;
}

absl::StatusOr<VolumeParams> parseParameters(const std::map<std::string, std::string>& params) {
  absl::StatusOr<storage::ClassParams> parsed = storage::parseClassParams(params);
  if (!parsed.ok()) {
    return parsed.status();
  }
  VolumeParams out;
  out.group = std::move(parsed->group);
  out.exclusive = parsed->exclusive;
  out.fs_type = std::move(parsed->fs_type);
  return out;
}

absl::StatusOr<std::string> resolveFsType(const std::vector<Capability>& caps,
                                          const VolumeParams& params) {
  std::string from_caps;
  bool any_mount = false;
  for (const auto& c : caps) {
    if (c.block) {
      continue;
    }
    any_mount = true;
    if (c.fs_type.empty()) {
      continue;
    }
    if (!from_caps.empty() && from_caps != c.fs_type) {
      return absl::InvalidArgumentError("volume_capabilities ask for different fs types (" +
                                        from_caps + ", " + c.fs_type + ")");
    }
    from_caps = c.fs_type;
  }
  if (!any_mount) {
    return std::string();
  }
  if (!from_caps.empty()) {
    return from_caps;
  }
  if (!params.fs_type.empty()) {
    return params.fs_type;
  }
  return std::string(kDefaultFsType);
}

absl::StatusOr<uint64_t> provisionSize(int64_t required, int64_t limit, std::string_view fs_type) {
  if (required < 0 || limit < 0) {
    return absl::InvalidArgumentError("capacity_range: bytes must not be negative");
  }
  if (limit > 0 && required > limit) {
    return absl::OutOfRangeError("capacity_range: required_bytes " + std::to_string(required) +
                                 " exceeds limit_bytes " + std::to_string(limit));
  }
  auto want = static_cast<uint64_t>(required);
  const auto max = limit > 0 ? static_cast<uint64_t>(limit) : std::numeric_limits<uint64_t>::max();
  if (want == 0) {
    want = std::min(kDefaultVolumeBytes, max);
  }
  if (fs_type == "xfs" && want < kXfsMinBytes) {
    if (max < kXfsMinBytes) {
      return absl::OutOfRangeError(
          "capacity_range: xfs needs at least 300 MiB (mkfs.xfs refuses "
          "smaller devices) but limit_bytes is " +
          std::to_string(limit));
    }
    want = kXfsMinBytes;
  }
  if (want > std::numeric_limits<uint64_t>::max() - kMiB) {
    return absl::OutOfRangeError("capacity_range: required_bytes too large");
  }
  const uint64_t rounded = (want + kMiB - 1) / kMiB * kMiB;
  if (rounded > max) {
    return absl::OutOfRangeError("capacity_range: no size aligned to 1 MiB lies in [" +
                                 std::to_string(required) + ", " + std::to_string(limit) + "]");
  }
  return rounded;
}

absl::StatusOr<CreatePlan> planCreate(const ::csi::v1::CreateVolumeRequest& req) {
  if (req.name().empty()) {
    return absl::InvalidArgumentError("name is required");
  }
  if (req.volume_capabilities_size() == 0) {
    return absl::InvalidArgumentError("volume_capabilities are required");
  }
  if (req.has_volume_content_source()) {
    return absl::InvalidArgumentError(
        "volume_content_source is not supported (no snapshots or clones)");
  }
  if (!req.mutable_parameters().empty()) {
    return absl::InvalidArgumentError("mutable_parameters are not supported");
  }
  CreatePlan plan;
  for (const auto& cap : req.volume_capabilities()) {
    auto c = checkCapability(cap, absl::StatusCode::kInvalidArgument);
    if (!c.ok()) {
      return c.status();
    }
    plan.caps.push_back(*std::move(c));
  }
  auto params = parseParameters(toStdMap(req.parameters()));
  if (!params.ok()) {
    return params.status();
  }
  auto fs = resolveFsType(plan.caps, *params);
  if (!fs.ok()) {
    return fs.status();
  }
  plan.fs_type = *fs;
  auto size = provisionSize(req.capacity_range().required_bytes(),
                            req.capacity_range().limit_bytes(), plan.fs_type);
  if (!size.ok()) {
    return size.status();
  }
  plan.spec.name = req.name();
  plan.spec.required_bytes = *size;
  plan.spec.limit_bytes = static_cast<uint64_t>(req.capacity_range().limit_bytes());
  plan.spec.group = params->group;
  plan.spec.exclusive = params->exclusive;
  return plan;
}

bool topologyAllows(const ::csi::v1::CreateVolumeRequest& req, const std::string& node) {
  if (!req.has_accessibility_requirements()) {
    return true;
  }
  const auto& r = req.accessibility_requirements();
  if (r.requisite_size() == 0 && r.preferred_size() == 0) {
    return true;
  }
  auto matches = [&](const ::csi::v1::Topology& t) {
    auto it = t.segments().find(std::string(kTopologyKey));
    return it != t.segments().end() && it->second == node;
  };
  // Every preferred topology is also requisite (spec), but a CO may send only one list.
  if (r.requisite_size() > 0) {
    return std::any_of(r.requisite().begin(), r.requisite().end(), matches);
  }
  return std::any_of(r.preferred().begin(), r.preferred().end(), matches);
}

void fillVolume(const storage::Volume& vol, const std::string& fs_type, const std::string& node,
                ::csi::v1::Volume* out) {
  out->set_volume_id(vol.id);
  out->set_capacity_bytes(static_cast<int64_t>(vol.size_bytes));
  auto& ctx = *out->mutable_volume_context();
  ctx[std::string(kCtxGroup)] = vol.group;
  ctx[std::string(kCtxExclusive)] = vol.exclusive ? "true" : "false";
  ctx[std::string(kCtxDevice)] = vol.device;
  if (!fs_type.empty()) {
    ctx[std::string(kCtxFsType)] = fs_type;
  }
  auto* topo = out->add_accessible_topology();
  (*topo->mutable_segments())[std::string(kTopologyKey)] = node;
}

absl::Status checkPath(const std::string& path, const std::string& kubelet_dir,
                       std::string_view field) {
  const std::string f(field);
  if (path.empty()) {
    return absl::InvalidArgumentError(f + " is required");
  }
  if (path.size() > 4096) {
    return absl::InvalidArgumentError(f + " is longer than 4096 bytes");
  }
  if (path[0] != '/') {
    return absl::InvalidArgumentError(f + " must be an absolute path: \"" + path + "\"");
  }
  for (char ch : path) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
      return absl::InvalidArgumentError(f + " contains control characters");
    }
  }
  if (path.size() > 1 && path.back() == '/') {
    return absl::InvalidArgumentError(f + " must not end in \"/\": \"" + path + "\"");
  }
  if (path.find("//") != std::string::npos) {
    return absl::InvalidArgumentError(f + " must not contain \"//\": \"" + path + "\"");
  }
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string::npos) {
      next = path.size();
    }
    const std::string_view comp(path.data() + pos, next - pos);
    if (comp == "." || comp == "..") {
      return absl::InvalidArgumentError(f + " must not contain \".\" or \"..\" components: \"" +
                                        path + "\"");
    }
    pos = next + 1;
  }
  std::string base = kubelet_dir;
  while (base.size() > 1 && base.back() == '/') {
    base.pop_back();
  }
  if (!path.starts_with(base + "/") || path.size() <= base.size() + 1) {
    return absl::InvalidArgumentError(f + " \"" + path + "\" is not below the kubelet directory " +
                                      base);
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> parseBlkidExport(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      continue;
    }
    out[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  return out;
}

std::vector<std::string> mkfsCommand(const std::string& fs_type, const std::string& device) {
  if (fs_type == "xfs") {
    // No -f: mkfs.xfs then refuses a device with any signature, a second guard after blkid.
    return {"mkfs.xfs", "-q", device};
  }
  // 4 KiB blocks also below 512 MiB, so the filesystem can grow with the volume.
  return {"mkfs." + fs_type, "-q", "-F", "-b", "4096", device};
}

std::map<std::string, std::string> toStdMap(
    const google::protobuf::Map<std::string, std::string>& m) {
  return {m.begin(), m.end()};
}

std::string_view codeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "OK";
    case absl::StatusCode::kCancelled:
      return "CANCELLED";
    case absl::StatusCode::kUnknown:
      return "UNKNOWN";
    case absl::StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case absl::StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case absl::StatusCode::kNotFound:
      return "NOT_FOUND";
    case absl::StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case absl::StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case absl::StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case absl::StatusCode::kAborted:
      return "ABORTED";
    case absl::StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case absl::StatusCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case absl::StatusCode::kInternal:
      return "INTERNAL";
    case absl::StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case absl::StatusCode::kDataLoss:
      return "DATA_LOSS";
    case absl::StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

}  // namespace carina::csi
