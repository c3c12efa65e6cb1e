#include "agent/cluster/cluster_agent.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "agent/cluster/objects.h"
#include "agent/core/blocking.h"
#include "agent/core/json_string.h"
#include "agent/core/log.h"
#include "agent/core/status.h"
#include "csi/volume_locks.h"
#include "k8s-client/informer.h"

namespace carina::cluster {
namespace {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kDriverName = "carina.storage.io";
constexpr std::string_view kPvcNameParam = "csi.storage.k8s.io/pvc/name";
constexpr std::string_view kPvcNamespaceParam = "csi.storage.k8s.io/pvc/namespace";
constexpr std::string_view kLabelsFile = "node-labels.json";

log::Logger& logger() { return log::get("cluster"); }

std::string msg(const absl::Status& st) { return std::string(st.message()); }

/** Labels as a small JSON object (our own writer: values are escaped with the one escaper). */
std::string labelsToJson(const std::map<std::string, std::string>& labels) {
  std::string out = "{";
  for (const auto& [k, v] : labels) {
    if (out.size() > 1) {
      out += ",";
    }
    core::appendJsonString(out, k);
    out += ":";
    core::appendJsonString(out, v);
  }
  return out + "}";
}

/** Reads what labelsToJson() wrote: {"k":"v",...} with JSON string escapes. nullopt when the
 *  text is not of that shape (then the cache is ignored). */
std::optional<std::map<std::string, std::string>> labelsFromJson(std::string_view text) {
  size_t i = 0;
  auto skipWs = [&] {
    while (i < text.size() &&
           (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r')) {
      ++i;
    }
  };
  auto readString = [&]() -> std::optional<std::string> {
    skipWs();
    if (i >= text.size() || text[i] != '"') {
      return std::nullopt;
    }
    ++i;
    std::string s;
    while (i < text.size() && text[i] != '"') {
      char c = text[i++];
      if (c == '\\') {
        if (i >= text.size()) {
          return std::nullopt;
        }
        char e = text[i++];
        switch (e) {
          case '"':
          case '\\':
          case '/':
            s += e;
            break;
          case 'n':
            s += '\n';
            break;
          case 't':
            s += '\t';
            break;
          case 'r':
            s += '\r';
            break;
          case 'b':
            s += '\b';
            break;
          case 'f':
            s += '\f';
            break;
          case 'u': {
            if (i + 4 > text.size()) {
              return std::nullopt;
            }
            unsigned v = 0;
            for (int k = 0; k < 4; ++k) {
              char h = text[i++];
              v <<= 4;
              if (h >= '0' && h <= '9') {
                v |= static_cast<unsigned>(h - '0');
              } else if (h >= 'a' && h <= 'f') {
                v |= static_cast<unsigned>(h - 'a' + 10);
              } else if (h >= 'A' && h <= 'F') {
                v |= static_cast<unsigned>(h - 'A' + 10);
              } else {
                return std::nullopt;
              }
            }
            if (v >= 0x80) {
              return std::nullopt;  // label keys and values are ASCII
            }
            s += static_cast<char>(v);
            break;
          }
          default:
            return std::nullopt;
        }
      } else {
        s += c;
      }
    }
    if (i >= text.size()) {
      return std::nullopt;
    }
    ++i;  // closing quote
    return s;
  };
  std::map<std::string, std::string> out;
  skipWs();
  if (i >= text.size() || text[i] != '{') {
    return std::nullopt;
  }
  ++i;
  skipWs();
  if (i < text.size() && text[i] == '}') {
    return out;
  }
  for (;;) {
    auto k = readString();
    skipWs();
    if (!k || i >= text.size() || text[i] != ':') {
      return std::nullopt;
    }
    ++i;
    auto v = readString();
    if (!v) {
      return std::nullopt;
    }
    out[*k] = *v;
    skipWs();
    if (i < text.size() && text[i] == ',') {
      ++i;
      continue;
    }
    if (i < text.size() && text[i] == '}') {
      return out;
    }
    return std::nullopt;
  }
}

k8s::ObjectReference nodeReference(const std::string& node) {
  k8s::ObjectReference r;
  r.kind = "Node";
  r.api_version = "v1";
  r.name = node;
  r.uid = node;  // kubectl describe node matches events by uid == name for nodes
  return r;
}

}  // namespace

struct ClusterAgent::State : std::enable_shared_from_this<ClusterAgent::State> {
  State(ClusterAgentDeps d, ClusterAgentOptions o)
      : deps(std::move(d)),
        options(std::move(o)),
        strand(net::make_strand(deps.executor)),
        timer(strand),
        nodes(deps.executor, deps.api.nodes(), nodeOptions(options)),
        pvcs(deps.executor, deps.api.persistentVolumeClaims(), plainOptions(options)),
        pvs(deps.executor, deps.api.persistentVolumes(), plainOptions(options)),
        classes(deps.executor, deps.api.storageClasses(), plainOptions(options)),
        nsrs(deps.executor, deps.api.nodeStorageResources(), plainOptions(options)),
        lvs(deps.executor, deps.api.logicVolumes(), lvOptions(options)),
        events(deps.executor, deps.api.events(), recorderOptions(options)) {}

  static k8s::InformerOptions plainOptions(const ClusterAgentOptions& o) {
    k8s::InformerOptions io;
    io.max_backoff = o.max_backoff;
    return io;
  }
  static k8s::InformerOptions nodeOptions(const ClusterAgentOptions& o) {
    k8s::InformerOptions io;
    io.field_selector = "metadata.name=" + o.node_name;
    io.max_backoff = o.max_backoff;
    return io;
  }
  static k8s::InformerOptions lvOptions(const ClusterAgentOptions& o) {
    k8s::InformerOptions io;
    if (o.node_name.size() <= 63) {
      io.label_selector = std::string(kNodeLabel) + "=" + o.node_name;
    }
    io.max_backoff = o.max_backoff;
    return io;
  }
  static EventRecorderOptions recorderOptions(const ClusterAgentOptions& o) {
    EventRecorderOptions e;
    e.host = o.node_name;
    return e;
  }

  ClusterAgentDeps deps;
  ClusterAgentOptions options;
  net::strand<Executor> strand;
  net::steady_timer timer;
  k8s::Informer<k8s::Node> nodes;
  k8s::Informer<k8s::PersistentVolumeClaim> pvcs;
  k8s::Informer<k8s::PersistentVolume> pvs;
  k8s::Informer<k8s::StorageClass> classes;
  k8s::Informer<k8s::NodeStorageResource> nsrs;
  k8s::Informer<k8s::LogicVolume> lvs;
  EventRecorder events;
  std::unique_ptr<OrphanReconciler> orphans;

  std::atomic<bool> stopping{false};
  std::atomic<bool> loop_running{false};
  std::atomic<bool> dirty{true};
  std::atomic<bool> published{false};
  std::atomic<int64_t> last_live_ns{0};  // steady clock of the last successful liveness check

  mutable std::mutex mu;  // guards the fields below
  ClusterAgentStats counters;
  /** PVC of a volume as CreateVolume's parameters named it (volume id -> ns, name). */
  std::unordered_map<std::string, std::pair<std::string, std::string>> pvc_hints;
  /** Volumes CreateVolume returned in this process whose LogicVolume is not written yet. */
  std::set<std::string> fresh_volumes;
  std::set<std::string> lv_deletes;  // LogicVolumes of deleted volumes still to remove
  std::optional<std::map<std::string, std::string>> labels;

  void count(uint64_t ClusterAgentStats::*field) {
    std::lock_guard<std::mutex> lock(mu);
    ++(counters.*field);
  }

  bool apiLive() const {
    const int64_t last = last_live_ns.load();
    if (last == 0) {
      return false;
    }
    const auto age = Clock::now().time_since_epoch() - std::chrono::nanoseconds(last);
    return age < 2 * options.liveness;
  }

  bool cachesSynced() const {
    return nodes.hasSynced() && pvcs.hasSynced() && pvs.hasSynced() && classes.hasSynced() &&
           nsrs.hasSynced() && lvs.hasSynced();
  }

  // --- informer handlers (run on the informers' strands; touch only thread-safe state) ---

  void wireInformers() {
    auto& view = deps.view;
    const std::string self_node = options.node_name;
    pvcs.addHandlers({
        [&view](const k8s::PersistentVolumeClaim& o) { view.upsertClaim(claimFromPvc(o)); },
        [&view](const k8s::PersistentVolumeClaim&, const k8s::PersistentVolumeClaim& o) {
          view.upsertClaim(claimFromPvc(o));
        },
        [&view](const k8s::PersistentVolumeClaim& o) {
          view.removeClaim(o.metadata.namespace_, o.metadata.name);
        },
    });
    pvs.addHandlers({
        [&view](const k8s::PersistentVolume& o) { view.upsertVolume(volumeFromPv(o)); },
        [&view](const k8s::PersistentVolume&, const k8s::PersistentVolume& o) {
          view.upsertVolume(volumeFromPv(o));
        },
        [&view](const k8s::PersistentVolume& o) { view.removeVolume(o.metadata.name); },
    });
    classes.addHandlers({
        [&view](const k8s::StorageClass& o) { view.upsertStorageClass(storageClassFromK8s(o)); },
        [&view](const k8s::StorageClass&, const k8s::StorageClass& o) {
          view.upsertStorageClass(storageClassFromK8s(o));
        },
        [&view](const k8s::StorageClass& o) { view.removeStorageClass(o.metadata.name); },
    });
    // Other nodes' supply; this node's own comes from the live inventory (the app sets it).
    nsrs.addHandlers({
        [&view, self_node](const k8s::NodeStorageResource& o) {
          auto supply = supplyFromNodeStorageResource(o);
          if (supply.node != self_node) {
            view.setNodeSupply(std::move(supply));
          }
        },
        [&view, self_node](const k8s::NodeStorageResource&, const k8s::NodeStorageResource& o) {
          auto supply = supplyFromNodeStorageResource(o);
          if (supply.node != self_node) {
            view.setNodeSupply(std::move(supply));
          }
        },
        [&view, self_node, weak = weak_from_this()](const k8s::NodeStorageResource& o) {
          auto supply = supplyFromNodeStorageResource(o);
          if (supply.node != self_node) {
            view.removeNode(supply.node);
          } else if (auto s = weak.lock()) {
            s->dirty = true;  // ours was deleted: publish it again
            s->published = false;
          }
        },
    });
    std::weak_ptr<State> weak = weak_from_this();
    auto onNode = [weak](const k8s::Node& n) {
      if (auto s = weak.lock()) {
        s->nodeLabelsSeen(n.metadata.labels);
      }
    };
    nodes.addHandlers({onNode, [onNode](const k8s::Node&, const k8s::Node& n) { onNode(n); }, {}});
    // One of our LogicVolumes deleted by someone else: the next pass recreates it if the volume
    // still exists (a LogicVolume without a volume is the orphan reconciler's business).
    auto markDirty = [weak](const k8s::LogicVolume&) {
      if (auto s = weak.lock()) {
        s->dirty = true;
      }
    };
    lvs.addHandlers({{}, {}, markDirty});
  }

  void nodeLabelsSeen(const std::map<std::string, std::string>& fresh) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (labels && *labels == fresh) {
        return;
      }
      labels = fresh;
    }
    saveLabels(fresh);
    CARINA_LOG_INFO(logger(), "node labels",
                    {{"node", options.node_name}, {"count", fresh.size()}});
    auto self = shared_from_this();
    net::post(strand, [self, fresh] {
      if (self->deps.on_node_labels && !self->stopping) {
        self->deps.on_node_labels(fresh);
      }
    });
  }

  void saveLabels(const std::map<std::string, std::string>& l) const {
    if (options.state_dir.empty()) {
      return;
    }
    const std::filesystem::path path = std::filesystem::path(options.state_dir) / kLabelsFile;
    const std::filesystem::path tmp = path.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << labelsToJson(l) << "\n";
      if (!out.good()) {
        CARINA_LOG_WARN(logger(), "cannot cache node labels", {{"path", tmp.string()}});
        return;
      }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
      CARINA_LOG_WARN(logger(), "cannot cache node labels",
                      {{"path", path.string()}, {"error", ec.message()}});
    }
  }

  // --- the sync loop (on the strand) ---

  struct Local {
    storage::InventorySnapshot inventory;
    std::vector<storage::Volume> volumes;
  };

  Task<void> run() {
    auto self = shared_from_this();
    Clock::time_point next_resync = Clock::now();  // resync at once
    Clock::time_point next_liveness = Clock::now();
    Clock::time_point next_attempt = Clock::now();
    std::chrono::milliseconds backoff = options.tick;
    while (!stopping) {
      const auto now = Clock::now();
      if (now >= next_liveness) {
        next_liveness = now + options.liveness;
        co_await checkLiveness();
      }
      const bool resync_due = now >= next_resync;
      if ((dirty.load() || resync_due) && now >= next_attempt) {
        dirty = false;
        const bool ok = co_await syncOnce(resync_due);
        if (resync_due) {
          next_resync = now + options.resync;
        }
        if (ok) {
          backoff = options.tick;
        } else {
          dirty = true;
          next_attempt = Clock::now() + backoff;
          backoff = std::min(backoff * 2, options.max_backoff);
        }
      }
      timer.expires_after(options.tick);
      boost::system::error_code ec;
      co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    loop_running = false;
  }

  Task<void> checkLiveness() {
    k8s::ListOptions opts;
    opts.limit = 1;
    opts.label_selector = lvOptions(options).label_selector;
    const std::string ns;
    auto listed = co_await deps.api.logicVolumes().list(ns, opts);
    if (listed.ok()) {
      last_live_ns = Clock::now().time_since_epoch().count();
    } else {
      CARINA_LOG_DEBUG(logger(), "API server liveness check failed",
                       {{"error", msg(listed.status())}});
    }
  }

  /** One pass: publish the NSR if it changed (always on resync), bring LogicVolumes in line.
   *  false when some write failed (retried after a backoff). */
  Task<bool> syncOnce(bool resync) {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++counters.syncs;
    }
    auto& backend = deps.backend;
    auto read = [&backend] { return Local{backend.snapshot(), backend.listVolumes()}; };  // named
    Local local = co_await runBlocking(deps.blocking, read);
    const bool ok = co_await publishNsr(local.inventory, resync);
    // LogicVolumes need the LogicVolume and PV caches (what exists, which PVC): until both
    // have listed, the pass counts as failed and is retried.
    bool lv_ok = lvs.hasSynced() && pvs.hasSynced();
    if (lv_ok) {
      lv_ok = co_await syncLogicVolumes(local.volumes, resync);
    }
    const bool all_ok = ok && lv_ok;
    co_return all_ok;
  }

  /** This node's Node as the NodeStorageResource's owner (garbage collection removes the
   *  NodeStorageResource with its Node), once the Node informer knows its uid. Neither
   *  controller nor blockOwnerDeletion: those would need RBAC on nodes/finalizers. */
  std::optional<k8s::OwnerReference> nodeOwner() const {
    auto n = nodes.get("", options.node_name);
    if (!n || n->metadata.uid.empty()) {
      return std::nullopt;
    }
    return k8s::OwnerReference{"v1", "Node", n->metadata.name, n->metadata.uid, false, false};
  }

  static bool ownedBy(const k8s::ObjectMeta& m, const std::optional<k8s::OwnerReference>& owner) {
    if (!owner) {
      return true;  // unknown yet: nothing to add
    }
    return std::any_of(
        m.owner_references.begin(), m.owner_references.end(),
        [&](const k8s::OwnerReference& r) { return r.kind == owner->kind && r.uid == owner->uid; });
  }

  /** Sets the owner of an existing NodeStorageResource (written by an older agent, or before
   *  the Node was known; or its Node was re-created with a new uid). A merge patch of the main
   *  resource: status writes cannot change metadata. */
  Task<bool> setNsrOwner(const k8s::OwnerReference& owner) {
    const std::string ns;
    std::vector<k8s::OwnerReference> refs = {owner};
    auto patched = co_await deps.api.nodeStorageResources().setOwnerReferences(
        ns, options.node_name, std::move(refs));
    if (!patched.ok()) {
      co_return failedWrite("setting the owner of NodeStorageResource " + options.node_name,
                            patched.status());
    }
    co_return true;
  }

  Task<bool> publishNsr(const storage::InventorySnapshot& inv, bool resync) {
    const std::string& node = options.node_name;
    k8s::NodeStorageResource desired =
        buildNodeStorageResource(node, inv, formatRfc3339(std::chrono::system_clock::now()));
    const std::optional<k8s::OwnerReference> owner = nodeOwner();
    auto cached = nsrs.get("", node);
    if (cached && !resync && !nodeStorageResourceDiffers(*cached, desired) && published.load() &&
        ownedBy(cached->metadata, owner)) {
      co_return true;
    }
    auto& client = deps.api.nodeStorageResources();
    std::function<bool(k8s::NodeStorageResource&)> mutate =
        [&desired, resync](k8s::NodeStorageResource& cur) {
          if (!resync && !nodeStorageResourceDiffers(cur, desired)) {
            return false;
          }
          cur.groups = desired.groups;
          cur.update_time = desired.update_time;
          return true;
        };
    const std::string ns;
    auto written = co_await k8s::updateWithRetry(client, ns, node, mutate, true);
    if (!written.ok() && written.status().code() == absl::StatusCode::kNotFound) {
      // First publication: create (the server ignores status on create), then the status.
      k8s::NodeStorageResource fresh = desired;
      if (owner) {
        fresh.metadata.owner_references = {*owner};
      }
      auto created = co_await client.create(fresh);
      if (!created.ok() && created.status().code() != absl::StatusCode::kAlreadyExists) {
        co_return failedWrite("creating NodeStorageResource " + node, created.status());
      }
      written = co_await k8s::updateWithRetry(client, ns, node, mutate, true);
    }
    if (!written.ok()) {
      co_return failedWrite("writing NodeStorageResource status " + node, written.status());
    }
    if (!ownedBy(written->metadata, owner)) {
      const bool owned = co_await setNsrOwner(*owner);
      if (!owned) {
        co_return false;
      }
    }
    count(&ClusterAgentStats::nsr_writes);
    if (!published.exchange(true)) {
      CARINA_LOG_INFO(logger(), "NodeStorageResource published",
                      {{"node", node}, {"groups", desired.groups.size()}});
    }
    co_return true;
  }

  bool failedWrite(const std::string& what, const absl::Status& st) {
    count(&ClusterAgentStats::write_failures);
    if (k8s::isRetryable(st)) {
      CARINA_LOG_DEBUG(logger(), "API write failed, will retry",
                       {{"what", what}, {"error", msg(st)}});
    } else {
      CARINA_LOG_WARN(logger(), "API write failed", {{"what", what}, {"error", msg(st)}});
    }
    return false;
  }

  /** volume id -> (pvc namespace, name) from the PVs' claimRefs. */
  std::unordered_map<std::string, std::pair<std::string, std::string>> claimsByHandle() const {
    std::unordered_map<std::string, std::pair<std::string, std::string>> out;
    for (const auto& pv : pvs.list()) {
      if (pv->csi_driver == kDriverName && pv->claim_ref) {
        out[pv->volume_handle] = {pv->claim_ref->namespace_, pv->claim_ref->name};
      }
    }
    return out;
  }

  Task<bool> syncLogicVolumes(const std::vector<storage::Volume>& volumes, bool resync) {
    bool ok = true;
    auto& client = deps.api.logicVolumes();
    const std::string ns;
    // Deleted volumes first.
    std::set<std::string> deletes;
    {
      std::lock_guard<std::mutex> lock(mu);
      deletes = lv_deletes;
    }
    for (const std::string& id : deletes) {
      const bool exists_again = std::any_of(volumes.begin(), volumes.end(),
                                            [&](const storage::Volume& v) { return v.id == id; });
      if (!exists_again) {
        std::string name = id;
        absl::Status st = co_await client.remove(ns, name);
        if (!st.ok() && st.code() != absl::StatusCode::kNotFound) {
          ok = failedWrite("deleting LogicVolume " + id, st);
          continue;
        }
        if (st.ok()) {
          count(&ClusterAgentStats::lv_deletes);
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      lv_deletes.erase(id);
      pvc_hints.erase(id);
      fresh_volumes.erase(id);
    }
    auto claims = claimsByHandle();
    for (const storage::Volume& vol : volumes) {
      std::pair<std::string, std::string> pvc;
      const auto claim = claims.find(vol.id);
      bool is_fresh = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        is_fresh = fresh_volumes.count(vol.id) != 0;
        if (auto h = pvc_hints.find(vol.id); h != pvc_hints.end()) {
          pvc = h->second;
        }
      }
      if (claim != claims.end()) {
        pvc = claim->second;
      }
      auto cached = lvs.get("", vol.id);
      if (!cached && !is_fresh && claim == claims.end()) {
        // Neither created by this process nor referenced by a PV: an orphan candidate. Its
        // LogicVolume is not invented here; the orphan reconciler judges it.
        continue;
      }
      k8s::LogicVolume desired = buildLogicVolume(options.node_name, vol, pvc.first, pvc.second);
      if (cached && !resync) {
        LogicVolumeDiff d = diffLogicVolume(*cached, desired);
        if (!d.any() || d.other_node) {
          continue;
        }
      }
      if (!co_await writeLogicVolume(desired, cached != nullptr)) {
        ok = false;
        continue;
      }
      std::lock_guard<std::mutex> lock(mu);
      fresh_volumes.erase(vol.id);
    }
    co_return ok;
  }

  Task<bool> writeLogicVolume(const k8s::LogicVolume& desired, bool exists) {
    auto& client = deps.api.logicVolumes();
    const std::string ns;
    const std::string name = desired.metadata.name;
    if (!exists) {
      k8s::LogicVolume fresh = desired;
      auto created = co_await client.create(fresh);
      if (created.ok()) {
        count(&ClusterAgentStats::lv_creates);
        CARINA_LOG_INFO(logger(), "LogicVolume created",
                        {{"name", name}, {"pvc", desired.pvc_namespace + "/" + desired.pvc_name}});
      } else if (created.status().code() != absl::StatusCode::kAlreadyExists) {
        co_return failedWrite("creating LogicVolume " + name, created.status());
      }
    }
    bool other_node = false;
    std::function<bool(k8s::LogicVolume&)> spec = [&desired, &other_node](k8s::LogicVolume& cur) {
      LogicVolumeDiff d = diffLogicVolume(cur, desired);
      other_node = d.other_node;
      if (d.other_node || !d.spec) {
        return false;
      }
      applyLogicVolumeSpec(cur, desired);
      return true;
    };
    auto w1 = co_await k8s::updateWithRetry(client, ns, name, spec, false);
    if (!w1.ok()) {
      co_return failedWrite("updating LogicVolume " + name, w1.status());
    }
    if (other_node) {
      CARINA_LOG_WARN(logger(), "LogicVolume records the volume on another node; left alone",
                      {{"name", name}, {"recorded_node", w1->node_name}});
      co_return true;
    }
    std::function<bool(k8s::LogicVolume&)> status = [&desired](k8s::LogicVolume& cur) {
      if (!diffLogicVolume(cur, desired).status) {
        return false;
      }
      applyLogicVolumeStatus(cur, desired);
      return true;
    };
    auto w2 = co_await k8s::updateWithRetry(client, ns, name, status, true);
    if (!w2.ok()) {
      co_return failedWrite("updating LogicVolume status " + name, w2.status());
    }
    count(&ClusterAgentStats::lv_updates);
    co_return true;
  }

  // --- events ---

  /** The PVC of a volume: from the PV whose handle is @p volume_id. */
  std::optional<k8s::ObjectReference> pvcOfVolume(const std::string& volume_id) const {
    for (const auto& pv : pvs.list()) {
      if (pv->csi_driver == kDriverName && pv->volume_handle == volume_id && pv->claim_ref) {
        return pvcRef(pv->claim_ref->namespace_, pv->claim_ref->name);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    if (auto h = pvc_hints.find(volume_id); h != pvc_hints.end()) {
      return pvcRef(h->second.first, h->second.second);
    }
    return std::nullopt;
  }

  k8s::ObjectReference pvcRef(const std::string& ns, const std::string& name) const {
    if (auto cached = pvcs.get(ns, name)) {
      return pvcReference(*cached);
    }
    k8s::ObjectReference r;
    r.kind = "PersistentVolumeClaim";
    r.api_version = "v1";
    r.namespace_ = ns;
    r.name = name;
    return r;
  }

  void reportOrphan(const OrphanEvent& e) {
    k8s::ObjectReference ref = nodeReference(options.node_name);
    if (e.target == OrphanTarget::LogicVolume) {
      k8s::LogicVolume gone;  // already deleted: only its name is left
      gone.metadata.name = e.name;
      auto cached = lvs.get("", e.name);
      ref = logicVolumeReference(cached ? *cached : gone);
    }
    events.record(ref, e.warning ? EventType::Warning : EventType::Normal, e.reason, e.message);
  }
};

ClusterAgent::ClusterAgent(ClusterAgentDeps deps, ClusterAgentOptions options)
    : state_(std::make_shared<State>(std::move(deps), std::move(options))) {}

ClusterAgent::~ClusterAgent() { stop(); }

absl::Status ClusterAgent::start() {
  auto s = state_;
  if (s->options.node_name.empty()) {
    return absl::InvalidArgumentError("cluster mode needs a node name (NODE_NAME)");
  }
  if (s->options.tick <= std::chrono::milliseconds(0) ||
      s->options.resync <= std::chrono::milliseconds(0) ||
      s->options.liveness <= std::chrono::milliseconds(0)) {
    return absl::InvalidArgumentError("cluster agent periods must be positive");
  }
  if (s->loop_running.exchange(true)) {
    return absl::FailedPreconditionError("cluster agent already started");
  }
  // Last known labels first: a restart during an API outage keeps the node's selectors.
  if (auto cached = loadCachedLabels(s->options.state_dir)) {
    {
      std::lock_guard<std::mutex> lock(s->mu);
      s->labels = *cached;
    }
    if (s->deps.on_node_labels) {
      s->deps.on_node_labels(*cached);
    }
  }
  s->wireInformers();
  s->nodes.start();
  s->pvcs.start();
  s->pvs.start();
  s->classes.start();
  s->nsrs.start();
  s->lvs.start();

  OrphanDeps od;
  std::weak_ptr<State> weak = s;
  od.cluster_view = [weak]() {
    ClusterView v;
    auto st = weak.lock();
    if (!st) {
      return v;
    }
    v.caches_synced = st->cachesSynced() && st->apiLive();
    for (const auto& pv : st->pvs.list()) {
      if (pv->csi_driver == kDriverName) {
        v.pv_volume_handles.insert(pv->volume_handle);
      }
    }
    for (const auto& lv : st->lvs.list()) {
      LogicVolumeRef r;
      r.name = lv->metadata.name;
      r.volume_id = lv->volume_id;
      r.node = lv->node_name;
      r.created = parseKubeTimestamp(lv->metadata.creation_timestamp);
      r.deleting = !lv->metadata.deletion_timestamp.empty();
      v.logic_volumes.push_back(std::move(r));
    }
    return v;
  };
  auto& backend = s->deps.backend;
  od.local_volumes = [&backend]() -> absl::StatusOr<std::vector<LocalVolume>> {
    return toLocalVolumes(backend.listVolumes());
  };
  od.device_use = s->deps.device_use;
  od.delete_volume = [&backend, locks = s->deps.volume_locks](const std::string& id) {
    if (locks == nullptr) {
      return backend.deleteVolume(id);
    }
    std::optional<csi::VolumeLocks::Guard> guard = locks->tryLock(id);
    if (!guard) {
      return absl::AbortedError("volume " + id + " is busy with a CSI operation");
    }
    return backend.deleteVolume(id);
  };
  k8s::ResourceClient<k8s::LogicVolume>* lv_client = &s->deps.api.logicVolumes();
  od.delete_logic_volume = [lv_client](std::string name) -> Task<absl::Status> {
    const std::string ns;
    absl::Status st = co_await lv_client->remove(ns, name);
    if (st.code() == absl::StatusCode::kNotFound) {
      co_return absl::OkStatus();
    }
    co_return st;
  };
  od.report = [weak](const OrphanEvent& e) {
    if (auto st = weak.lock()) {
      st->reportOrphan(e);
      st->dirty = true;  // a deleted volume changes the inventory
    }
  };
  OrphanOptions oo = s->options.orphans;
  oo.node_name = s->options.node_name;
  s->orphans =
      std::make_unique<OrphanReconciler>(s->deps.executor, s->deps.blocking, oo, std::move(od));
  if (absl::Status st = s->orphans->start(); !st.ok()) {
    return annotate(st, "orphan reconciler");
  }
  net::co_spawn(s->strand, s->run(), [s](std::exception_ptr e) {
    s->loop_running = false;
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        CARINA_LOG_ERROR(logger(), "cluster sync loop failed", {{"error", ex.what()}});
      }
    }
  });
  CARINA_LOG_INFO(logger(), "cluster mode started", {{"node", s->options.node_name}});
  return absl::OkStatus();
}

void ClusterAgent::stop() {
  auto s = state_;
  if (s->stopping.exchange(true)) {
    return;
  }
  if (s->orphans) {
    s->orphans->stop();
  }
  s->events.stop();
  s->nodes.stop();
  s->pvcs.stop();
  s->pvs.stop();
  s->classes.stop();
  s->nsrs.stop();
  s->lvs.stop();
  net::post(s->strand, [s] { s->timer.cancel(); });
}

bool ClusterAgent::stopped() const {
  auto& s = *state_;
  return s.stopping && !s.loop_running && !s.nodes.running() && !s.pvcs.running() &&
         !s.pvs.running() && !s.classes.running() && !s.nsrs.running() && !s.lvs.running() &&
         s.events.idle();
}

void ClusterAgent::inventoryChanged() { state_->dirty = true; }

bool ClusterAgent::cachesSynced() const { return state_->cachesSynced(); }

bool ClusterAgent::published() const { return state_->published.load(); }

absl::Status ClusterAgent::updateOrphanOptions(OrphanOptions options) {
  if (!state_->orphans) {
    return absl::FailedPreconditionError("cluster agent not started");
  }
  options.node_name = state_->options.node_name;
  return state_->orphans->updateOptions(std::move(options));
}

ClusterAgentStats ClusterAgent::stats() const {
  auto& s = *state_;
  ClusterAgentStats out;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    out = s.counters;
  }
  out.api_live = s.apiLive();
  out.caches_synced = s.cachesSynced() && out.api_live;
  if (s.orphans) {
    out.orphans = s.orphans->stats();
  }
  out.events = s.events.stats();
  return out;
}

Task<OrphanRunReport> ClusterAgent::reconcileOrphansNow() {
  auto s = state_;
  if (!s->orphans) {
    OrphanRunReport r;
    r.status = absl::FailedPreconditionError("cluster agent not started");
    co_return r;
  }
  Task<OrphanRunReport> pass = s->orphans->runOnce();
  co_return co_await std::move(pass);
}

std::optional<std::map<std::string, std::string>> ClusterAgent::loadCachedLabels(
    const std::string& state_dir) {
  if (state_dir.empty()) {
    return std::nullopt;
  }
  std::ifstream in(std::filesystem::path(state_dir) / kLabelsFile);
  if (!in) {
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto labels = labelsFromJson(ss.str());
  if (!labels) {
    CARINA_LOG_WARN(logger(), "ignoring a malformed node-labels cache", {{"dir", state_dir}});
  }
  return labels;
}

// --- csi::VolumeObserver (called on the agent executor: quick, no I/O) ---

void ClusterAgent::volumeCreated(const std::string& volume_id, const std::string& name,
                                 const std::map<std::string, std::string>& parameters) {
  auto& s = *state_;
  auto pn = parameters.find(std::string(kPvcNameParam));
  auto pns = parameters.find(std::string(kPvcNamespaceParam));
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (pn != parameters.end() && pns != parameters.end()) {
      s.pvc_hints[volume_id] = {pns->second, pn->second};
    }
    s.fresh_volumes.insert(volume_id);
    s.lv_deletes.erase(volume_id);
  }
  (void)name;
  s.dirty = true;
}

void ClusterAgent::createFailed(const std::string& name,
                                const std::map<std::string, std::string>& parameters,
                                const absl::Status& status) {
  auto& s = *state_;
  auto pn = parameters.find(std::string(kPvcNameParam));
  auto pns = parameters.find(std::string(kPvcNamespaceParam));
  if (pn == parameters.end() || pns == parameters.end()) {
    return;  // no PVC to tell (not from external-provisioner with --extra-create-metadata)
  }
  s.events.record(s.pvcRef(pns->second, pn->second), EventType::Warning, "ProvisioningFailed",
                  "carina on node " + s.options.node_name + ": creating volume " + name + ": " +
                      std::string(absl::StatusCodeToString(status.code())) + ": " + msg(status));
}

void ClusterAgent::volumeDeleted(const std::string& volume_id) {
  auto& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.lv_deletes.insert(volume_id);
  }
  s.dirty = true;
}

void ClusterAgent::volumeExpanded(const std::string& volume_id) {
  (void)volume_id;
  state_->dirty = true;
}

void ClusterAgent::expandFailed(const std::string& volume_id, const absl::Status& status) {
  auto& s = *state_;
  auto ref = s.pvcOfVolume(volume_id);
  if (!ref) {
    return;
  }
  s.events.record(*ref, EventType::Warning, "VolumeResizeFailed",
                  "carina on node " + s.options.node_name + ": expanding volume " + volume_id +
                      ": " + std::string(absl::StatusCodeToString(status.code())) + ": " +
                      msg(status));
}

}  // namespace carina::cluster
