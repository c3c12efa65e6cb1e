// CSI Node: stage (format a blank device, mount it), publish (bind mounts), stats, expansion.
// What is staged or published where is read from the kernel's mount table every time, never
// kept in memory, so a restarted agent sees exactly what is there.
//
// Layout: a filesystem volume is mounted at staging_target_path; a block volume's device node is
// bound onto the file <staging_target_path>/block (so "staged" is visible in the mount table).
// Publish bind-mounts the staging path (filesystem) or the device node (block) onto target_path,
// which we create (directory or file) and remove again in NodeUnpublishVolume.

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "agent/core/blocking.h"
#include "agent/os/command_runner.h"
#include "agent/os/mounter.h"
#include "agent/storage/volume_backend.h"
#include "csi.grpc.pb.h"
#include "csi/device_probe.h"
#include "csi/service_internal.h"

namespace carina::csi {
namespace {

namespace fs = std::filesystem;
using ::csi::v1::NodeServiceCapability;
using AccessMode = ::csi::v1::VolumeCapability::AccessMode;

constexpr std::string_view kBlockFile = "block";

bool sameDevice(const std::string& a, const std::string& b) {
  if (a == b) {
    return true;
  }
  std::error_code ec;
  return fs::equivalent(a, b, ec) && !ec;
}

/** Symlinks must not lead a path out of the kubelet directory. */
absl::Status checkResolved(const std::string& path, const std::string& kubelet_dir,
                           std::string_view field) {
  std::error_code ec;
  const fs::path base = fs::weakly_canonical(kubelet_dir, ec);
  if (ec) {
    return absl::InternalError("cannot resolve kubelet directory " + kubelet_dir);
  }
  const fs::path real = fs::weakly_canonical(path, ec);
  if (ec) {
    return absl::InvalidArgumentError(std::string(field) + " \"" + path +
                                      "\" cannot be resolved: " + ec.message());
  }
  const std::string b = base.string() + "/";
  if (!real.string().starts_with(b)) {
    return absl::InvalidArgumentError(std::string(field) + " \"" + path + "\" resolves to " +
                                      real.string() + ", outside the kubelet directory");
  }
  return absl::OkStatus();
}

/** The blocking half of the node calls; runs on the blocking pool under the volume's lock. */
class NodeOps {
public:
  NodeOps(ServiceContext& c, std::chrono::milliseconds timeout)
      : c_(c), mounter_(c.deps.mounter), runner_(c.deps.runner), timeout_(timeout) {}

  absl::StatusOr<storage::Volume> volume(const std::string& id) {
    auto vol = c_.deps.backend.findVolume(id);
    if (!vol) {
      return absl::NotFoundError("volume " + id + " does not exist on node " +
                                 c_.options().node_name);
    }
    return *vol;
  }

  absl::Status stage(const std::string& id, const std::string& staging, const Capability& cap,
                     const std::string& fs_type) {
    CARINA_ASSIGN_OR_RETURN(auto vol, volume(id));
    CARINA_RETURN_IF_ERROR(checkResolved(staging, c_.options().kubelet_dir, "staging_target_path"));
    if (cap.block) {
      const std::string file = staging + "/" + std::string(kBlockFile);
      CARINA_ASSIGN_OR_RETURN(auto m, mounter_.findMount(file));
      if (m) {
        if (sameDevice(m->device, vol.device)) {
          return absl::OkStatus();  // already staged
        }
        return absl::AlreadyExistsError(file + " already has " + m->device + " bound");
      }
      CARINA_RETURN_IF_ERROR(requireDevice(vol));
      CARINA_RETURN_IF_ERROR(ensureDir(staging));
      bool created = false;
      CARINA_RETURN_IF_ERROR(ensureFile(file, created));
      auto st = mounter_.bindMount(vol.device, file, false);
      if (!st.ok() && created) {
        ::unlink(file.c_str());
      }
      return st;
    }
    CARINA_ASSIGN_OR_RETURN(auto m, mounter_.findMount(staging));
    if (m) {
      if (sameDevice(m->device, vol.device) && m->fs_type == fs_type) {
        return absl::OkStatus();  // already staged with the same capability
      }
      return absl::AlreadyExistsError("staging_target_path " + staging + " already has " +
                                      m->device + " (" + m->fs_type + ") mounted; asked for " +
                                      vol.device + " (" + fs_type + ")");
    }
    CARINA_RETURN_IF_ERROR(requireDevice(vol));
    CARINA_RETURN_IF_ERROR(ensureDir(staging));
    CARINA_ASSIGN_OR_RETURN(bool blank, probeBlank(vol.device, fs_type));
    if (blank) {
      const auto argv = mkfsCommand(fs_type, vol.device);
      CARINA_ASSIGN_OR_RETURN(auto r, runner_.run(argv, timeout_));
      if (!r.ok()) {
        return absl::InternalError("formatting " + vol.device + ": " + commandError(argv, r));
      }
      CARINA_LOG_INFO(c_.logger, "volume formatted",
                      {{"volume", id}, {"device", vol.device}, {"fs", fs_type}});
    }
    return annotate(mounter_.mount(vol.device, staging, fs_type, cap.mount_flags),
                    "staging volume " + id);
  }

  absl::Status unstage(const std::string& id, const std::string& staging) {
    auto vol = c_.deps.backend.findVolume(id);
    bool found_anything = false;
    const std::string file = staging + "/" + std::string(kBlockFile);
    CARINA_ASSIGN_OR_RETURN(auto bm, mounter_.findMount(file));
    if (bm) {
      found_anything = true;
      CARINA_RETURN_IF_ERROR(refuseIfPublished(bm->device, {file}, id));
      CARINA_RETURN_IF_ERROR(mounter_.unmount(file));
    }
    std::error_code ec;
    if (fs::is_regular_file(file, ec)) {
      found_anything = true;
      fs::remove(file, ec);
    }
    CARINA_ASSIGN_OR_RETURN(auto m, mounter_.findMount(staging));
    if (m) {
      found_anything = true;
      CARINA_RETURN_IF_ERROR(refuseIfPublished(m->device, {staging}, id));
      CARINA_RETURN_IF_ERROR(mounter_.unmount(staging));
    }
    if (!vol && !found_anything) {
      return absl::NotFoundError("volume " + id + " does not exist and nothing is staged at " +
                                 staging);
    }
    return absl::OkStatus();
  }

  absl::Status publish(const std::string& id, const std::string& staging, const std::string& target,
                       const Capability& cap, bool readonly) {
    CARINA_ASSIGN_OR_RETURN(auto vol, volume(id));
    CARINA_RETURN_IF_ERROR(checkResolved(staging, c_.options().kubelet_dir, "staging_target_path"));
    CARINA_RETURN_IF_ERROR(checkResolved(target, c_.options().kubelet_dir, "target_path"));
    const std::string source = cap.block ? staging + "/" + std::string(kBlockFile) : staging;
    CARINA_ASSIGN_OR_RETURN(auto sm, mounter_.findMount(source));
    if (!sm || !sameDevice(sm->device, vol.device)) {
      return absl::FailedPreconditionError("volume " + id + " is not staged at " + staging +
                                           " (call NodeStageVolume first)");
    }
    CARINA_ASSIGN_OR_RETURN(auto tm, mounter_.findMount(target));
    if (tm) {
      if (sameDevice(tm->device, vol.device) && tm->readonly == readonly &&
          tm->device_node == cap.block) {
        return absl::OkStatus();  // already published with the same arguments
      }
      return absl::AlreadyExistsError("target_path " + target + " already has " + tm->device +
                                      (tm->readonly ? " (read-only)" : " (read-write)") +
                                      " mounted; incompatible with this request");
    }
    if (cap.mode == AccessMode::SINGLE_NODE_SINGLE_WRITER) {
      CARINA_ASSIGN_OR_RETURN(auto mounts, mounter_.mountsOfDevice(vol.device));
      for (const auto& m : mounts) {
        if (m.path != source && m.path != target) {
          return absl::FailedPreconditionError("volume " + id +
                                               " is SINGLE_NODE_SINGLE_WRITER and already "
                                               "published at " +
                                               m.path);
        }
      }
    }
    std::error_code ec;
    const fs::path parent = fs::path(target).parent_path();
    if (!fs::is_directory(parent, ec)) {
      return absl::FailedPreconditionError("the parent directory of target_path " + target +
                                           " does not exist");
    }
    bool created = false;
    if (cap.block) {
      CARINA_RETURN_IF_ERROR(ensureFile(target, created));
    } else {
      if (fs::exists(target, ec) && !fs::is_directory(target, ec)) {
        return absl::FailedPreconditionError("target_path " + target + " is not a directory");
      }
      created = fs::create_directory(target, ec);
      if (ec) {
        return absl::InternalError("creating target_path " + target + ": " + ec.message());
      }
    }
    auto st = mounter_.bindMount(cap.block ? vol.device : staging, target, readonly);
    if (!st.ok() && created) {
      fs::remove(target, ec);
    }
    return annotate(st, "publishing volume " + id);
  }

  absl::Status unpublish(const std::string& id, const std::string& target) {
    auto vol = c_.deps.backend.findVolume(id);
    CARINA_RETURN_IF_ERROR(checkResolved(target, c_.options().kubelet_dir, "target_path"));
    bool found_anything = false;
    for (int i = 0; i < 8; ++i) {  // stacked mounts: unmount them all
      CARINA_ASSIGN_OR_RETURN(auto m, mounter_.findMount(target));
      if (!m) {
        break;
      }
      found_anything = true;
      CARINA_RETURN_IF_ERROR(mounter_.unmount(target));
    }
    std::error_code ec;
    const auto status = fs::symlink_status(target, ec);
    if (!ec && fs::exists(status)) {
      found_anything = true;
      if (fs::is_directory(status)) {
        if (!fs::is_empty(target, ec)) {
          return absl::FailedPreconditionError("target_path " + target +
                                               " is not empty after unmounting; left in place");
        }
        fs::remove(target, ec);
      } else if (fs::is_regular_file(status)) {
        fs::remove(target, ec);
      } else {
        return absl::FailedPreconditionError("target_path " + target +
                                             " is neither a directory nor a file");
      }
      if (ec) {
        return absl::InternalError("removing target_path " + target + ": " + ec.message());
      }
    }
    if (!vol && !found_anything) {
      return absl::NotFoundError("volume " + id + " does not exist and nothing is published at " +
                                 target);
    }
    return absl::OkStatus();
  }

  absl::Status stats(const std::string& id, const std::string& path,
                     ::csi::v1::NodeGetVolumeStatsResponse* resp) {
    CARINA_ASSIGN_OR_RETURN(auto vol, volume(id));
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      return absl::NotFoundError("volume_path " + path + " does not exist");
    }
    const bool device_ok = mounter_.isBlockDevice(vol.device);
    auto* cond = resp->mutable_volume_condition();
    cond->set_abnormal(!device_ok);
    cond->set_message(device_ok ? "ok" : "device " + vol.device + " is gone");
    if (!fs::is_directory(path, ec)) {
      auto* u = resp->add_usage();
      u->set_unit(::csi::v1::VolumeUsage::BYTES);
      auto size = mounter_.blockDeviceSize(vol.device);
      u->set_total(static_cast<int64_t>(size.ok() ? *size : vol.size_bytes));
      return absl::OkStatus();
    }
    CARINA_ASSIGN_OR_RETURN(auto m, mounter_.findMount(path));
    if (!m) {
      cond->set_abnormal(true);
      cond->set_message("volume_path " + path + " is not a mount point");
    }
    CARINA_ASSIGN_OR_RETURN(auto s, mounter_.statFs(path));
    auto* b = resp->add_usage();
    b->set_unit(::csi::v1::VolumeUsage::BYTES);
    b->set_total(static_cast<int64_t>(s.total_bytes));
    b->set_available(static_cast<int64_t>(s.available_bytes));
    b->set_used(static_cast<int64_t>(s.used_bytes));
    auto* i = resp->add_usage();
    i->set_unit(::csi::v1::VolumeUsage::INODES);
    i->set_total(static_cast<int64_t>(s.total_inodes));
    i->set_available(static_cast<int64_t>(s.free_inodes));
    i->set_used(static_cast<int64_t>(s.used_inodes));
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> expand(const std::string& id, const std::string& path,
                                  const std::string& staging, uint64_t want, bool block_cap) {
    CARINA_ASSIGN_OR_RETURN(auto vol, volume(id));
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      return absl::NotFoundError("volume_path " + path + " does not exist");
    }
    if (want > vol.size_bytes) {
      CARINA_ASSIGN_OR_RETURN(vol, c_.deps.backend.expandVolume(id, want));
    }
    auto dev_size = mounter_.blockDeviceSize(vol.device);
    const uint64_t size = dev_size.ok() ? *dev_size : vol.size_bytes;
    if (block_cap || !fs::is_directory(path, ec)) {
      return size;  // a raw block volume: nothing to grow above the device
    }
    CARINA_ASSIGN_OR_RETURN(auto m, mounter_.findMount(path));
    if (!m && !staging.empty()) {
      CARINA_ASSIGN_OR_RETURN(m, mounter_.findMount(staging));
    }
    if (!m) {
      return absl::FailedPreconditionError("volume " + id + " is not mounted at " + path);
    }
    std::vector<std::string> argv;
    if (m->fs_type == "xfs") {
      argv = {"xfs_growfs", m->path};
    } else if (m->fs_type == "ext4" || m->fs_type == "ext3" || m->fs_type == "ext2") {
      argv = {"resize2fs", vol.device};
    } else {
      return absl::FailedPreconditionError("cannot grow a " + m->fs_type + " filesystem");
    }
    CARINA_ASSIGN_OR_RETURN(auto r, runner_.run(argv, timeout_));
    if (!r.ok()) {
      const std::string all = r.stderr_text + r.stdout_text;
      if (argv[0] == "resize2fs" && (all.find("Permission denied") != std::string::npos ||
                                     all.find("Operation not permitted") != std::string::npos)) {
        return absl::FailedPreconditionError(
            "online ext4 growth of " + vol.device + " at " + m->path +
            " was refused by the kernel (EXT4_IOC_RESIZE_FS needs CAP_SYS_RESOURCE, which this "
            "agent lacks); the device is already " +
            std::to_string(size) +
            " bytes: grow the filesystem offline or give the agent CAP_SYS_RESOURCE (" +
            commandError(argv, r) + ")");
      }
      return absl::InternalError("growing the filesystem of volume " + id + ": " +
                                 commandError(argv, r));
    }
    CARINA_LOG_INFO(c_.logger, "filesystem grown",
                    {{"volume", id}, {"fs", m->fs_type}, {"bytes", size}});
    return size;
  }

private:
  absl::Status requireDevice(const storage::Volume& vol) {
    if (!mounter_.isBlockDevice(vol.device)) {
      return absl::NotFoundError("device " + vol.device + " of volume " + vol.id +
                                 " does not exist");
    }
    return absl::OkStatus();
  }

  static absl::Status ensureDir(const std::string& dir) {
    std::error_code ec;
    if (fs::is_directory(dir, ec)) {
      return absl::OkStatus();
    }
    if (fs::exists(dir, ec)) {
      return absl::FailedPreconditionError(dir + " exists and is not a directory");
    }
    fs::create_directory(dir, ec);
    if (ec) {
      return absl::FailedPreconditionError("creating " + dir + ": " + ec.message());
    }
    return absl::OkStatus();
  }

  static absl::Status ensureFile(const std::string& file, bool& created) {
    std::error_code ec;
    created = false;
    if (fs::is_regular_file(file, ec)) {
      return absl::OkStatus();
    }
    if (fs::exists(file, ec)) {
      return absl::FailedPreconditionError(file + " exists and is not a regular file");
    }
    const int fd = ::open(file.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
      const int err = errno;
      return errnoStatus(absl::StatusCode::kFailedPrecondition, "creating " + file, err);
    }
    ::close(fd);
    created = true;
    return absl::OkStatus();
  }

  /** true when the device carries no signature at all; error when it carries something other
   *  than a @p fs_type filesystem (never reformatted). */
  absl::StatusOr<bool> probeBlank(const std::string& device, const std::string& fs_type) {
    CARINA_ASSIGN_OR_RETURN(DeviceContent content, probeDeviceContent(runner_, device, timeout_));
    if (content.blank()) {
      return true;
    }
    if (content.type == fs_type && content.pttype.empty()) {
      return false;  // our filesystem from an earlier stage: mount it as it is
    }
    return absl::FailedPreconditionError("device " + device + " already carries " +
                                         content.describe() + ", expected blank or " + fs_type +
                                         "; it is never reformatted");
  }

  absl::Status refuseIfPublished(const std::string& device, std::vector<std::string> own,
                                 const std::string& id) {
    CARINA_ASSIGN_OR_RETURN(auto mounts, mounter_.mountsOfDevice(device));
    for (const auto& m : mounts) {
      if (std::find(own.begin(), own.end(), m.path) == own.end()) {
        return absl::FailedPreconditionError("volume " + id + " is still published at " + m.path +
                                             " (call NodeUnpublishVolume first)");
      }
    }
    return absl::OkStatus();
  }

  ServiceContext& c_;
  os::Mounter& mounter_;
  os::CommandRunner& runner_;
  std::chrono::milliseconds timeout_;
};

class NodeService final : public ::csi::v1::Node::CallbackService {
public:
  explicit NodeService(ServiceContextPtr c) : c_(std::move(c)) {}

  grpc::ServerUnaryReactor* NodeStageVolume(grpc::CallbackServerContext* ctx,
                                            const ::csi::v1::NodeStageVolumeRequest* req,
                                            ::csi::v1::NodeStageVolumeResponse* /*resp*/) override {
    return dispatch(*c_, ctx, "NodeStageVolume", req->volume_id(), stage(req, c_->timeoutFor(ctx)));
  }
  grpc::ServerUnaryReactor* NodeUnstageVolume(
      grpc::CallbackServerContext* ctx, const ::csi::v1::NodeUnstageVolumeRequest* req,
      ::csi::v1::NodeUnstageVolumeResponse* /*resp*/) override {
    return dispatch(*c_, ctx, "NodeUnstageVolume", req->volume_id(),
                    unstage(req, c_->timeoutFor(ctx)));
  }
  grpc::ServerUnaryReactor* NodePublishVolume(
      grpc::CallbackServerContext* ctx, const ::csi::v1::NodePublishVolumeRequest* req,
      ::csi::v1::NodePublishVolumeResponse* /*resp*/) override {
    return dispatch(*c_, ctx, "NodePublishVolume", req->volume_id(),
                    publish(req, c_->timeoutFor(ctx)));
  }
  grpc::ServerUnaryReactor* NodeUnpublishVolume(
      grpc::CallbackServerContext* ctx, const ::csi::v1::NodeUnpublishVolumeRequest* req,
      ::csi::v1::NodeUnpublishVolumeResponse* /*resp*/) override {
    return dispatch(*c_, ctx, "NodeUnpublishVolume", req->volume_id(),
                    unpublish(req, c_->timeoutFor(ctx)));
  }
  grpc::ServerUnaryReactor* NodeGetVolumeStats(
      grpc::CallbackServerContext* ctx, const ::csi::v1::NodeGetVolumeStatsRequest* req,
      ::csi::v1::NodeGetVolumeStatsResponse* resp) override {
    return dispatch(*c_, ctx, "NodeGetVolumeStats", req->volume_id(),
                    stats(req, resp, c_->timeoutFor(ctx)));
  }
  grpc::ServerUnaryReactor* NodeExpandVolume(grpc::CallbackServerContext* ctx,
                                             const ::csi::v1::NodeExpandVolumeRequest* req,
                                             ::csi::v1::NodeExpandVolumeResponse* resp) override {
    return dispatch(*c_, ctx, "NodeExpandVolume", req->volume_id(),
                    observeExpand(*c_, req->volume_id(), expand(req, resp, c_->timeoutFor(ctx))));
  }
  grpc::ServerUnaryReactor* NodeGetCapabilities(
      grpc::CallbackServerContext* ctx, const ::csi::v1::NodeGetCapabilitiesRequest* /*req*/,
      ::csi::v1::NodeGetCapabilitiesResponse* resp) override {
    for (auto t :
         {NodeServiceCapability::RPC::STAGE_UNSTAGE_VOLUME,
          NodeServiceCapability::RPC::GET_VOLUME_STATS, NodeServiceCapability::RPC::EXPAND_VOLUME,
          NodeServiceCapability::RPC::VOLUME_CONDITION,
          NodeServiceCapability::RPC::SINGLE_NODE_MULTI_WRITER}) {
      resp->add_capabilities()->mutable_rpc()->set_type(t);
    }
    return finishNow(*c_, ctx, "NodeGetCapabilities", absl::OkStatus());
  }
  grpc::ServerUnaryReactor* NodeGetInfo(grpc::CallbackServerContext* ctx,
                                        const ::csi::v1::NodeGetInfoRequest* /*req*/,
                                        ::csi::v1::NodeGetInfoResponse* resp) override {
    resp->set_node_id(c_->options().node_name);
    resp->set_max_volumes_per_node(c_->options().max_volumes_per_node);
    (*resp->mutable_accessible_topology()->mutable_segments())[std::string(kTopologyKey)] =
        c_->options().node_name;
    return finishNow(*c_, ctx, "NodeGetInfo", absl::OkStatus());
  }

private:
  const std::string& kubeletDir() const { return c_->options().kubelet_dir; }

  /** Idempotent: already staged at the path with the same device and fs → OK; something else
   *  there → ALREADY_EXISTS. Formats only a blank device. */
  Task<absl::Status> stage(const ::csi::v1::NodeStageVolumeRequest* req,
                           std::chrono::milliseconds timeout) {
    if (req->volume_id().empty()) {
      co_return absl::InvalidArgumentError("volume_id is required");
    }
    if (auto st = checkPath(req->staging_target_path(), kubeletDir(), "staging_target_path");
        !st.ok()) {
      co_return st;
    }
    if (!req->has_volume_capability()) {
      co_return absl::InvalidArgumentError("volume_capability is required");
    }
    auto cap = checkCapability(req->volume_capability(), absl::StatusCode::kFailedPrecondition);
    if (!cap.ok()) {
      co_return cap.status();
    }
    std::string fs_type;
    if (!cap->block) {
      fs_type = cap->fs_type;
      if (fs_type.empty()) {
        auto it = req->volume_context().find(std::string(kCtxFsType));
        fs_type = it != req->volume_context().end() ? it->second : std::string(kDefaultFsType);
      }
      if (fs_type != "ext4" && fs_type != "xfs") {
        co_return absl::FailedPreconditionError("fs type \"" + fs_type + "\" is not supported");
      }
    }
    const std::string id = req->volume_id();
    auto guard = c_->locks.tryLock(id);
    if (!guard) {
      co_return busy(id);
    }
    NodeOps ops(*c_, timeout);
    const std::string staging = req->staging_target_path();
    const Capability c = *cap;
    auto work = [&] {
      return ops.stage(id, staging, c, fs_type);
    };  // named: see agent/core/blocking.h
    co_return co_await runBlocking(c_->deps.blocking, work);
  }

  /** Idempotent: nothing staged at the path → OK (NOT_FOUND when the volume is unknown too). */
  Task<absl::Status> unstage(const ::csi::v1::NodeUnstageVolumeRequest* req,
                             std::chrono::milliseconds timeout) {
    if (req->volume_id().empty()) {
      co_return absl::InvalidArgumentError("volume_id is required");
    }
    if (auto st = checkPath(req->staging_target_path(), kubeletDir(), "staging_target_path");
        !st.ok()) {
      co_return st;
    }
    const std::string id = req->volume_id();
    auto guard = c_->locks.tryLock(id);
    if (!guard) {
      co_return busy(id);
    }
    NodeOps ops(*c_, timeout);
    const std::string staging = req->staging_target_path();
    auto work = [&] { return ops.unstage(id, staging); };  // named: see agent/core/blocking.h
    co_return co_await runBlocking(c_->deps.blocking, work);
  }

  /** Idempotent: already published at target_path with the same device and readonly → OK;
   *  different → ALREADY_EXISTS. Not staged → FAILED_PRECONDITION. */
  Task<absl::Status> publish(const ::csi::v1::NodePublishVolumeRequest* req,
                             std::chrono::milliseconds timeout) {
    if (req->volume_id().empty()) {
      co_return absl::InvalidArgumentError("volume_id is required");
    }
    if (auto st = checkPath(req->target_path(), kubeletDir(), "target_path"); !st.ok()) {
      co_return st;
    }
    if (!req->has_volume_capability()) {
      co_return absl::InvalidArgumentError("volume_capability is required");
    }
    if (req->staging_target_path().empty()) {
      // STAGE_UNSTAGE_VOLUME is advertised: the spec's table wants FAILED_PRECONDITION.
      co_return absl::FailedPreconditionError(
          "staging_target_path is required (STAGE_UNSTAGE_VOLUME is advertised)");
    }
    if (auto st = checkPath(req->staging_target_path(), kubeletDir(), "staging_target_path");
        !st.ok()) {
      co_return st;
    }
    if (req->staging_target_path() == req->target_path()) {
      co_return absl::InvalidArgumentError("target_path equals staging_target_path");
    }
    auto cap = checkCapability(req->volume_capability(), absl::StatusCode::kFailedPrecondition);
    if (!cap.ok()) {
      co_return cap.status();
    }
    const std::string id = req->volume_id();
    auto guard = c_->locks.tryLock(id);
    if (!guard) {
      co_return busy(id);
    }
    NodeOps ops(*c_, timeout);
    const std::string staging = req->staging_target_path();
    const std::string target = req->target_path();
    const Capability c = *cap;
    const bool readonly = req->readonly();
    auto work = [&] {
      return ops.publish(id, staging, target, c, readonly);
    };  // named: see agent/core/blocking.h
    co_return co_await runBlocking(c_->deps.blocking, work);
  }

  /** Idempotent: nothing at target_path → OK (NOT_FOUND only when the volume is unknown too).
   *  Removes the directory or file we created. */
  Task<absl::Status> unpublish(const ::csi::v1::NodeUnpublishVolumeRequest* req,
                               std::chrono::milliseconds timeout) {
    if (req->volume_id().empty()) {
      co_return absl::InvalidArgumentError("volume_id is required");
    }
    if (auto st = checkPath(req->target_path(), kubeletDir(), "target_path"); !st.ok()) {
      co_return st;
    }
    const std::string id = req->volume_id();
    auto guard = c_->locks.tryLock(id);
    if (!guard) {
      co_return busy(id);
    }
    NodeOps ops(*c_, timeout);
    const std::string target = req->target_path();
    auto work = [&] { return ops.unpublish(id, target); };  // named: see agent/core/blocking.h
    co_return co_await runBlocking(c_->deps.blocking, work);
  }

  /** Read-only: bytes and inodes (filesystem) or the size (block), and the volume condition. */
  Task<absl::Status> stats(const ::csi::v1::NodeGetVolumeStatsRequest* req,
                           ::csi::v1::NodeGetVolumeStatsResponse* resp,
                           std::chrono::milliseconds timeout) {
    if (req->volume_id().empty()) {
      co_return absl::InvalidArgumentError("volume_id is required");
    }
    if (auto st = checkPath(req->volume_path(), kubeletDir(), "volume_path"); !st.ok()) {
      co_return st;
    }
    NodeOps ops(*c_, timeout);
    const std::string id = req->volume_id();
    const std::string path = req->volume_path();
    auto work = [&] { return ops.stats(id, path, resp); };  // named: see agent/core/blocking.h
    co_return co_await runBlocking(c_->deps.blocking, work);
  }

  /** Grows the device if still smaller, then the filesystem (xfs_growfs / resize2fs). Already
   *  large enough → OK. Online ext4 growth refused by the kernel → FAILED_PRECONDITION. */
  Task<absl::Status> expand(const ::csi::v1::NodeExpandVolumeRequest* req,
                            ::csi::v1::NodeExpandVolumeResponse* resp,
                            std::chrono::milliseconds timeout) {
    if (req->volume_id().empty()) {
      co_return absl::InvalidArgumentError("volume_id is required");
    }
    if (auto st = checkPath(req->volume_path(), kubeletDir(), "volume_path"); !st.ok()) {
      co_return st;
    }
    if (!req->staging_target_path().empty()) {
      if (auto st = checkPath(req->staging_target_path(), kubeletDir(), "staging_target_path");
          !st.ok()) {
        co_return st;
      }
    }
    bool block = false;
    if (req->has_volume_capability()) {
      auto cap = checkCapability(req->volume_capability(), absl::StatusCode::kInvalidArgument);
      if (!cap.ok()) {
        co_return cap.status();
      }
      block = cap->block;
    }
    const auto& cr = req->capacity_range();
    if (cr.required_bytes() < 0 || cr.limit_bytes() < 0) {
      co_return absl::InvalidArgumentError("capacity_range: bytes must not be negative");
    }
    if (cr.limit_bytes() > 0 && cr.required_bytes() > cr.limit_bytes()) {
      co_return absl::OutOfRangeError("capacity_range: required_bytes exceeds limit_bytes");
    }
    uint64_t want = 0;
    if (cr.required_bytes() > 0) {
      auto size = provisionSize(cr.required_bytes(), cr.limit_bytes(), "");
      if (!size.ok()) {
        co_return size.status();
      }
      want = *size;
    }
    const std::string id = req->volume_id();
    auto guard = c_->locks.tryLock(id);
    if (!guard) {
      co_return busy(id);
    }
    NodeOps ops(*c_, timeout);
    const std::string path = req->volume_path();
    const std::string staging = req->staging_target_path();
    auto work = [&] {
      return ops.expand(id, path, staging, want, block);
    };  // named: see agent/core/blocking.h
    auto size = co_await runBlocking(c_->deps.blocking, work);
    if (!size.ok()) {
      co_return size.status();
    }
    resp->set_capacity_bytes(static_cast<int64_t>(*size));
    co_return absl::OkStatus();
  }

  ServiceContextPtr c_;
};

}  // namespace

std::unique_ptr<grpc::Service> makeNodeService(ServiceContextPtr ctx) {
  return std::make_unique<NodeService>(std::move(ctx));
}

}  // namespace carina::csi
