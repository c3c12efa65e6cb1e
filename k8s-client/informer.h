#pragma once

// Informer<T>: a local cache of one resource type kept current by LIST + WATCH (client-go's
// reflector + indexer, reduced to what carina needs).
//
//   k8s::Informer<k8s::PersistentVolumeClaim> pvcs(executor, api.persistentVolumeClaims());
//   pvcs.addHandlers({.on_add = ..., .on_update = ..., .on_delete = ...});
//   pvcs.start();
//   ... if (pvcs.hasSynced()) { auto pvc = pvcs.get("default", "data-0"); }
//
// Behaviour:
// - LIST (paged) replaces the cache and sets hasSynced(); handlers see the difference (adds,
//   updates for changed resourceVersions, deletes for vanished objects). Then WATCH from the
//   list's resourceVersion with bookmarks; every event and bookmark advances the resume RV.
// - A broken or idle watch is reopened from the last RV after a backoff with jitter (no event
//   is lost or delivered twice); a normally ended watch is reopened at once; 410 Gone (too old
//   RV, OutOfRange) triggers a relist.
// - Optional periodic resync: on_update(obj, obj) for every cached object.
//
// Threading: the list/watch loop and all handlers run on a strand of the executor given. The
// cache is guarded by a shared mutex: get()/list()/size()/hasSynced() may be called from any
// thread and return shared immutable objects. stop() may be called from any thread. The
// ResourceClient must outlive the loop (until running() is false or the io_context stopped).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/async.h"
#include "k8s-client/kube_api.h"

namespace carina::k8s {

template <class T>
struct InformerHandlers {
  std::function<void(const T&)> on_add;
  std::function<void(const T& old_object, const T& new_object)> on_update;
  std::function<void(const T&)> on_delete;
};

struct InformerOptions {
  std::string namespace_;  // "" = all namespaces (and cluster-scoped types)
  std::string label_selector;
  std::string field_selector;
  uint32_t page_size = 500;
  std::chrono::milliseconds resync_period{0};  // 0: no periodic resync
  std::chrono::milliseconds min_backoff{200};
  std::chrono::milliseconds max_backoff{30'000};
  std::chrono::seconds watch_timeout{0};  // 0: the client's default (5..10 min, jittered)
};

struct InformerStats {
  uint64_t lists = 0;         // successful full lists (initial + relists)
  uint64_t relists_gone = 0;  // relists caused by 410 Gone
  uint64_t watches = 0;       // watch requests opened
  uint64_t watch_errors = 0;  // watches that ended with an error (then backoff)
  uint64_t events = 0;        // ADDED/MODIFIED/DELETED events applied
  uint64_t bookmarks = 0;
  uint64_t resyncs = 0;
  std::string resource_version;  // where the next watch resumes
};

template <class T>
class Informer {
public:
  using ObjectPtr = std::shared_ptr<const T>;

  Informer(Executor executor, ResourceClient<T>& client, InformerOptions options = {});
  /** Stops the loop (see stop()). */
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  /** Adds handlers; call before start(). */
  void addHandlers(InformerHandlers<T> handlers);
  /** Starts the list/watch loop on the executor. Idempotent. */
  void start();
  /** Asks the loop to end: cancels the open watch and any backoff; an in-flight LIST completes
   *  first. Thread-safe, idempotent. */
  void stop();
  /** True while the loop coroutine has not ended. */
  bool running() const;

  /** True once the first LIST has been applied (stays true across relists). */
  bool hasSynced() const;
  /** Waits (polling) until synced; false after @p timeout. Run on the informer's executor. */
  Task<bool> waitForSync(std::chrono::milliseconds timeout);

  /** Lookups from the cache. ns is "" for cluster-scoped types. nullptr when absent. */
  ObjectPtr get(std::string_view ns, std::string_view name) const;
  ObjectPtr getByKey(const std::string& key) const;
  std::vector<ObjectPtr> list() const;
  std::size_t size() const;
  InformerStats stats() const;

  struct State;

private:
  std::shared_ptr<State> state_;
};

extern template class Informer<Node>;
extern template class Informer<PersistentVolumeClaim>;
extern template class Informer<PersistentVolume>;
extern template class Informer<StorageClass>;
extern template class Informer<Pod>;
extern template class Informer<Event>;
extern template class Informer<NodeStorageResource>;
extern template class Informer<LogicVolume>;

}  // namespace carina::k8s
