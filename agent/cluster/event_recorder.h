#pragma once

// Posts Kubernetes Events (core/v1) about the objects carina acts on: provisioning or expansion
// failures on PVCs, orphan clean-up, ... Like client-go's record.EventRecorder:
//
//   cluster::EventRecorder events(executor, api.events(), {.host = node_name});
//   events.record(pvcRef, cluster::EventType::Warning, "ProvisioningFailed", "no space: ...");
//   ...
//   events.stop();
//
// - record() never blocks and never fails: the event goes into a bounded queue (the oldest one
//   is dropped, and counted, when it is full) and one worker coroutine on the executor posts
//   the queue in order.
// - Repeats are aggregated as client-go's EventCorrelator does: the same involved object,
//   type, reason and message within the aggregation window (10 minutes) of its last occurrence
//   update the existing Event (merge patch of count and lastTimestamp) instead of creating a
//   new one. An Event that vanished meanwhile (NotFound: events expire after 1 h) is created
//   anew with count 1.
// - Events are named "<involved name>.<16 hex digits>" (unique per recorder and time), in the
//   involved object's namespace ("default" for cluster-scoped objects), with source component
//   "carina-agent" and host = the node name; firstTimestamp/lastTimestamp as RFC 3339.
// - API unavailable (Unavailable, DeadlineExceeded, Internal, Aborted): retried with
//   exponential backoff and jitter, at most max_attempts times per event, then dropped (and
//   counted). Other errors (PermissionDenied, InvalidArgument, ...) drop the event at once and
//   are logged (warn).
//
// RBAC: events create and patch (nothing else: no get/list/watch/update).
//
// Threading: record(), stop(), stats() and idle() may be called from any thread. The worker
// runs on a strand of the executor. The ResourceClient must outlive the worker: call stop()
// and let the executor run until idle() (or stop the io_context) before destroying it.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "agent/core/async.h"
#include "k8s-client/kube_api.h"

namespace carina::cluster {

enum class EventType { Normal, Warning };

struct EventRecorderOptions {
  std::string component = "carina-agent";  // source.component
  std::string host;                        // source.host: the node name
  std::size_t queue_limit = 1000;          // events waiting to be posted
  std::chrono::seconds aggregation_window{600};
  std::size_t cache_limit = 4096;  // aggregation entries kept (oldest evicted)
  std::chrono::milliseconds min_backoff{500};
  std::chrono::milliseconds max_backoff{30'000};
  int max_attempts = 12;  // per event, like client-go's maxTriesPerEvent
  /** Wall clock for timestamps and the aggregation window (tests inject their own). */
  std::function<std::chrono::system_clock::time_point()> clock;
};

struct EventRecorderStats {
  uint64_t recorded = 0;    // record() calls
  uint64_t created = 0;     // Events created (POST)
  uint64_t aggregated = 0;  // repeats posted as a count update (PATCH)
  uint64_t retries = 0;     // attempts repeated after a transient error
  uint64_t dropped = 0;     // evicted from a full queue, or discarded by stop()
  uint64_t failed = 0;      // given up: permanent error or max_attempts reached
  std::size_t queued = 0;   // waiting now (including the one being posted)
};

class EventRecorder {
public:
  EventRecorder(Executor executor, k8s::ResourceClient<k8s::Event>& events,
                EventRecorderOptions options = {});
  /** stop(). */
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  /** Queues an Event about @p involved (kind, namespace, name, uid, apiVersion; namespace ""
   *  for cluster-scoped objects). Never blocks. Ignored after stop(). */
  void record(k8s::ObjectReference involved, EventType type, std::string reason,
              std::string message);

  /** Stops the worker: queued events are discarded (counted as dropped), a backoff wait ends
   *  at once, a request in flight completes first. Idempotent, thread-safe. */
  void stop();

  /** True when nothing is queued or in flight. */
  bool idle() const;
  EventRecorderStats stats() const;

  struct State;

private:
  std::shared_ptr<State> state_;
};

/** An ObjectReference to a PVC (kind PersistentVolumeClaim, apiVersion v1). */
k8s::ObjectReference pvcReference(const k8s::PersistentVolumeClaim& pvc);
/** An ObjectReference to a LogicVolume (cluster-scoped: its Events go to namespace default). */
k8s::ObjectReference logicVolumeReference(const k8s::LogicVolume& lv);

}  // namespace carina::cluster
