// CsiServer: the three services on one unix socket.

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "csi/service_internal.h"
#include "csi/services.h"

namespace carina::csi {

namespace {

constexpr std::string_view kUnixScheme = "unix://";

/** True when something accepts connections on the unix socket @p path. */
bool socketAlive(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return false;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof(addr.sun_path) - 1));
  const bool alive =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;  // NOLINT
  ::close(fd);
  return alive;
}

absl::StatusOr<std::string> prepareSocketPath(const std::string& endpoint) {
  if (!endpoint.starts_with(kUnixScheme)) {
    return absl::InvalidArgumentError("CSI endpoint must be unix:///absolute/path, got \"" +
                                      endpoint + "\"");
  }
  std::string path = endpoint.substr(kUnixScheme.size());
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError("CSI endpoint path must be absolute: \"" + endpoint + "\"");
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError("CSI endpoint path is longer than " +
                                      std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                      " bytes: " + path);
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError("CSI endpoint " + path +
                                           " exists and is not a socket; refusing to replace it");
    }
    if (socketAlive(path)) {
      return absl::FailedPreconditionError("another server is listening on " + path);
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      const int err = errno;
      return errnoStatus(absl::StatusCode::kFailedPrecondition, "removing stale socket " + path,
                         err);
    }
  } else if (errno != ENOENT) {
    const int err = errno;
    return errnoStatus("lstat " + path, err);
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) {
    return absl::FailedPreconditionError("creating the directory of " + path + ": " + ec.message());
  }
  return path;
}

}  // namespace

struct CsiServer::Impl {
  ServiceContextPtr context;
  std::unique_ptr<grpc::Service> identity;
  std::unique_ptr<grpc::Service> controller;
  std::unique_ptr<grpc::Service> node;
  std::unique_ptr<grpc::Server> server;
  std::string socket_path;
  std::mutex mu;
  bool stopped = false;
};

absl::StatusOr<std::unique_ptr<CsiServer>> CsiServer::start(ServiceDeps deps) {
  if (deps.options.node_name.empty()) {
    return absl::InvalidArgumentError("CSI server: node name is required");
  }
  if (deps.options.kubelet_dir.empty() || deps.options.kubelet_dir[0] != '/') {
    return absl::InvalidArgumentError("CSI server: kubelet dir must be an absolute path");
  }
  auto path = prepareSocketPath(deps.options.endpoint);
  if (!path.ok()) {
    return path.status();
  }
  auto impl = std::make_unique<Impl>();
  impl->socket_path = *path;
  impl->context = makeServiceContext(std::move(deps));
  impl->identity = makeIdentityService(impl->context);
  impl->controller = makeControllerService(impl->context);
  impl->node = makeNodeService(impl->context);

  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + impl->socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(impl->identity.get());
  builder.RegisterService(impl->controller.get());
  builder.RegisterService(impl->node.get());
  // Only the kubelet and the sidecars (root) talk to us: the socket is created 0600 through
  // the umask of gRPC's bind and then pinned with chmod.
  impl->server = builder.BuildAndStart();
  if (!impl->server) {
    return absl::InternalError("CSI server: cannot listen on unix://" + impl->socket_path);
  }
  if (::chmod(impl->socket_path.c_str(), 0600) != 0) {
    const int err = errno;
    impl->server->Shutdown();
    return errnoStatus(absl::StatusCode::kInternal, "chmod 0600 " + impl->socket_path, err);
  }
  CARINA_LOG_INFO(log::get("csi"), "CSI server listening",
                  {{"endpoint", "unix://" + impl->socket_path},
                   {"node", impl->context->options().node_name},
                   {"version", impl->context->options().version}});
  return std::unique_ptr<CsiServer>(new CsiServer(std::move(impl)));
}

CsiServer::CsiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

CsiServer::~CsiServer() { shutdown(std::chrono::milliseconds(0)); }

void CsiServer::shutdown(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->stopped) {
    return;
  }
  impl_->stopped = true;
  impl_->server->Shutdown(std::chrono::system_clock::now() + grace);
  impl_->server->Wait();
  ::unlink(impl_->socket_path.c_str());
  CARINA_LOG_INFO(log::get("csi"), "CSI server stopped", {{"socket", impl_->socket_path}});
}

const std::string& CsiServer::socketPath() const { return impl_->socket_path; }

}  // namespace carina::csi
