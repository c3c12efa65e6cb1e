#pragma once

// The Kubernetes API as carina sees it: typed get/list/watch/create/update/patch/delete per
// resource (ResourceClient<T>), grouped in KubeApi. No Beast, no JSON here: the production
// implementation is makeKubeClient() (k8s-client/kube_client.h); tests use the stand-in API
// server (tests/k8s_server) with the real client, or their own fake of these interfaces.
//
// Error codes (chosen by the implementation from the HTTP status, CONVENTIONS.md §b.4):
//   404 -> NotFound; 409 Conflict -> Aborted (stale resourceVersion: refetch and retry);
//   409 AlreadyExists (create) -> AlreadyExists; 410 Gone / Expired -> OutOfRange (relist);
//   401/403 -> PermissionDenied (message names verb and resource); 400/422 -> InvalidArgument;
//   429 and 5xx, connection and TLS failures -> Unavailable; timeouts -> DeadlineExceeded.
//
// Threading: every method may be called from any coroutine; implementations keep their shared
// state under short mutexes and never block. Arguments are taken by value because they are
// used after the first suspension.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <absl/status/statusor.h>

#include "agent/core/async.h"
#include "k8s-client/types.h"

namespace carina::k8s {

struct ListOptions {
  std::string label_selector;  // "app=x,tier=y"
  std::string field_selector;  // "spec.nodeName=n1"
  uint32_t limit = 0;          // page size; 0: everything in one response
  std::string continue_token;  // from the previous page
  /** "" = most recent (consistent read); "0" = any cached state. */
  std::string resource_version;
};

struct WatchOptions {
  /** Events after this RV. "" or "0": the server first sends the current state as ADDED. */
  std::string resource_version;
  std::string label_selector;
  std::string field_selector;
  bool allow_bookmarks = true;
  /** Server-side timeoutSeconds; 0: the client picks 5..10 minutes with jitter (client-go). */
  std::chrono::seconds timeout{0};
};

/** One open watch (one HTTP response streamed as JSON lines). Not shareable between coroutines:
 *  one consumer calls next() at a time. */
template <class T>
class WatchStream {
public:
  virtual ~WatchStream() = default;
  /** The next event; nullopt when the server ended the stream normally (timeoutSeconds
   *  reached): watch again from the last RV seen. Errors: OutOfRange when the RV is too old
   *  (410 Gone / ERROR Expired event) -> relist; DeadlineExceeded when nothing (not even a
   *  bookmark) arrived within the idle timeout; Unavailable when the connection broke;
   *  Cancelled after cancel(); InvalidArgument for an undecodable event. */
  virtual Task<absl::StatusOr<std::optional<WatchEvent<T>>>> next() = 0;
  /** Closes the connection; a pending next() completes with Cancelled. Idempotent. Must be
   *  called on the executor the stream's I/O runs on (the client's). */
  virtual void cancel() = 0;
};

template <class T>
using WatchStreamPtr = std::unique_ptr<WatchStream<T>>;

/** Operations on one resource type. For cluster-scoped types @p ns must be "". */
template <class T>
class ResourceClient {
public:
  virtual ~ResourceClient() = default;

  /** GET one object. NotFound when absent. */
  virtual Task<absl::StatusOr<T>> get(std::string ns, std::string name) = 0;
  /** One page of a LIST (all of it when opts.limit == 0). @p ns "" lists all namespaces. A
   *  continue token that expired gives OutOfRange: restart the list. */
  virtual Task<absl::StatusOr<ObjectList<T>>> list(std::string ns, ListOptions opts) = 0;
  /** POST. AlreadyExists when the name is taken; InvalidArgument (422) when invalid. */
  virtual Task<absl::StatusOr<T>> create(T object) = 0;
  /** PUT of the whole object, with metadata.resource_version as precondition: Aborted when
   *  stale (refetch, reapply, retry: see updateWithRetry()). Status changes are ignored by the
   *  server for types with a status subresource. Unknown fields of object.raw are kept. */
  virtual Task<absl::StatusOr<T>> update(T object) = 0;
  /** PUT to the status subresource (same precondition). */
  virtual Task<absl::StatusOr<T>> updateStatus(T object) = 0;
  /** JSON merge patch (RFC 7386, application/merge-patch+json), on the object or on its
   *  status subresource. @p patch is a JSON object text. */
  virtual Task<absl::StatusOr<T>> patch(std::string ns, std::string name, std::string patch,
                                        bool status_subresource) = 0;
  /** Sets metadata.ownerReferences to exactly @p refs (a merge patch of the object, whatever
   *  its resourceVersion: references are not status, and nothing else is touched). */
  virtual Task<absl::StatusOr<T>> setOwnerReferences(std::string ns, std::string name,
                                                     std::vector<OwnerReference> refs) = 0;
  /** DELETE. NotFound when already absent (callers wanting idempotency treat it as success). */
  virtual Task<absl::Status> remove(std::string ns, std::string name) = 0;
  /** Opens a watch. Errors opening it use the codes above (OutOfRange: relist). */
  virtual Task<absl::StatusOr<WatchStreamPtr<T>>> watch(std::string ns, WatchOptions opts) = 0;
};

/** All resource types carina uses. The implementation owns the ResourceClients. */
class KubeApi {
public:
  virtual ~KubeApi() = default;
  virtual ResourceClient<Node>& nodes() = 0;
  virtual ResourceClient<PersistentVolumeClaim>& persistentVolumeClaims() = 0;
  virtual ResourceClient<PersistentVolume>& persistentVolumes() = 0;
  virtual ResourceClient<StorageClass>& storageClasses() = 0;
  virtual ResourceClient<Pod>& pods() = 0;
  virtual ResourceClient<Event>& events() = 0;
  virtual ResourceClient<NodeStorageResource>& nodeStorageResources() = 0;
  virtual ResourceClient<LogicVolume>& logicVolumes() = 0;

  /** resource<Node>() == nodes(), etc. */
  template <class T>
  ResourceClient<T>& resource() {
    if constexpr (std::is_same_v<T, Node>) {
      return nodes();
    } else if constexpr (std::is_same_v<T, PersistentVolumeClaim>) {
      return persistentVolumeClaims();
    } else if constexpr (std::is_same_v<T, PersistentVolume>) {
      return persistentVolumes();
    } else if constexpr (std::is_same_v<T, StorageClass>) {
      return storageClasses();
    } else if constexpr (std::is_same_v<T, Pod>) {
      return pods();
    } else if constexpr (std::is_same_v<T, Event>) {
      return events();
    } else if constexpr (std::is_same_v<T, NodeStorageResource>) {
      return nodeStorageResources();
    } else {
      static_assert(std::is_same_v<T, LogicVolume>, "not a carina k8s type");
      return logicVolumes();
    }
  }
};

using KubeApiPtr = std::unique_ptr<KubeApi>;

/** 409 Conflict on update (stale resourceVersion). */
inline bool isConflict(const absl::Status& s) { return s.code() == absl::StatusCode::kAborted; }
/** 410 Gone / Expired: the resourceVersion or continue token is too old; relist. */
inline bool isGone(const absl::Status& s) { return s.code() == absl::StatusCode::kOutOfRange; }

/** Failures worth trying again later: the server or the connection (Unavailable,
 *  DeadlineExceeded, Internal, Unknown), a conflict (Aborted), throttling (ResourceExhausted).
 *  Everything else (PermissionDenied, InvalidArgument, NotFound, ...) will not heal by itself. */
inline bool isRetryable(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

/** Lists every page (opts.limit is the page size). The list RV is the one of the first page,
 *  as kube-apiserver serves all pages of one list from the same snapshot. */
template <class T>
Task<absl::StatusOr<ObjectList<T>>> listAll(ResourceClient<T>& client, std::string ns,
                                            ListOptions opts) {
  ObjectList<T> all;
  bool first = true;
  while (true) {
    auto page = co_await client.list(ns, opts);
    if (!page.ok()) {
      co_return page.status();
    }
    if (first) {
      all.resource_version = page->resource_version;
      first = false;
    }
    for (auto& item : page->items) {
      all.items.push_back(std::move(item));
    }
    if (page->continue_token.empty()) {
      break;
    }
    opts.continue_token = std::move(page->continue_token);
  }
  co_return all;
}

/** Read-modify-write with optimistic concurrency: GET, apply @p mutate (returns false to give
 *  up without writing: the current object is returned), PUT (or PUT /status), and on Aborted
 *  (409, stale RV) start over with a fresh GET, at most @p attempts times. */
template <class T>
Task<absl::StatusOr<T>> updateWithRetry(ResourceClient<T>& client, std::string ns, std::string name,
                                        std::function<bool(T&)> mutate, bool status_subresource,
                                        int attempts = 5) {
  absl::Status last;
  for (int i = 0; i < attempts; ++i) {
    auto current = co_await client.get(ns, name);
    if (!current.ok()) {
      co_return current.status();
    }
    if (!mutate(*current)) {
      co_return std::move(*current);
    }
    absl::StatusOr<T> written;
    if (status_subresource) {
      written = co_await client.updateStatus(std::move(*current));
    } else {
      written = co_await client.update(std::move(*current));
    }
    if (written.ok() || !isConflict(written.status())) {
      co_return written;
    }
    last = written.status();
  }
  co_return last;
}

}  // namespace carina::k8s
