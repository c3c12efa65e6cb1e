#pragma once

// The production KubeApi: HTTPS (Boost.Beast + OpenSSL) with CA and host name verification,
// bearer-token or client-certificate authentication, a client-side token-bucket rate limit,
// a timeout on every request, keep-alive connection reuse, and watches streamed as JSON lines
// with an idle timeout. Configuration comes from the pod's service account (in-cluster) or from
// a kubeconfig. No Beast or JSON headers here (factory pattern, CONVENTIONS.md §b.6).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <absl/status/statusor.h>

#include "agent/core/async.h"
#include "k8s-client/kube_api.h"

namespace carina::k8s {

struct ClientConfig {
  std::string host;  // "10.96.0.1", "kubernetes.default.svc", "::1"
  uint16_t port = 443;
  std::string ca_pem;  // trusted CA certificates (PEM); empty: the system default paths
  bool insecure_skip_tls_verify = false;  // kubeconfig insecure-skip-tls-verify (tests only)
  std::string token;                      // static bearer token
  std::string token_file;  // re-read whenever it changes (service-account token rotation)
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string default_namespace = "default";
  double qps = 20;  // client-side rate limit (<= 0: unlimited)
  int burst = 30;
  std::chrono::milliseconds request_timeout{30'000};  // whole request incl. connect
  /** A watch that receives no byte (event or bookmark) for this long is reported as
   *  DeadlineExceeded (the informer reconnects); 0 disables. */
  std::chrono::milliseconds watch_idle_timeout{180'000};
  std::size_t body_limit = 512u * 1024u * 1024u;  // largest non-watch response accepted
  std::string user_agent = "carina/0.1";
};

/** Paths of the service-account mount (overridable for tests). */
struct InClusterPaths {
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
};

/** In-cluster configuration: KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT, the CA file and
 *  the token file (read now to fail early, then re-read on change). FailedPrecondition when not
 *  running in a pod (variables unset); NotFound / InvalidArgument for missing or bad files. */
absl::StatusOr<ClientConfig> inClusterConfig(const InClusterPaths& paths = {});

/** A kubeconfig (YAML or JSON) as ClientConfig: the cluster and user of @p context (default:
 *  current-context). Supports server, certificate-authority(-data), insecure-skip-tls-verify,
 *  token, tokenFile, client-certificate(-data), client-key(-data) and the context namespace.
 *  Relative file paths are resolved against @p base_dir. InvalidArgument with the field path. */
absl::StatusOr<ClientConfig> parseKubeconfig(std::string_view text, std::string_view base_dir,
                                             std::string_view context = {});
absl::StatusOr<ClientConfig> loadKubeconfigFile(const std::string& path,
                                                std::string_view context = {});

/** Splits "https://host[:port][/]" into host and port. InvalidArgument for other schemes. */
absl::Status parseServerUrl(std::string_view url, ClientConfig& config);

/** Counters for diagnostics and tests. */
struct ClientStats {
  uint64_t requests = 0;                        // HTTP requests sent (including watches)
  uint64_t connections = 0;                     // TLS connections established
  uint64_t rate_limited = 0;                    // requests that waited for a token
  std::chrono::nanoseconds rate_limit_wait{0};  // sum of those waits
  uint64_t token_reloads = 0;                   // times the token file was (re)read
};

/** The client's view beyond KubeApi. */
class KubeClient : public KubeApi {
public:
  virtual ClientStats stats() const = 0;
};

/** Creates the client. All I/O runs on @p executor (one io_context; use a strand if that
 *  io_context runs on several threads). Fails on unreadable CA or client certificates. */
absl::StatusOr<std::unique_ptr<KubeClient>> makeKubeClient(Executor executor, ClientConfig config);

}  // namespace carina::k8s
