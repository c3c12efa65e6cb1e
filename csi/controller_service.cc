// CSI Controller: provisioning on this node (external-provisioner runs with --node-deployment,
// so CreateVolume always arrives at the node that will hold the volume).

#include <algorithm>
#include <charconv>

#include "agent/core/blocking.h"
#include "agent/os/mounter.h"
#include "agent/storage/volume_backend.h"
#include "csi.grpc.pb.h"
#include "csi/device_probe.h"
#include "csi/service_internal.h"

namespace carina::csi {
namespace {

using ::csi::v1::ControllerServiceCapability;

class ControllerService final : public ::csi::v1::Controller::CallbackService {
public:
  explicit ControllerService(ServiceContextPtr c) : c_(std::move(c)) {}

  grpc::ServerUnaryReactor* CreateVolume(grpc::CallbackServerContext* ctx,
                                         const ::csi::v1::CreateVolumeRequest* req,
                                         ::csi::v1::CreateVolumeResponse* resp) override {
    return dispatch(*c_, ctx, "CreateVolume", req->name(), observeCreate(req, resp));
  }
  grpc::ServerUnaryReactor* DeleteVolume(grpc::CallbackServerContext* ctx,
                                         const ::csi::v1::DeleteVolumeRequest* req,
                                         ::csi::v1::DeleteVolumeResponse* /*resp*/) override {
    return dispatch(*c_, ctx, "DeleteVolume", req->volume_id(), observeDelete(req));
  }
  grpc::ServerUnaryReactor* ValidateVolumeCapabilities(
      grpc::CallbackServerContext* ctx, const ::csi::v1::ValidateVolumeCapabilitiesRequest* req,
      ::csi::v1::ValidateVolumeCapabilitiesResponse* resp) override {
    return dispatch(*c_, ctx, "ValidateVolumeCapabilities", req->volume_id(),
                    validateCapabilities(req, resp));
  }
  grpc::ServerUnaryReactor* ListVolumes(grpc::CallbackServerContext* ctx,
                                        const ::csi::v1::ListVolumesRequest* req,
                                        ::csi::v1::ListVolumesResponse* resp) override {
    return dispatch(*c_, ctx, "ListVolumes", "", listVolumes(req, resp));
  }
  grpc::ServerUnaryReactor* GetCapacity(grpc::CallbackServerContext* ctx,
                                        const ::csi::v1::GetCapacityRequest* req,
                                        ::csi::v1::GetCapacityResponse* resp) override {
    return dispatch(*c_, ctx, "GetCapacity", "", getCapacity(req, resp));
  }
  grpc::ServerUnaryReactor* ControllerGetCapabilities(
      grpc::CallbackServerContext* ctx, const ::csi::v1::ControllerGetCapabilitiesRequest* /*req*/,
      ::csi::v1::ControllerGetCapabilitiesResponse* resp) override {
    for (auto t : {ControllerServiceCapability::RPC::CREATE_DELETE_VOLUME,
                   ControllerServiceCapability::RPC::EXPAND_VOLUME,
                   ControllerServiceCapability::RPC::LIST_VOLUMES,
                   ControllerServiceCapability::RPC::GET_CAPACITY,
                   ControllerServiceCapability::RPC::SINGLE_NODE_MULTI_WRITER}) {
      resp->add_capabilities()->mutable_rpc()->set_type(t);
    }
    return finishNow(*c_, ctx, "ControllerGetCapabilities", absl::OkStatus());
  }
  grpc::ServerUnaryReactor* ControllerExpandVolume(
      grpc::CallbackServerContext* ctx, const ::csi::v1::ControllerExpandVolumeRequest* req,
      ::csi::v1::ControllerExpandVolumeResponse* resp) override {
    return dispatch(*c_, ctx, "ControllerExpandVolume", req->volume_id(),
                    observeExpand(*c_, req->volume_id(), expandVolume(req, resp)));
  }
  // ControllerPublishVolume / ControllerUnpublishVolume: not advertised (local volumes need no
  // attach); the generated base answers UNIMPLEMENTED.

private:
  Task<absl::Status> observeCreate(const ::csi::v1::CreateVolumeRequest* req,
                                   ::csi::v1::CreateVolumeResponse* resp) {
    Task<absl::Status> inner = createVolume(req, resp);  // named: see agent/core/blocking.h
    absl::Status st = co_await std::move(inner);
    if (VolumeObserver* o = c_->deps.observer; o != nullptr && !isBusy(st)) {
      const std::map<std::string, std::string> params(req->parameters().begin(),
                                                      req->parameters().end());
      if (st.ok()) {
        o->volumeCreated(resp->volume().volume_id(), req->name(), params);
      } else {
        o->createFailed(req->name(), params, st);
      }
    }
    co_return st;
  }

  Task<absl::Status> observeDelete(const ::csi::v1::DeleteVolumeRequest* req) {
    Task<absl::Status> inner = deleteVolume(req);  // named: see agent/core/blocking.h
    absl::Status st = co_await std::move(inner);
    if (VolumeObserver* o = c_->deps.observer; o != nullptr && st.ok()) {
      o->volumeDeleted(req->volume_id());
    }
    co_return st;
  }

  /**
   * Idempotent by name: the same name with compatible arguments returns the same volume (the
   * backend compares group, exclusivity and size range; the device's content is compared with
   * the requested fs type); incompatible → ALREADY_EXISTS.
   * A topology requirement this node cannot serve → RESOURCE_EXHAUSTED (the provisioner then
   * reschedules); unsupported capacity_range → OUT_OF_RANGE.
   */
  Task<absl::Status> createVolume(const ::csi::v1::CreateVolumeRequest* req,
                                  ::csi::v1::CreateVolumeResponse* resp) {
    auto plan = planCreate(*req);
    if (!plan.ok()) {
      co_return plan.status();
    }
    if (!topologyAllows(*req, c_->options().node_name)) {
      co_return absl::ResourceExhaustedError(
          "accessibility_requirements do not include this node (" + std::string(kTopologyKey) +
          "=" + c_->options().node_name + ")");
    }
    const std::string id = storage::volumeIdForName(req->name());
    auto guard = c_->locks.tryLock(id);
    if (!guard) {
      co_return busy(id);
    }
    CARINA_LOG_DEBUG(c_->logger, "CreateVolume",
                     {{"name", req->name()},
                      {"bytes", plan->spec.required_bytes},
                      {"group", plan->spec.group},
                      {"num_secrets", req->secrets_size()}});
    auto& backend = c_->deps.backend;
    auto& runner = c_->deps.runner;
    const storage::VolumeSpec spec = plan->spec;
    const std::string fs_type = plan->fs_type;
    const auto timeout = c_->options().command_timeout;
    auto work = [&]() -> absl::StatusOr<storage::Volume> {
      const bool existed = backend.findVolume(id).has_value();
      auto created = backend.createVolume(spec);  // compares group, exclusivity, size range
      if (!created.ok() || !existed || fs_type.empty()) {
        return created;
      }
      // A repeat for a volume that exists: the fs type is not recorded on disk, but a volume
      // that was formatted (staged) already shows it. Another filesystem, or content a mount
      // request would refuse to format, means the request is not the one that created it.
      // (Block requests are not judged: users may write any content to a block volume.)
      auto content = probeDeviceContent(runner, created->device, timeout);
      if (!content.ok()) {
        return annotate(content.status(), "checking the existing volume's content");
      }
      if (!content->blank() && (content->type != fs_type || !content->pttype.empty())) {
        return absl::AlreadyExistsError("volume " + req->name() + " exists (" + created->id +
                                        ") and holds " + content->describe() +
                                        "; this request asks for " + fs_type);
      }
      return created;
    };  // named: see agent/core/blocking.h
    auto vol = co_await runBlocking(c_->deps.blocking, work);
    if (!vol.ok()) {
      co_return annotate(vol.status(), "creating volume " + req->name());
    }
    if (vol->size_bytes < spec.required_bytes) {
      co_return absl::InternalError("volume " + vol->id + " has " +
                                    std::to_string(vol->size_bytes) + " bytes, less than asked");
    }
    fillVolume(*vol, plan->fs_type, c_->options().node_name, resp->mutable_volume());
    co_return absl::OkStatus();
  }

  /** Idempotent: an unknown volume is OK. A volume still staged or published on this node →
   *  FAILED_PRECONDITION. */
  Task<absl::Status> deleteVolume(const ::csi::v1::DeleteVolumeRequest* req) {
    if (req->volume_id().empty()) {
      co_return absl::InvalidArgumentError("volume_id is required");
    }
    const std::string id = req->volume_id();
    auto guard = c_->locks.tryLock(id);
    if (!guard) {
      co_return busy(id);
    }
    auto& backend = c_->deps.backend;
    auto& mounter = c_->deps.mounter;
    auto work = [&]() -> absl::Status {
      auto vol = backend.findVolume(id);
      if (!vol) {
        return absl::OkStatus();
      }
      auto mounts = mounter.mountsOfDevice(vol->device);
      if (!mounts.ok()) {
        return mounts.status();
      }
      if (!mounts->empty()) {
        return absl::FailedPreconditionError("volume " + id + " is still in use: " + vol->device +
                                             " is mounted at " + mounts->front().path);
      }
      return annotate(backend.deleteVolume(id), "deleting volume " + id);
    };  // named: see agent/core/blocking.h
    co_return co_await runBlocking(c_->deps.blocking, work);
  }

  /** Confirms the capabilities we support; unknown volume → NOT_FOUND. */
  Task<absl::Status> validateCapabilities(const ::csi::v1::ValidateVolumeCapabilitiesRequest* req,
                                          ::csi::v1::ValidateVolumeCapabilitiesResponse* resp) {
    if (req->volume_id().empty()) {
      co_return absl::InvalidArgumentError("volume_id is required");
    }
    if (req->volume_capabilities_size() == 0) {
      co_return absl::InvalidArgumentError("volume_capabilities are required");
    }
    auto& backend = c_->deps.backend;
    const std::string id = req->volume_id();
    auto work = [&] { return backend.findVolume(id); };  // named: see agent/core/blocking.h
    auto vol = co_await runBlocking(c_->deps.blocking, work);
    if (!vol) {
      co_return absl::NotFoundError("volume " + id + " does not exist");
    }
    std::vector<Capability> caps;
    for (const auto& cap : req->volume_capabilities()) {
      auto c = checkCapability(cap, absl::StatusCode::kInvalidArgument);
      if (!c.ok()) {
        resp->set_message(std::string(c.status().message()));
        co_return absl::OkStatus();
      }
      caps.push_back(*c);
    }
    auto params = parseParameters(toStdMap(req->parameters()));
    if (!params.ok()) {
      resp->set_message(std::string(params.status().message()));
      co_return absl::OkStatus();
    }
    if (auto fs = resolveFsType(caps, *params); !fs.ok()) {
      resp->set_message(std::string(fs.status().message()));
      co_return absl::OkStatus();
    }
    auto* confirmed = resp->mutable_confirmed();
    *confirmed->mutable_volume_capabilities() = req->volume_capabilities();
    *confirmed->mutable_volume_context() = req->volume_context();
    *confirmed->mutable_parameters() = req->parameters();
    co_return absl::OkStatus();
  }

  /** Volumes of this node, sorted by id; the token is the index of the next entry. An invalid
   *  token → ABORTED (spec). */
  Task<absl::Status> listVolumes(const ::csi::v1::ListVolumesRequest* req,
                                 ::csi::v1::ListVolumesResponse* resp) {
    if (req->max_entries() < 0) {
      co_return absl::InvalidArgumentError("max_entries must not be negative");
    }
    auto& backend = c_->deps.backend;
    auto work = [&] { return backend.listVolumes(); };  // named: see agent/core/blocking.h
    auto vols = co_await runBlocking(c_->deps.blocking, work);
    std::sort(vols.begin(), vols.end(),
              [](const storage::Volume& a, const storage::Volume& b) { return a.id < b.id; });
    size_t start = 0;
    if (!req->starting_token().empty()) {
      const std::string& t = req->starting_token();
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), start);
      if (ec != std::errc() || p != t.data() + t.size() || start > vols.size()) {
        co_return absl::AbortedError("invalid starting_token \"" + t + "\"");
      }
    }
    size_t end = vols.size();
    if (req->max_entries() > 0) {
      end = std::min(end, start + static_cast<size_t>(req->max_entries()));
    }
    for (size_t i = start; i < end; ++i) {
      fillVolume(vols[i], "", c_->options().node_name, resp->add_entries()->mutable_volume());
    }
    if (end < vols.size()) {
      resp->set_next_token(std::to_string(end));
    }
    co_return absl::OkStatus();
  }

  /** Free bytes of the requested group (exclusive: the empty disks) on this node; 0 for a
   *  topology segment of another node or an unknown group. */
  Task<absl::Status> getCapacity(const ::csi::v1::GetCapacityRequest* req,
                                 ::csi::v1::GetCapacityResponse* resp) {
    for (const auto& cap : req->volume_capabilities()) {
      auto c = checkCapability(cap, absl::StatusCode::kInvalidArgument);
      if (!c.ok()) {
        co_return c.status();
      }
    }
    auto params = parseParameters(toStdMap(req->parameters()));
    if (!params.ok()) {
      co_return params.status();
    }
    if (req->has_accessible_topology()) {
      const auto& seg = req->accessible_topology().segments();
      auto it = seg.find(std::string(kTopologyKey));
      if (it == seg.end() || it->second != c_->options().node_name) {
        resp->set_available_capacity(0);
        co_return absl::OkStatus();
      }
    }
    auto& backend = c_->deps.backend;
    auto work = [&] { return backend.snapshot(); };  // named: see agent/core/blocking.h
    auto snap = co_await runBlocking(c_->deps.blocking, work);
    const storage::GroupSnapshot* group = nullptr;
    if (params->group.empty()) {
      if (snap.groups.size() == 1) {
        group = &snap.groups.front();
      }
    } else {
      for (const auto& g : snap.groups) {
        if (g.name == params->group) {
          group = &g;
        }
      }
    }
    uint64_t available = 0;
    uint64_t largest = 0;
    if (group != nullptr) {
      if (params->exclusive) {
        for (const auto& d : group->disks) {
          if (d.info.eligible && d.space.partitions == 0 && !d.space.exclusive) {
            available += d.space.size_bytes;
            largest = std::max(largest, d.largest_free_bytes);
          }
        }
      } else {
        available = group->free_bytes;
        largest = group->largest_allocatable_bytes;
      }
    }
    resp->set_available_capacity(static_cast<int64_t>(available));
    resp->mutable_maximum_volume_size()->set_value(static_cast<int64_t>(largest));
    co_return absl::OkStatus();
  }

  /** Grows the backing partition when the volume lives here; filesystem volumes then need
   *  NodeExpandVolume (node_expansion_required). Already large enough → OK. */
  Task<absl::Status> expandVolume(const ::csi::v1::ControllerExpandVolumeRequest* req,
                                  ::csi::v1::ControllerExpandVolumeResponse* resp) {
    if (req->volume_id().empty()) {
      co_return absl::InvalidArgumentError("volume_id is required");
    }
    if (!req->has_capacity_range()) {
      co_return absl::InvalidArgumentError("capacity_range is required");
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
    if (cr.required_bytes() <= 0 && cr.limit_bytes() <= 0) {
      co_return absl::InvalidArgumentError(
          "capacity_range: required_bytes or limit_bytes is "
          "required");
    }
    auto size = provisionSize(cr.required_bytes() > 0 ? cr.required_bytes() : cr.limit_bytes(),
                              cr.limit_bytes(), "");
    if (!size.ok()) {
      co_return size.status();
    }
    const std::string id = req->volume_id();
    auto guard = c_->locks.tryLock(id);
    if (!guard) {
      co_return busy(id);
    }
    auto& backend = c_->deps.backend;
    const uint64_t want = *size;
    auto work = [&] { return backend.findVolume(id); };  // named: see agent/core/blocking.h
    auto vol = co_await runBlocking(c_->deps.blocking, work);
    if (!vol) {
      if (c_->options().expand_unknown_on_node) {
        resp->set_capacity_bytes(static_cast<int64_t>(want));
        resp->set_node_expansion_required(true);
        co_return absl::OkStatus();
      }
      co_return absl::NotFoundError("volume " + id + " does not exist");
    }
    if (vol->size_bytes < want) {
      auto grow = [&] { return backend.expandVolume(id, want); };  // named: see blocking.h
      auto grown = co_await runBlocking(c_->deps.blocking, grow);
      if (!grown.ok()) {
        co_return annotate(grown.status(), "expanding volume " + id);
      }
      vol = *grown;
    }
    resp->set_capacity_bytes(static_cast<int64_t>(vol->size_bytes));
    resp->set_node_expansion_required(!block);
    co_return absl::OkStatus();
  }

  ServiceContextPtr c_;
};

}  // namespace

std::unique_ptr<grpc::Service> makeControllerService(ServiceContextPtr ctx) {
  return std::make_unique<ControllerService>(std::move(ctx));
}

}  // namespace carina::csi
