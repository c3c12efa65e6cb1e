#include "agent/app/app.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <sys/stat.h>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include "agent/app/inventory_json.h"
#include "agent/cluster/cluster_agent.h"
#include "agent/core/blocking.h"
#include "agent/core/log.h"
#include "agent/core/status.h"
#include "agent/os/linux/blkid_probe.h"
#include "agent/os/linux/device_use.h"
#include "agent/os/linux/fdisk_partition_table.h"
#include "agent/os/linux/inotify_file_watcher.h"
#include "agent/os/linux/linux_mounter.h"
#include "agent/os/linux/spawn_command_runner.h"
#include "agent/os/linux/udev_block_devices.h"
#include "agent/storage/disk_discovery.h"
#include "agent/storage/partition_engine.h"
#include "csi/services.h"
#include "csi/volume_locks.h"
#include "extender/cluster_view.h"
#include "extender/extender_service.h"
#include "extender/http_server.h"
#include "extender/request_stats.h"
#include "k8s-client/kube_client.h"

#ifndef CARINA_VERSION
#define CARINA_VERSION "0.0.0"
#endif

namespace carina::app {
namespace {

namespace net = boost::asio;

log::Logger& logger() { return log::get("app"); }

absl::Status initLogging(const core::LoggingConfig& cfg) {
  CARINA_ASSIGN_OR_RETURN(log::Level level, log::parseLevel(cfg.level));
  log::setGlobalLevel(level);
  if (cfg.format == "text") {
    log::setFormat(log::Format::Text);
  } else if (cfg.format == "json") {
    log::setFormat(log::Format::Json);
  } else {
    return absl::InvalidArgumentError("logging.format: \"" + cfg.format + "\" (json|text)");
  }
  for (const auto& [component, name] : cfg.components) {
    CARINA_ASSIGN_OR_RETURN(log::Level l, log::parseLevel(name));
    log::setComponentLevel(component, l);
  }
  return absl::OkStatus();
}

std::string resolveNodeName(const core::AgentConfig& cfg) {
  if (!cfg.node_name.empty()) {
    return cfg.node_name;
  }
  if (const char* env = std::getenv("NODE_NAME"); env != nullptr && *env != '\0') {
    return env;
  }
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) {
    return host;
  }
  return "localhost";
}

/**
 * Hands disk lists from discovery to the engine, one at a time and in order: while an apply
 * runs on the blocking pool, newer lists replace each other and only the newest is applied next.
 * After each apply the published inventory (extender supply, readiness) is refreshed.
 */
class DiskApplier {
public:
  DiskApplier(Executor executor, net::thread_pool& pool, storage::PartitionEngine& engine,
              std::function<void()> after_apply)
      : executor_(std::move(executor)),
        pool_(pool),
        engine_(engine),
        after_apply_(std::move(after_apply)) {}

  void submit(std::vector<storage::DiskInfo> disks) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_ = std::move(disks);
      if (running_) {
        return;
      }
      running_ = true;
    }
    // Outside the lock: co_spawn may start drain() inline on this thread.
    net::co_spawn(executor_, drain(), [](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          CARINA_LOG_ERROR(logger(), "disk apply failed", {{"error", ex.what()}});
        }
      }
    });
  }

  bool appliedOnce() const { return applied_once_.load(); }

private:
  Task<void> drain() {
    for (;;) {
      std::vector<storage::DiskInfo> disks;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!pending_) {
          running_ = false;
          co_return;
        }
        disks = std::move(*pending_);
        pending_.reset();
      }
      auto apply = [&] { return engine_.setDisks(disks); };  // named: see blocking.h
      absl::Status st = co_await runBlocking(pool_, apply);
      if (!st.ok()) {
        CARINA_LOG_WARN(logger(), "some disks could not be taken",
                        {{"error", std::string(st.message())}});
      }
      applied_once_.store(true);
      after_apply_();
    }
  }

  Executor executor_;
  net::thread_pool& pool_;
  storage::PartitionEngine& engine_;
  std::function<void()> after_apply_;
  std::mutex mu_;
  std::optional<std::vector<storage::DiskInfo>> pending_;
  bool running_ = false;
  std::atomic<bool> applied_once_{false};
};

/** The API client's configuration: the kubeconfig named in the config, else the pod's service
 *  account; rate limit and timeout from the config. */
absl::StatusOr<k8s::ClientConfig> clientConfig(const core::KubernetesConfig& kc) {
  absl::StatusOr<k8s::ClientConfig> out =
      kc.kubeconfig.empty() ? k8s::inClusterConfig() : k8s::loadKubeconfigFile(kc.kubeconfig);
  if (!out.ok()) {
    return annotate(out.status(), kc.kubeconfig.empty()
                                      ? "in-cluster API configuration (set kubernetes.kubeconfig "
                                        "outside a pod)"
                                      : "kubeconfig " + kc.kubeconfig);
  }
  out->qps = kc.qps;
  out->burst = static_cast<int>(kc.burst);
  out->request_timeout = std::chrono::seconds(kc.request_timeout_seconds);
  return out;
}

/** The node's labels, shared by the config reload and the cluster agent: discovery is always
 *  configured from the newest config and the newest labels together. */
class DiscoveryConfigSource {
public:
  DiscoveryConfigSource(core::AgentConfig cfg,
                        std::optional<std::map<std::string, std::string>> labels)
      : cfg_(std::move(cfg)), labels_(std::move(labels)) {}
  storage::DiscoveryConfig withConfig(core::AgentConfig cfg) {
    std::lock_guard<std::mutex> lock(mu_);
    cfg_ = std::move(cfg);
    return storage::DiscoveryConfig::fromAgentConfig(cfg_, labels_);
  }
  storage::DiscoveryConfig withLabels(std::map<std::string, std::string> labels) {
    std::lock_guard<std::mutex> lock(mu_);
    labels_ = std::move(labels);
    return storage::DiscoveryConfig::fromAgentConfig(cfg_, labels_);
  }
  storage::DiscoveryConfig current() {
    std::lock_guard<std::mutex> lock(mu_);
    return storage::DiscoveryConfig::fromAgentConfig(cfg_, labels_);
  }

private:
  std::mutex mu_;
  core::AgentConfig cfg_;
  std::optional<std::map<std::string, std::string>> labels_;
};

}  // namespace

int run(const core::AgentConfig& cfg) {
  if (absl::Status st = initLogging(cfg.logging); !st.ok()) {
    std::fprintf(stderr, "carina-agent: %s\n", std::string(st.message()).c_str());
    return 78;  // EX_CONFIG
  }
  const std::string node = resolveNodeName(cfg);
  std::optional<k8s::ClientConfig> kube_config;
  if (!cfg.standalone) {
    auto kc = clientConfig(cfg.kubernetes);
    if (!kc.ok()) {
      CARINA_LOG_ERROR(logger(), "cluster mode needs the API server",
                       {{"error", std::string(kc.status().message())},
                        {"hint", "run with --standalone to use the agent without Kubernetes"}});
      return 78;
    }
    kube_config = std::move(*kc);
  }
  std::error_code ec;
  std::filesystem::create_directories(cfg.state_dir, ec);
  if (ec) {
    CARINA_LOG_ERROR(logger(), "cannot create state directory",
                     {{"dir", cfg.state_dir}, {"error", ec.message()}});
    return 1;
  }
  CARINA_LOG_INFO(logger(), "starting carina-agent",
                  {{"version", CARINA_VERSION},
                   {"node", node},
                   {"standalone", cfg.standalone},
                   {"csi_endpoint", cfg.csi.endpoint},
                   {"http_listen", cfg.extender.listen},
                   {"groups", cfg.disk_selectors.size()}});

  net::io_context ioc;
  net::thread_pool blocking(4);
  auto work = net::make_work_guard(ioc);

  // Cluster mode: the API client (all its I/O on one strand) and the node labels known from an
  // earlier run. Until the Node is read, selectors with a nodeLabel apply only with the cached
  // labels (none on a first start): a disk is never taken on a guess.
  std::unique_ptr<k8s::KubeClient> kube;
  std::optional<std::map<std::string, std::string>> labels;
  if (kube_config) {
    auto client = k8s::makeKubeClient(net::make_strand(ioc), *kube_config);
    if (!client.ok()) {
      CARINA_LOG_ERROR(logger(), "Kubernetes client failed",
                       {{"error", std::string(client.status().message())}});
      return 1;
    }
    kube = std::move(*client);
    labels = cluster::ClusterAgent::loadCachedLabels(cfg.state_dir)
                 .value_or(std::map<std::string, std::string>{});
  }
  DiscoveryConfigSource discovery_config(cfg, labels);

  // Storage: the partition engine over libfdisk, fed by discovery.
  storage::PartitionEngine engine(os::makeFdiskPartitionTableFactory());
  extender::InMemoryClusterView view;
  std::atomic<cluster::ClusterAgent*> cluster_agent{nullptr};
  auto refresh = [&] {
    storage::InventorySnapshot snap = engine.snapshot();
    view.setNodeSupply(extender::supplyFromInventory(node, snap));
    if (cluster::ClusterAgent* ca = cluster_agent.load()) {
      ca->inventoryChanged();
    }
  };
  DiskApplier applier(ioc.get_executor(), blocking, engine, refresh);
  storage::DiskDiscovery discovery(
      ioc.get_executor(), blocking, os::makeUdevBlockDeviceSource(), os::makeBlkidSignatureProber(),
      discovery_config.current(),
      [&](const std::vector<storage::DiskInfo>& disks) { applier.submit(disks); });
  if (absl::Status st = discovery.start(); !st.ok()) {
    CARINA_LOG_ERROR(logger(), "disk discovery failed to start",
                     {{"error", std::string(st.message())}});
    return 1;
  }

  // Node runtime: commands (mkfs, growfs) and mounts.
  os::SpawnCommandRunner runner;
  os::LinuxMounter mounter;

  // HTTP: scheduler extender, health, inventory.
  extender::ExtenderService extender_service(view, cfg.extender, cfg.scheduler_strategy);
  extender::RequestStats http_stats;
  extender::HttpServerOptions http_options = extender::serverOptions(cfg.extender);
  http_options.on_request = [&http_stats](const std::string& path, unsigned status,
                                          std::chrono::microseconds elapsed) {
    http_stats.record(path, status, elapsed);
  };
  extender::HttpServerPtr http = extender::makeHttpServer(ioc.get_executor(), http_options);
  extender_service.registerRoutes(*http, /*with_healthz=*/true);
  http->route("GET", "/readyz", [&](const extender::HttpRequest&) {
    extender::HttpResponse r;
    r.content_type = "text/plain";
    r.status = applier.appliedOnce() ? 200 : 503;
    r.body = applier.appliedOnce() ? "ready\n" : "waiting for the first disk scan\n";
    return r;
  });
  http->route("GET", "/debug/inventory", [&](const extender::HttpRequest&) {
    extender::HttpResponse r;
    r.body = inventoryToJson(engine.snapshot(), node);
    return r;
  });
  http->route("GET", "/debug/extender", [&](const extender::HttpRequest&) {
    extender::HttpResponse r;
    r.body = http_stats.json();
    return r;
  });
  http->route("GET", "/debug/cluster", [&](const extender::HttpRequest&) {
    extender::HttpResponse r;
    cluster::ClusterAgent* ca = cluster_agent.load();
    if (ca == nullptr) {
      r.status = 404;
      r.content_type = "text/plain";
      r.body = "not in cluster mode\n";
      return r;
    }
    r.body = clusterStatsToJson(ca->stats());
    return r;
  });
  if (absl::Status st = http->start(); !st.ok()) {
    CARINA_LOG_ERROR(logger(), "HTTP endpoint failed to start",
                     {{"listen", cfg.extender.listen}, {"error", std::string(st.message())}});
    discovery.stop();
    return 1;
  }

  // CSI on the unix socket.
  csi::ServiceOptions csi_options;
  csi_options.node_name = node;
  csi_options.endpoint = cfg.csi.endpoint;
  csi_options.kubelet_dir = cfg.csi.kubelet_dir;
  csi_options.max_volumes_per_node = cfg.csi.max_volumes_per_node;
  csi_options.version = CARINA_VERSION;
  // The external-resizer may ask any agent: one that does not hold the volume defers to the
  // owning node's NodeExpandVolume.
  csi_options.expand_unknown_on_node = !cfg.standalone;

  // Cluster mode: informers, NodeStorageResource and LogicVolumes, Events, orphan reconciler.
  // One set of per-volume locks for the CSI services and the orphan reconciler.
  csi::VolumeLocks volume_locks;
  std::unique_ptr<cluster::ClusterAgent> cluster;
  if (kube) {
    cluster::ClusterAgentOptions co;
    co.node_name = node;
    co.state_dir = cfg.state_dir;
    co.resync = std::chrono::seconds(std::max<uint32_t>(cfg.kubernetes.resync_seconds, 1));
    co.orphans = cluster::orphanOptionsFromConfig(cfg.reconciler, node);
    cluster = std::make_unique<cluster::ClusterAgent>(
        cluster::ClusterAgentDeps{
            ioc.get_executor(), blocking, *kube, engine, view,
            [&](const std::map<std::string, std::string>& l) {
              if (absl::Status st = discovery.updateConfig(discovery_config.withLabels(l));
                  !st.ok()) {
                CARINA_LOG_ERROR(logger(), "node labels rejected by discovery",
                                 {{"error", std::string(st.message())}});
              }
            },
            [](const std::string& device) -> absl::StatusOr<cluster::DeviceUseAnswer> {
              auto use = os::checkBlockDeviceUse(device);
              if (!use.ok()) {
                return use.status();
              }
              return cluster::DeviceUseAnswer{use->in_use, use->reason};
            },
            &volume_locks},
        co);
    if (absl::Status st = cluster->start(); !st.ok()) {
      CARINA_LOG_ERROR(logger(), "cluster mode failed to start",
                       {{"error", std::string(st.message())}});
      http->stop();
      discovery.stop();
      return 1;
    }
    cluster_agent.store(cluster.get());
  }

  auto csi_server = csi::CsiServer::start(
      csi::ServiceDeps{csi_options, engine, mounter, runner, ioc.get_executor(), blocking,
                       [&] { return applier.appliedOnce(); }, cluster.get(), &volume_locks});
  if (!csi_server.ok()) {
    CARINA_LOG_ERROR(
        logger(), "CSI server failed to start",
        {{"endpoint", cfg.csi.endpoint}, {"error", std::string(csi_server.status().message())}});
    http->stop();
    discovery.stop();
    return 1;
  }

  // Config file watch: a change is re-parsed; a valid one updates discovery and the strategy,
  // an invalid one is logged and ignored (the agent keeps running on the last good config).
  os::FileWatcherPtr watcher;
  if (!cfg.config_path.empty()) {
    watcher = os::makeInotifyFileWatcher(ioc.get_executor(), cfg.config_path, [&] {
      auto next = core::loadConfigFile(cfg.config_path);
      if (!next.ok()) {
        CARINA_LOG_ERROR(logger(), "config change rejected, keeping the previous config",
                         {{"error", std::string(next.status().message())}});
        return;
      }
      if (absl::Status st = discovery.updateConfig(discovery_config.withConfig(*next)); !st.ok()) {
        CARINA_LOG_ERROR(logger(), "config change rejected by discovery",
                         {{"error", std::string(st.message())}});
        return;
      }
      extender_service.setStrategy(next->scheduler_strategy);
      if (cluster) {
        if (absl::Status st = cluster->updateOrphanOptions(
                cluster::orphanOptionsFromConfig(next->reconciler, node));
            !st.ok()) {
          CARINA_LOG_ERROR(logger(), "reconciler settings not applied",
                           {{"error", std::string(st.message())}});
        }
      }
      CARINA_LOG_INFO(logger(), "config reloaded", {{"path", cfg.config_path}});  // rescans
    });
    if (absl::Status st = watcher->start(); !st.ok()) {
      CARINA_LOG_WARN(logger(), "config file is not watched",
                      {{"error", std::string(st.message())}});
    }
  }

  // Run until SIGINT/SIGTERM. The io threads keep running during shutdown so that in-flight
  // CSI handlers can finish; the main thread drives the shutdown order.
  std::promise<int> stop_signal;
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& error, int signo) {
    if (!error) {
      stop_signal.set_value(signo);  // async_wait fires once: set_value runs at most once
    }
  });
  std::vector<std::thread> io_threads;
  for (int i = 0; i < 2; ++i) {
    io_threads.emplace_back([&ioc] { ioc.run(); });
  }
  CARINA_LOG_INFO(logger(), "carina-agent running",
                  {{"csi_socket", (*csi_server)->socketPath()}, {"http_port", http->port()}});
  int signo = stop_signal.get_future().get();
  CARINA_LOG_INFO(logger(), "shutting down", {{"signal", signo}});

  // Stop accepting, then drain: CSI (waits for in-flight RPCs up to the grace), HTTP, watchers.
  (*csi_server)->shutdown(std::chrono::seconds(10));
  if (cluster) {
    cluster_agent.store(nullptr);
    cluster->stop();
    for (int i = 0; i < 100 && !cluster->stopped(); ++i) {  // in-flight API requests: <= 5 s
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  http->stop();
  if (watcher) {
    watcher->stop();
  }
  discovery.stop();
  work.reset();
  blocking.join();
  ioc.stop();
  for (std::thread& t : io_threads) {
    t.join();
  }
  CARINA_LOG_INFO(logger(), "stopped");
  return 0;
}

}  // namespace carina::app
