#pragma once

// A stand-in kube-apiserver for tests and benchmarks, running inside the test process on its own
// thread: HTTPS on 127.0.0.1:0 with a CA and server certificate generated at start, bearer-token
// (and client-certificate) authentication, and the REST semantics the carina client relies on:
//
// - paths /api/v1/... and /apis/<group>/<version>/..., namespaced and cluster-scoped, for nodes,
//   persistentvolumeclaims, persistentvolumes, pods, events, storageclasses,
//   nodestorageresources and logicvolumes;
// - one global, monotonically increasing resourceVersion (etcd's revision) stamped on every
//   write; list returns the list RV and supports limit/continue (a continue token older than
//   the retained history is 410 Expired, as after an etcd compaction);
// - watch from an RV streams ADDED/MODIFIED/DELETED (and BOOKMARK with allowWatchBookmarks) as
//   chunked JSON lines; an RV older than the retained history window gives a 200 response with
//   one ERROR event carrying a 410 Expired Status, as kube-apiserver's watch cache does (or an
//   HTTP 410, see Options); "" / "0" first replays the current state as ADDED;
// - PUT with a stale metadata.resourceVersion is 409 Conflict; create of an existing name is 409
//   AlreadyExists; missing metadata.name is 422 Invalid; unknown objects 404; all errors are
//   Status objects; main-resource writes ignore .status and /status writes change only .status
//   for types with a status subresource; a write that changes nothing keeps the RV (no event);
// - JSON merge patch (application/merge-patch+json; other patch types: 415).
//
// Knobs for failure tests: drop all open connections and watches, fail the next N requests with
// a 5xx, forbid a verb on a resource (403), change the accepted token (401 otherwise), compact
// the history, emit bookmarks now; and the request log for rate-limit tests.
//
// Thread-safety: every public method may be called from any thread except the server's own
// (they run on the server thread and wait for it). No Beast or JSON types in this header.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <absl/status/statusor.h>

#include "k8s-client/kube_client.h"
#include "k8s-client/types.h"

namespace carina::test {

struct FakeApiServerOptions {
  std::string token = "carina-test-token";
  /** Events retained for watches (etcd's compaction window). */
  std::size_t history_window = 100'000;
  /** Periodic BOOKMARK events to watches that allow them; 0: only on sendBookmarks(). */
  std::chrono::milliseconds bookmark_interval{0};
  /** Answer a too-old watch RV with HTTP 410 instead of 200 + ERROR event. */
  bool gone_as_http_status = false;
  /** subjectAltName of the server certificate (OpenSSL syntax). */
  std::string server_cert_san = "IP:127.0.0.1,DNS:localhost";
};

struct RequestRecord {
  std::string method;  // "GET", ...
  std::string path;    // without the query
  std::string query;
  std::chrono::steady_clock::time_point at;
};

class FakeApiServer {
public:
  explicit FakeApiServer(FakeApiServerOptions options = {});
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  uint16_t port() const;
  /** PEM of the CA that signed the server certificate (and client certificates). */
  const std::string& caPem() const;
  /** host 127.0.0.1, port, CA and token: ready for k8s::makeKubeClient(). */
  k8s::ClientConfig clientConfig() const;
  /** A client certificate and key (PEM) for @p user, signed by the server's CA. */
  std::pair<std::string, std::string> issueClientCertificate(const std::string& user) const;

  // --- store, bypassing HTTP (for setup and for driving watches) ---

  /** Creates or replaces (unconditionally) an object given as JSON; returns the stored JSON.
   *  Namespace and name come from its metadata. */
  absl::StatusOr<std::string> upsert(const k8s::ResourceKind& kind, const std::string& json);
  /** Creates many new objects in one server-thread turn (for benchmarks). */
  absl::Status upsertMany(const k8s::ResourceKind& kind, const std::vector<std::string>& jsons);
  struct PatchSpec {
    std::string ns;
    std::string name;
    std::string merge_patch;
  };
  /** patch() of many objects in one server-thread turn (for benchmarks). */
  absl::Status patchMany(const k8s::ResourceKind& kind, const std::vector<PatchSpec>& patches);
  /** Merge-patches a stored object (a MODIFIED event unless nothing changed). */
  absl::StatusOr<std::string> patch(const k8s::ResourceKind& kind, const std::string& ns,
                                    const std::string& name, const std::string& merge_patch);
  absl::Status erase(const k8s::ResourceKind& kind, const std::string& ns, const std::string& name);
  std::optional<std::string> object(const k8s::ResourceKind& kind, const std::string& ns,
                                    const std::string& name);
  /** Every stored object of @p kind (JSON), in key order. */
  std::vector<std::string> objects(const k8s::ResourceKind& kind);
  std::size_t objectCount(const k8s::ResourceKind& kind);
  /** The current global resourceVersion. */
  int64_t resourceVersion();

  // --- knobs ---

  /** Closes every open connection (watches included) at once. */
  void dropConnections();
  /** The next @p n requests are answered with @p status (500 or 503) and a Status body. */
  void failNextRequests(int n, unsigned status = 500);
  /** Requests of @p verb ("get", "list", "watch", "create", "update", "patch", "delete") on
   *  @p plural get 403 Forbidden. */
  void forbid(const std::string& verb, const std::string& plural);
  /** Undoes forbid(). */
  void allow(const std::string& verb, const std::string& plural);
  /** Only @p token is accepted from now on (others: 401). */
  void setToken(const std::string& token);
  /** Forgets all history: watches from any RV before now get 410 Expired. */
  void compactHistory();
  /** Sends a BOOKMARK (current RV) to every watch that allows bookmarks. */
  void sendBookmarks();
  std::size_t activeWatches();

  uint64_t requestCount();
  std::vector<RequestRecord> requests();

  class Impl;

private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace carina::test
