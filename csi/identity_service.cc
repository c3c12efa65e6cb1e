// CSI Identity: plugin name and version, capabilities, readiness.

#include "csi.grpc.pb.h"
#include "csi/service_internal.h"

namespace carina::csi {
namespace {

class IdentityService final : public ::csi::v1::Identity::CallbackService {
public:
  explicit IdentityService(ServiceContextPtr c) : c_(std::move(c)) {}

  /** Constant answer: the driver name (never changes) and the build's version. */
  grpc::ServerUnaryReactor* GetPluginInfo(grpc::CallbackServerContext* ctx,
                                          const ::csi::v1::GetPluginInfoRequest* /*req*/,
                                          ::csi::v1::GetPluginInfoResponse* resp) override {
    resp->set_name(std::string(kDriverName));
    resp->set_vendor_version(c_->options().version.empty() ? std::string(buildVersion())
                                                           : c_->options().version);
    return finishNow(*c_, ctx, "GetPluginInfo", absl::OkStatus());
  }

  grpc::ServerUnaryReactor* GetPluginCapabilities(
      grpc::CallbackServerContext* ctx, const ::csi::v1::GetPluginCapabilitiesRequest* /*req*/,
      ::csi::v1::GetPluginCapabilitiesResponse* resp) override {
    using PluginService = ::csi::v1::PluginCapability::Service;
    resp->add_capabilities()->mutable_service()->set_type(PluginService::CONTROLLER_SERVICE);
    resp->add_capabilities()->mutable_service()->set_type(
        PluginService::VOLUME_ACCESSIBILITY_CONSTRAINTS);
    resp->add_capabilities()->mutable_volume_expansion()->set_type(
        ::csi::v1::PluginCapability::VolumeExpansion::ONLINE);
    return finishNow(*c_, ctx, "GetPluginCapabilities", absl::OkStatus());
  }

  /** ready=false (still OK) until the readiness callback says the first disk scan is done. */
  grpc::ServerUnaryReactor* Probe(grpc::CallbackServerContext* ctx,
                                  const ::csi::v1::ProbeRequest* /*req*/,
                                  ::csi::v1::ProbeResponse* resp) override {
    const bool ready = !c_->deps.ready || c_->deps.ready();
    resp->mutable_ready()->set_value(ready);
    return finishNow(*c_, ctx, "Probe", absl::OkStatus());
  }

private:
  ServiceContextPtr c_;
};

}  // namespace

std::string_view buildVersion() { return CARINA_VERSION; }

ServiceContextPtr makeServiceContext(ServiceDeps deps) {
  return std::make_shared<ServiceContext>(std::move(deps));
}

std::unique_ptr<grpc::Service> makeIdentityService(ServiceContextPtr ctx) {
  return std::make_unique<IdentityService>(std::move(ctx));
}

}  // namespace carina::csi
