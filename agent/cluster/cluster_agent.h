#pragma once

// Cluster mode: the agent as a Kubernetes citizen (docs/deploy.md, DESIGN.md "Cluster mode").
//
//   cluster::ClusterAgent agent({executor, pool, api, engine, view, on_labels, device_use},
//                               {.node_name = node, ...});
//   csi_deps.observer = &agent;      // LogicVolumes and Events follow CSI outcomes
//   agent.start();
//   ... agent.inventoryChanged();    // after every disk apply
//   agent.stop();
//
// What it does, all on one strand of the executor:
// - informers: this node's Node (labels → diskSelector nodeLabel, cached in the state directory
//   so a restart during an API outage keeps the last known labels), PVCs, PVs, StorageClasses
//   and NodeStorageResources (fed into the extender's ClusterView: the scheduler extender of
//   any agent can answer for every node), and this node's LogicVolumes;
// - publishes this node's NodeStorageResource within a tick (200 ms) of an inventory change and
//   on every resync (which also refreshes status.updateTime);
// - keeps one LogicVolume per local volume (created when CreateVolume succeeds, PVC from the
//   request's csi.storage.k8s.io/pvc/* parameters or the PV's claimRef, size/status updated on
//   expansion, deleted with the volume), repaired on every resync;
// - posts Events on the PVC when provisioning or expansion fails, and the orphan reconciler's;
// - runs the orphan reconciler (agent/cluster/orphan_reconciler.h) with the caches as its view;
//   the caches count as synced only while the API server answers (a liveness request every
//   5 s), so nothing is deleted from a stale view during an outage.
// API outages: writes fail and are retried with backoff (the inventory is re-read each time,
// nothing is queued unboundedly); informers reconnect and resync; CSI never waits on the API.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "agent/cluster/event_recorder.h"
#include "agent/cluster/orphan_reconciler.h"
#include "agent/core/async.h"
#include "agent/storage/volume_backend.h"
#include "csi/services.h"
#include "extender/cluster_view.h"
#include "k8s-client/kube_api.h"

namespace boost::asio {
class thread_pool;
}  // namespace boost::asio

namespace carina::cluster {

struct ClusterAgentOptions {
  std::string node_name;  // required
  /** Where the last known Node labels are cached ("" = not cached). */
  std::string state_dir;
  /** How often pending work (inventory change, LogicVolume writes, retries) is looked at. */
  std::chrono::milliseconds tick{200};
  /** Full resync: NodeStorageResource rewritten, every LogicVolume compared and repaired. */
  std::chrono::milliseconds resync{std::chrono::minutes(5)};
  /** API liveness request period; the caches count as synced for the orphan reconciler only
   *  if the last one succeeded less than 2 periods ago. */
  std::chrono::milliseconds liveness{std::chrono::seconds(5)};
  /** Longest wait between retries of failed writes. */
  std::chrono::milliseconds max_backoff{std::chrono::seconds(10)};
  OrphanOptions orphans;
};

struct ClusterAgentDeps {
  Executor executor;
  boost::asio::thread_pool& blocking;
  k8s::KubeApi& api;
  storage::VolumeBackend& backend;
  /** Fed with claims, classes, volumes and OTHER nodes' supply (the local node's supply is
   *  set by the agent from its own inventory, which is fresher). */
  extender::InMemoryClusterView& view;
  /** The Node's labels changed (called on the strand; also once at start with cached labels
   *  if any). */
  std::function<void(const std::map<std::string, std::string>&)> on_node_labels;
  /** In-use probe for the orphan reconciler (blocking). */
  std::function<absl::StatusOr<DeviceUseAnswer>(const std::string& device)> device_use;
  /** The CSI services' per-volume locks: the orphan reconciler deletes a volume only while it
   *  holds the volume's lock, so it never races a CreateVolume/NodeStage/... of the same
   *  volume (a busy volume is kept and looked at again next pass). nullptr: no CSI in-process
   *  (tests). */
  csi::VolumeLocks* volume_locks = nullptr;
};

struct ClusterAgentStats {
  uint64_t nsr_writes = 0;
  uint64_t lv_creates = 0;
  uint64_t lv_updates = 0;
  uint64_t lv_deletes = 0;
  uint64_t write_failures = 0;  // any failed API write (retried)
  uint64_t syncs = 0;           // sync passes run
  bool api_live = false;        // last liveness request succeeded recently
  bool caches_synced = false;   // what the orphan reconciler is told
  OrphanStats orphans;
  EventRecorderStats events;
};

class ClusterAgent final : public csi::VolumeObserver {
public:
  ClusterAgent(ClusterAgentDeps deps, ClusterAgentOptions options);
  /** stop(). */
  ~ClusterAgent() override;
  ClusterAgent(const ClusterAgent&) = delete;
  ClusterAgent& operator=(const ClusterAgent&) = delete;

  /** Starts the informers, the sync loop, the event recorder and the orphan reconciler.
   *  InvalidArgument for bad options. */
  absl::Status start();
  /** Stops everything; in-flight requests complete on the executor. Idempotent, thread-safe.
   *  Keep the executor running until stopped() is true (or stop the io_context). */
  void stop();
  bool stopped() const;

  /** The inventory changed (disks applied): publish soon. Thread-safe, never blocks. */
  void inventoryChanged();
  /** Every informer has listed once. */
  bool cachesSynced() const;
  /** True once this node's NodeStorageResource was written by this process. */
  bool published() const;
  ClusterAgentStats stats() const;
  /** Runs one orphan-reconciler pass now (tests, carinactl). */
  Task<OrphanRunReport> reconcileOrphansNow();
  /** New orphan-reconciler settings (config reload): see OrphanReconciler::updateOptions.
   *  FailedPrecondition before start(). Thread-safe. */
  absl::Status updateOrphanOptions(OrphanOptions options);

  /** The labels cached by an earlier run in @p state_dir, if any. */
  static std::optional<std::map<std::string, std::string>> loadCachedLabels(
      const std::string& state_dir);

  // csi::VolumeObserver
  void volumeCreated(const std::string& volume_id, const std::string& name,
                     const std::map<std::string, std::string>& parameters) override;
  void createFailed(const std::string& name, const std::map<std::string, std::string>& parameters,
                    const absl::Status& status) override;
  void volumeDeleted(const std::string& volume_id) override;
  void volumeExpanded(const std::string& volume_id) override;
  void expandFailed(const std::string& volume_id, const absl::Status& status) override;

  struct State;

private:
  std::shared_ptr<State> state_;
};

}  // namespace carina::cluster
