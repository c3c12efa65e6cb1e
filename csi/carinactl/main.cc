// carinactl: the human CLI for a local carina-agent. CSI gRPC over the agent's unix socket for
// volumes, the agent's HTTP listener (GET /debug/inventory) for disks. See docs/carinactl.md.
//
// Exit codes: 0 success, 1 the agent (or the system) returned an error (printed with its gRPC code
// name), 2 usage error.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "agent/core/mountinfo.h"
#include "agent/core/status.h"
#include "agent/storage/volume_backend.h"
#include "csi.grpc.pb.h"
#include "csi/carinactl/cli.h"
#include "csi/carinactl/http_get.h"
#include "csi/carinactl/render.h"
#include "csi/carinactl/score.h"

namespace {

namespace fs = std::filesystem;
namespace ctl = carina::ctl;
using csi::v1::Controller;
using csi::v1::Identity;
using csi::v1::Node;

class Client {
public:
  explicit Client(const ctl::Command& cmd)
      : cmd_(cmd),
        channel_(grpc::CreateChannel(cmd.global.endpoint, grpc::InsecureChannelCredentials())),
        identity_(Identity::NewStub(channel_)),
        controller_(Controller::NewStub(channel_)),
        node_(Node::NewStub(channel_)) {}

  absl::StatusOr<std::string> run();

private:
  void prepare(grpc::ClientContext& ctx) const {
    ctx.set_deadline(std::chrono::system_clock::now() + cmd_.global.timeout);
  }

  absl::Status convert(const grpc::Status& s, const std::string& rpc) const {
    if (s.ok()) return absl::OkStatus();
    std::string msg = rpc + ": " + s.error_message();
    if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      msg += " (is carina-agent listening on " + cmd_.global.endpoint + "?)";
    }
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), msg);
  }

  std::string volumeId() const { return carina::storage::volumeIdForName(cmd_.name); }
  std::string staging() const { return ctl::stagingPath(cmd_.global.kubelet_dir, volumeId()); }

  csi::v1::VolumeCapability capability(const std::map<std::string, std::string>& context) const {
    csi::v1::VolumeCapability cap;
    if (cmd_.block) {
      cap.mutable_block();
    } else {
      std::string fs_type = cmd_.fs_type;
      if (fs_type.empty()) fs_type = ctl::contextValue(context, {"fsType", "fstype"});
      cap.mutable_mount()->set_fs_type(fs_type);
    }
    cap.mutable_access_mode()->set_mode(csi::v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
    return cap;
  }

  static ctl::VolumeView view(const csi::v1::Volume& v) {
    ctl::VolumeView out;
    out.volume_id = v.volume_id();
    out.capacity_bytes = v.capacity_bytes() > 0 ? static_cast<uint64_t>(v.capacity_bytes()) : 0;
    for (const auto& [k, val] : v.volume_context()) out.context[k] = val;
    for (const auto& t : v.accessible_topology()) {
      std::map<std::string, std::string> segs(t.segments().begin(), t.segments().end());
      out.topology.push_back(std::move(segs));
    }
    out.name = ctl::contextValue(out.context, {"name", "volumeName"});
    return out;
  }

  absl::StatusOr<std::vector<ctl::VolumeView>> listVolumes();
  /** The volume of cmd_.name; NotFound when the agent does not list it. */
  absl::StatusOr<ctl::VolumeView> findVolume();

  absl::StatusOr<std::string> probe();
  absl::StatusOr<std::string> disks();
  absl::StatusOr<std::string> requests();
  absl::StatusOr<std::string> score();
  absl::StatusOr<std::string> volumes();
  absl::StatusOr<std::string> create();
  absl::StatusOr<std::string> expand();
  absl::StatusOr<std::string> remove();
  absl::StatusOr<std::string> mount();
  absl::StatusOr<std::string> umount();
  absl::StatusOr<std::string> stats();

  const ctl::Command& cmd_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Identity::Stub> identity_;
  std::unique_ptr<Controller::Stub> controller_;
  std::unique_ptr<Node::Stub> node_;
};

absl::StatusOr<std::string> Client::run() {
  switch (cmd_.kind) {
    case ctl::CommandKind::Probe:
      return probe();
    case ctl::CommandKind::Disks:
      return disks();
    case ctl::CommandKind::Volumes:
      return volumes();
    case ctl::CommandKind::Create:
      return create();
    case ctl::CommandKind::Expand:
      return expand();
    case ctl::CommandKind::Delete:
      return remove();
    case ctl::CommandKind::Mount:
      return mount();
    case ctl::CommandKind::Umount:
      return umount();
    case ctl::CommandKind::Stats:
      return stats();
    case ctl::CommandKind::Score:
      return score();
    case ctl::CommandKind::Requests:
      return requests();
    case ctl::CommandKind::Help:
      break;
  }
  return ctl::usage();
}

absl::StatusOr<std::string> Client::probe() {
  ctl::ProbeView out;
  {
    grpc::ClientContext ctx;
    prepare(ctx);
    csi::v1::GetPluginInfoResponse resp;
    CARINA_RETURN_IF_ERROR(convert(
        identity_->GetPluginInfo(&ctx, csi::v1::GetPluginInfoRequest(), &resp), "GetPluginInfo"));
    out.driver = resp.name();
    out.version = resp.vendor_version();
  }
  {
    grpc::ClientContext ctx;
    prepare(ctx);
    csi::v1::ProbeResponse resp;
    CARINA_RETURN_IF_ERROR(
        convert(identity_->Probe(&ctx, csi::v1::ProbeRequest(), &resp), "Probe"));
    if (resp.has_ready()) out.ready = resp.ready().value();
  }
  {
    grpc::ClientContext ctx;
    prepare(ctx);
    csi::v1::NodeGetInfoResponse resp;
    if (node_->NodeGetInfo(&ctx, csi::v1::NodeGetInfoRequest(), &resp).ok()) {
      out.node_id = resp.node_id();
    }
  }
  {
    grpc::ClientContext ctx;
    prepare(ctx);
    csi::v1::ControllerGetCapabilitiesResponse resp;
    if (controller_->ControllerGetCapabilities(&ctx, {}, &resp).ok()) {
      for (const auto& c : resp.capabilities()) {
        out.capabilities.push_back(
            csi::v1::ControllerServiceCapability::RPC::Type_Name(c.rpc().type()));
      }
    }
  }
  {
    grpc::ClientContext ctx;
    prepare(ctx);
    csi::v1::NodeGetCapabilitiesResponse resp;
    if (node_->NodeGetCapabilities(&ctx, {}, &resp).ok()) {
      for (const auto& c : resp.capabilities()) {
        out.capabilities.push_back("NODE_" +
                                   csi::v1::NodeServiceCapability::RPC::Type_Name(c.rpc().type()));
      }
    }
  }
  if (out.ready.has_value() && !*out.ready) {
    return absl::UnavailableError("Probe: " + out.driver + " is not ready yet");
  }
  return ctl::renderProbe(out, cmd_.global.json);
}

absl::StatusOr<std::string> Client::disks() {
  CARINA_ASSIGN_OR_RETURN(ctl::HttpUrl url, ctl::parseHttpUrl(cmd_.global.http));
  CARINA_ASSIGN_OR_RETURN(std::string body,
                          ctl::httpGet(url, "/debug/inventory", cmd_.global.timeout));
  CARINA_ASSIGN_OR_RETURN(ctl::Inventory inv, ctl::parseInventoryJson(body));
  return ctl::renderDisks(inv, cmd_.global.json);
}

absl::StatusOr<std::string> Client::requests() {
  CARINA_ASSIGN_OR_RETURN(ctl::HttpUrl url, ctl::parseHttpUrl(cmd_.global.http));
  CARINA_ASSIGN_OR_RETURN(std::string body,
                          ctl::httpGet(url, "/debug/extender", cmd_.global.timeout));
  CARINA_ASSIGN_OR_RETURN(ctl::RequestsView view, ctl::parseRequestsJson(body));
  return ctl::renderRequests(view, cmd_.global.json);
}

absl::StatusOr<std::string> Client::score() {
  std::string text;
  if (cmd_.pod_file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(cmd_.pod_file, std::ios::binary);
    if (!in) {
      std::error_code ec(errno, std::generic_category());
      return absl::NotFoundError("cannot read " + cmd_.pod_file + ": " + ec.message());
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  absl::StatusOr<std::string> body = ctl::scoreRequestFromText(text);
  if (!body.ok()) {
    return absl::InvalidArgumentError(
        (cmd_.pod_file == "-" ? std::string("stdin") : cmd_.pod_file) + ": " +
        std::string(body.status().message()));
  }
  CARINA_ASSIGN_OR_RETURN(ctl::HttpUrl url, ctl::parseHttpUrl(cmd_.global.http));
  CARINA_ASSIGN_OR_RETURN(std::string reply,
                          ctl::httpPost(url, std::string(ctl::kScoreTarget), *body,
                                        "application/json", cmd_.global.timeout));
  CARINA_ASSIGN_OR_RETURN(ctl::ScoreReport report, ctl::parseScoreReply(reply));
  if (!report.error.empty()) {
    return absl::FailedPreconditionError("pod " + report.pod +
                                         " cannot be judged: " + report.error);
  }
  return ctl::renderScore(report, cmd_.global.json);
}

absl::StatusOr<std::vector<ctl::VolumeView>> Client::listVolumes() {
  std::vector<ctl::VolumeView> out;
  std::string token;
  for (int page = 0; page < 10000; ++page) {
    grpc::ClientContext ctx;
    prepare(ctx);
    csi::v1::ListVolumesRequest req;
    req.set_starting_token(token);
    csi::v1::ListVolumesResponse resp;
    CARINA_RETURN_IF_ERROR(convert(controller_->ListVolumes(&ctx, req, &resp), "ListVolumes"));
    for (const auto& e : resp.entries()) out.push_back(view(e.volume()));
    token = resp.next_token();
    if (token.empty()) break;
  }
  return out;
}

absl::StatusOr<ctl::VolumeView> Client::findVolume() {
  CARINA_ASSIGN_OR_RETURN(std::vector<ctl::VolumeView> all, listVolumes());
  for (ctl::VolumeView& v : all) {
    if (v.volume_id == volumeId()) {
      if (v.name.empty()) v.name = cmd_.name;
      return v;
    }
  }
  return absl::NotFoundError("volume " + cmd_.name + " (" + volumeId() + ") does not exist");
}

absl::StatusOr<std::string> Client::volumes() {
  CARINA_ASSIGN_OR_RETURN(std::vector<ctl::VolumeView> all, listVolumes());
  return ctl::renderVolumes(all, cmd_.global.json);
}

absl::StatusOr<std::string> Client::create() {
  grpc::ClientContext ctx;
  prepare(ctx);
  csi::v1::CreateVolumeRequest req;
  req.set_name(cmd_.name);
  req.mutable_capacity_range()->set_required_bytes(static_cast<int64_t>(cmd_.size_bytes));
  *req.add_volume_capabilities() = capability({});
  if (!cmd_.group.empty())
    (*req.mutable_parameters())["carina.storage.io/disk-group-name"] = cmd_.group;
  if (cmd_.exclusive) (*req.mutable_parameters())["carina.storage.io/exclusivity-disk"] = "true";
  csi::v1::CreateVolumeResponse resp;
  CARINA_RETURN_IF_ERROR(convert(controller_->CreateVolume(&ctx, req, &resp), "CreateVolume"));
  ctl::VolumeView v = view(resp.volume());
  v.name = cmd_.name;
  return ctl::renderVolume(v, cmd_.global.json);
}

bool isMountPoint(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const carina::core::MountEntry& e : carina::core::parseMountInfo(text)) {
    if (e.mount_point == path) return true;
  }
  return false;
}

absl::StatusOr<std::string> Client::expand() {
  csi::v1::ControllerExpandVolumeResponse resp;
  {
    grpc::ClientContext ctx;
    prepare(ctx);
    csi::v1::ControllerExpandVolumeRequest req;
    req.set_volume_id(volumeId());
    req.mutable_capacity_range()->set_required_bytes(static_cast<int64_t>(cmd_.size_bytes));
    CARINA_RETURN_IF_ERROR(
        convert(controller_->ControllerExpandVolume(&ctx, req, &resp), "ControllerExpandVolume"));
  }
  // The volume's context (group, device) for the output; best effort.
  absl::StatusOr<ctl::VolumeView> listed = findVolume();
  ctl::VolumeView v = listed.ok() ? *listed : ctl::VolumeView{};
  v.volume_id = volumeId();
  v.name = cmd_.name;
  v.capacity_bytes = resp.capacity_bytes() > 0 ? static_cast<uint64_t>(resp.capacity_bytes()) : 0;
  v.node_expansion_required = resp.node_expansion_required();
  std::string note;
  if (resp.node_expansion_required()) {
    // As kubelet does: grow the filesystem where the volume is mounted (staged), online.
    std::string stage = staging();
    std::string path = !cmd_.path.empty() ? cmd_.path : stage;
    if (isMountPoint(path)) {
      grpc::ClientContext ctx;
      prepare(ctx);
      csi::v1::NodeExpandVolumeRequest req;
      req.set_volume_id(volumeId());
      req.set_volume_path(path);
      if (isMountPoint(stage)) req.set_staging_target_path(stage);
      req.mutable_capacity_range()->set_required_bytes(static_cast<int64_t>(cmd_.size_bytes));
      csi::v1::NodeExpandVolumeResponse nresp;
      CARINA_RETURN_IF_ERROR(
          convert(node_->NodeExpandVolume(&ctx, req, &nresp), "NodeExpandVolume"));
      if (nresp.capacity_bytes() > 0)
        v.capacity_bytes = static_cast<uint64_t>(nresp.capacity_bytes());
      v.node_expansion_required = false;
      note = "filesystem grown online at " + path + "\n";
    } else {
      note = "volume is not mounted by carinactl: the filesystem grows at its next mount\n";
    }
  }
  if (cmd_.global.json) return ctl::renderVolume(v, true);
  return ctl::renderVolume(v, false) + note;
}

absl::StatusOr<std::string> Client::remove() {
  grpc::ClientContext ctx;
  prepare(ctx);
  csi::v1::DeleteVolumeRequest req;
  req.set_volume_id(volumeId());
  csi::v1::DeleteVolumeResponse resp;
  CARINA_RETURN_IF_ERROR(convert(controller_->DeleteVolume(&ctx, req, &resp), "DeleteVolume"));
  return ctl::renderAction({"deleted",
                            {{"name", cmd_.name}, {"volumeId", volumeId()}},
                            "deleted volume " + cmd_.name + " (" + volumeId() + ")"},
                           cmd_.global.json);
}

absl::Status makeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return carina::errnoStatus("creating directory " + dir, ec.value());
  return absl::OkStatus();
}

// Removes @p dir and its empty parents up to (not including) @p stop. Best effort.
void removeEmptyDirs(fs::path dir, const fs::path& stop) {
  std::error_code ec;
  while (!dir.empty() && dir != stop && dir.string().size() > stop.string().size()) {
    if (!fs::is_directory(dir, ec) || !fs::is_empty(dir, ec) || !fs::remove(dir, ec)) return;
    dir = dir.parent_path();
  }
}

absl::StatusOr<std::string> Client::mount() {
  CARINA_ASSIGN_OR_RETURN(ctl::VolumeView vol, findVolume());
  const csi::v1::VolumeCapability cap = capability(vol.context);
  const std::string stage = staging();
  CARINA_RETURN_IF_ERROR(makeDirs(stage));  // the CO creates the staging directory
  {
    grpc::ClientContext ctx;
    prepare(ctx);
    csi::v1::NodeStageVolumeRequest req;
    req.set_volume_id(vol.volume_id);
    req.set_staging_target_path(stage);
    *req.mutable_volume_capability() = cap;
    for (const auto& [k, v] : vol.context) (*req.mutable_volume_context())[k] = v;
    csi::v1::NodeStageVolumeResponse resp;
    absl::Status st = convert(node_->NodeStageVolume(&ctx, req, &resp), "NodeStageVolume");
    if (!st.ok()) {
      removeEmptyDirs(stage, cmd_.global.kubelet_dir);
      return st;
    }
  }
  // The CO guarantees the parent of the target path; the plugin creates the target itself.
  CARINA_RETURN_IF_ERROR(makeDirs(fs::path(cmd_.path).parent_path().string()));
  {
    grpc::ClientContext ctx;
    prepare(ctx);
    csi::v1::NodePublishVolumeRequest req;
    req.set_volume_id(vol.volume_id);
    req.set_staging_target_path(stage);
    req.set_target_path(cmd_.path);
    req.set_readonly(cmd_.readonly);
    *req.mutable_volume_capability() = cap;
    for (const auto& [k, v] : vol.context) (*req.mutable_volume_context())[k] = v;
    csi::v1::NodePublishVolumeResponse resp;
    absl::Status st = convert(node_->NodePublishVolume(&ctx, req, &resp), "NodePublishVolume");
    if (!st.ok()) {
      // Undo the staging so that a failed mount leaves nothing behind.
      grpc::ClientContext uctx;
      prepare(uctx);
      csi::v1::NodeUnstageVolumeRequest ureq;
      ureq.set_volume_id(vol.volume_id);
      ureq.set_staging_target_path(stage);
      csi::v1::NodeUnstageVolumeResponse uresp;
      if (node_->NodeUnstageVolume(&uctx, ureq, &uresp).ok()) {
        removeEmptyDirs(stage, cmd_.global.kubelet_dir);
      }
      return st;
    }
  }
  return ctl::renderAction({"mounted",
                            {{"name", cmd_.name},
                             {"volumeId", vol.volume_id},
                             {"targetPath", cmd_.path},
                             {"stagingPath", stage}},
                            "mounted volume " + cmd_.name + " (" + vol.volume_id + ") at " +
                                cmd_.path + " (staged at " + stage + ")"},
                           cmd_.global.json);
}

absl::StatusOr<std::string> Client::umount() {
  const std::string stage = staging();
  {
    grpc::ClientContext ctx;
    prepare(ctx);
    csi::v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id(volumeId());
    req.set_target_path(cmd_.path);
    csi::v1::NodeUnpublishVolumeResponse resp;
    CARINA_RETURN_IF_ERROR(
        convert(node_->NodeUnpublishVolume(&ctx, req, &resp), "NodeUnpublishVolume"));
  }
  {
    grpc::ClientContext ctx;
    prepare(ctx);
    csi::v1::NodeUnstageVolumeRequest req;
    req.set_volume_id(volumeId());
    req.set_staging_target_path(stage);
    csi::v1::NodeUnstageVolumeResponse resp;
    CARINA_RETURN_IF_ERROR(
        convert(node_->NodeUnstageVolume(&ctx, req, &resp), "NodeUnstageVolume"));
  }
  removeEmptyDirs(stage, cmd_.global.kubelet_dir);
  return ctl::renderAction({"unmounted",
                            {{"name", cmd_.name},
                             {"volumeId", volumeId()},
                             {"targetPath", cmd_.path},
                             {"stagingPath", stage}},
                            "unmounted volume " + cmd_.name + " (" + volumeId() + ") from " +
                                cmd_.path + " and unstaged " + stage},
                           cmd_.global.json);
}

absl::StatusOr<std::string> Client::stats() {
  const std::string stage = staging();
  grpc::ClientContext ctx;
  prepare(ctx);
  csi::v1::NodeGetVolumeStatsRequest req;
  req.set_volume_id(volumeId());
  req.set_volume_path(cmd_.path.empty() ? stage : cmd_.path);
  if (!cmd_.path.empty() && isMountPoint(stage)) req.set_staging_target_path(stage);
  csi::v1::NodeGetVolumeStatsResponse resp;
  CARINA_RETURN_IF_ERROR(
      convert(node_->NodeGetVolumeStats(&ctx, req, &resp), "NodeGetVolumeStats"));
  ctl::StatsView out;
  out.volume_id = volumeId();
  out.name = cmd_.name;
  out.path = req.volume_path();
  auto u64 = [](int64_t v) { return v > 0 ? static_cast<uint64_t>(v) : uint64_t{0}; };
  for (const auto& u : resp.usage()) {
    ctl::UsageView uv;
    uv.unit = u.unit() == csi::v1::VolumeUsage::BYTES    ? "bytes"
              : u.unit() == csi::v1::VolumeUsage::INODES ? "inodes"
                                                         : "unknown";
    uv.total = u64(u.total());
    uv.used = u64(u.used());
    uv.available = u64(u.available());
    out.usage.push_back(uv);
  }
  if (resp.has_volume_condition()) {
    out.abnormal = resp.volume_condition().abnormal();
    out.condition_message = resp.volume_condition().message();
  }
  return ctl::renderStats(out, cmd_.global.json);
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  ctl::Environment environment{env("CARINA_ENDPOINT"), env("CARINA_HTTP"),
                               env("CARINA_KUBELET_DIR")};
  absl::StatusOr<ctl::Command> cmd = ctl::parseCommandLine(args, environment);
  if (!cmd.ok()) {
    std::fprintf(stderr,
                 "carinactl: %s\nusage: carinactl [GLOBAL FLAGS] COMMAND [ARGS]  (carinactl --help "
                 "lists the commands)\n",
                 std::string(cmd.status().message()).c_str());
    return 2;
  }
  if (cmd->kind == ctl::CommandKind::Help) {
    std::fputs(ctl::usage().c_str(), stdout);
    return 0;
  }
  absl::StatusOr<std::string> out;
  try {
    Client client(*cmd);
    out = client.run();
  } catch (const std::exception& e) {
    out = absl::InternalError(std::string("unexpected error: ") + e.what());
  }
  if (!out.ok()) {
    std::fputs(ctl::renderError(out.status(), cmd->global.json).c_str(), stderr);
    return 1;
  }
  std::fputs(out->c_str(), stdout);
  return 0;
}
