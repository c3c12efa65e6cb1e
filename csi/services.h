#pragma once

// The CSI services of carina (Identity, Controller, Node) and the gRPC server that serves them on
// one unix socket. This header carries no grpc or protobuf types: only agent/app and tests
// include it; the services are in csi/*.cc.
//
//   auto server = csi::CsiServer::start(opts, backend, mounter, runner, executor, pool, ready);
//   ...
//   (*server)->shutdown(std::chrono::seconds(10));

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <absl/status/statusor.h>

#include "agent/core/async.h"

namespace grpc {
class Service;
}  // namespace grpc
namespace boost::asio {
class thread_pool;
}  // namespace boost::asio
namespace carina::storage {
class VolumeBackend;
}  // namespace carina::storage
namespace carina::os {
class Mounter;
class CommandRunner;
}  // namespace carina::os

namespace carina::csi {

class VolumeLocks;  // csi/volume_locks.h

struct ServiceOptions {
  std::string node_name;                         // node id and topology value; required
  std::string endpoint;                          // "unix:///abs/path.sock"
  std::string kubelet_dir = "/var/lib/kubelet";  // target/staging paths must lie below it
  uint32_t max_volumes_per_node = 256;           // NodeGetInfo; 0 = unlimited
  std::string version;  // GetPluginInfo vendor_version; "" = buildVersion()
  /** ControllerExpandVolume for a volume this node does not hold: false (standalone) answers
   *  NOT_FOUND as the spec's table says; true (cluster mode with a central resizer) answers
   *  node_expansion_required so that NodeExpandVolume on the volume's node grows it. */
  bool expand_unknown_on_node = false;
  /** Bound of every external command (mkfs, growfs, blkid); the call's deadline if shorter. */
  std::chrono::milliseconds command_timeout{std::chrono::minutes(5)};
};

/** The project version this library was built with (CMake PROJECT_VERSION). */
std::string_view buildVersion();

/** True once the agent can serve requests (first disk scan done). Called on gRPC threads. */
using ReadinessFn = std::function<bool()>;

/** Told about volume lifecycle outcomes (cluster mode records LogicVolumes and posts Kubernetes
 *  Events from them). Called on the agent executor when a call ends; must return quickly and
 *  never block. Busy answers (ABORTED) are not reported. */
class VolumeObserver {
public:
  virtual ~VolumeObserver() = default;
  /** CreateVolume succeeded (also for an idempotent repeat). @p parameters are the request's
   *  (external-provisioner adds csi.storage.k8s.io/pvc/{name,namespace}). */
  virtual void volumeCreated(const std::string& volume_id, const std::string& name,
                             const std::map<std::string, std::string>& parameters) = 0;
  virtual void createFailed(const std::string& name,
                            const std::map<std::string, std::string>& parameters,
                            const absl::Status& status) = 0;
  virtual void volumeDeleted(const std::string& volume_id) = 0;
  /** ControllerExpandVolume or NodeExpandVolume succeeded / failed for @p volume_id. */
  virtual void volumeExpanded(const std::string& volume_id) = 0;
  virtual void expandFailed(const std::string& volume_id, const absl::Status& status) = 0;
};

/** Everything the services use. All references must outlive the services. */
struct ServiceDeps {
  ServiceOptions options;
  storage::VolumeBackend& backend;
  os::Mounter& mounter;
  os::CommandRunner& runner;
  Executor executor;                   // handlers run here (the agent executor)
  boost::asio::thread_pool& blocking;  // blocking work (engine, mount, mkfs) runs here
  ReadinessFn ready;
  VolumeObserver* observer = nullptr;  // optional (cluster mode)
  /** The per-volume locks, when shared with another writer of volumes (the orphan reconciler
   *  deletes under the same lock). nullptr: the services keep their own. */
  VolumeLocks* locks = nullptr;
};

/** Shared state of the three services (options, locks); opaque outside csi/. */
class ServiceContext;
using ServiceContextPtr = std::shared_ptr<ServiceContext>;
ServiceContextPtr makeServiceContext(ServiceDeps deps);

std::unique_ptr<grpc::Service> makeIdentityService(ServiceContextPtr ctx);
std::unique_ptr<grpc::Service> makeControllerService(ServiceContextPtr ctx);
std::unique_ptr<grpc::Service> makeNodeService(ServiceContextPtr ctx);

/** The gRPC server with the three services on one unix socket. */
class CsiServer {
public:
  /**
   * Validates the options, prepares the socket path and starts serving.
   * The socket is created with mode 0600. A stale socket at the path is replaced; a path that
   * exists and is not a socket is refused (FailedPrecondition), as is a socket another live
   * server still answers on. InvalidArgument for a bad endpoint or empty node name.
   */
  static absl::StatusOr<std::unique_ptr<CsiServer>> start(ServiceDeps deps);

  ~CsiServer();
  CsiServer(const CsiServer&) = delete;
  CsiServer& operator=(const CsiServer&) = delete;

  /** Stops accepting, lets running RPCs finish until @p grace passes (then cancels them), and
   *  removes the socket. Idempotent. The executor must keep running until this returns. */
  void shutdown(std::chrono::milliseconds grace);

  /** The socket path (without "unix://"). */
  const std::string& socketPath() const;

private:
  struct Impl;
  explicit CsiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace carina::csi
