// k8s_cache_bench: memory and speed of carina's informer caches.
//
// An in-process stand-in API server (TLS on loopback, tests/k8s_server) holds 5,000 Nodes,
// 5,000 NodeStorageResources and 20,000 PVCs. The benchmark starts one informer per type through
// the real client and prints: resident memory (VmRSS) before and after the caches are filled,
// the time of the initial sync and of a full relist (paged LIST of all 30,000 objects), and the
// rate at which the PVC informer applies watch events (50,000 MODIFIED events).
//
// The server runs in the same process on its own thread: the RSS delta "caches" is measured
// after the server was filled, so it covers the client side (cached objects incl. their raw
// JSON, decode buffers) only.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "agent/core/log.h"
#include "k8s-client/informer.h"
#include "k8s-client/kube_client.h"
#include "tests/k8s_server/fake_api_server.h"

namespace {

namespace net = boost::asio;
using namespace carina::k8s;
using Clock = std::chrono::steady_clock;

constexpr int kNodes = 5000;
constexpr int kPvcs = 20000;
constexpr int kEvents = 50000;

long vmRssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stol(line.substr(6));
    }
  }
  return -1;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

bool runUntil(net::io_context& ioc, const std::function<bool()>& pred,
              std::chrono::seconds timeout = std::chrono::seconds(300)) {
  auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() >= deadline) {
      return false;
    }
    ioc.restart();
    ioc.run_for(std::chrono::milliseconds(2));
  }
  return true;
}

std::string nodeJson(int i) {
  std::string n = "node-" + std::to_string(i);
  return R"({"metadata":{"name":")" + n + R"(","labels":{"kubernetes.io/hostname":")" + n +
         R"(","kubernetes.io/os":"linux","topology.carina.storage.io/node":")" + n +
         R"("}},"spec":{"podCIDR":"10.)" + std::to_string(i / 256) + "." + std::to_string(i % 256) +
         R"(.0/24"},"status":{"capacity":{"cpu":"16","memory":"64Gi"},"nodeInfo":{"kernelVersion":"6.1.0","osImage":"Debian GNU/Linux 12"}}})";
}

std::string nsrJson(int i) {
  std::string n = "node-" + std::to_string(i);
  return R"({"metadata":{"name":")" + n + R"("},"spec":{"nodeName":")" + n +
         R"("},"status":{"updateTime":"2026-01-01T00:00:00Z","groups":[)"
         R"({"name":"ssd","policy":"RAW","totalBytes":4000787030016,"freeBytes":2000393515008,)"
         R"("largestAllocatableBytes":1000196757504,"emptyDisks":1,"disks":[)"
         R"({"name":"nvme0n1","sizeBytes":1000204886016,"partitions":2,"exclusive":false,)"
         R"("freeSegments":[{"start":1048576,"length":500000000000},{"start":600000000000,"length":400000000000}]},)"
         R"({"name":"nvme1n1","sizeBytes":1000204886016,"partitions":0,"exclusive":false,)"
         R"("freeSegments":[{"start":1048576,"length":1000196757504}]}]},)"
         R"({"name":"hdd","policy":"LVM","totalBytes":8000000000000,"freeBytes":6000000000000,)"
         R"("largestAllocatableBytes":6000000000000,"emptyDisks":0,"volumeGroup":"carina-vg-hdd"}]}})";
}

std::string pvcJson(int i) {
  std::string ns = "ns-" + std::to_string(i % 50);
  std::string n = "data-" + std::to_string(i);
  return R"({"metadata":{"name":")" + n + R"(","namespace":")" + ns + R"(","labels":{"app":"db-)" +
         std::to_string(i % 100) +
         R"("},"annotations":{"volume.kubernetes.io/selected-node":"node-)" +
         std::to_string(i % kNodes) +
         R"(","volume.kubernetes.io/storage-provisioner":"carina.storage.io"},"finalizers":["kubernetes.io/pvc-protection"]},)"
         R"("spec":{"accessModes":["ReadWriteOnce"],"storageClassName":"carina-lvm","volumeMode":"Filesystem",)"
         R"("resources":{"requests":{"storage":")" +
         std::to_string(1 + i % 100) + R"(Gi"}}},"status":{"phase":"Pending"}})";
}

}  // namespace

int main() {
  carina::log::setGlobalLevel(carina::log::Level::Warn);
  long rss_start = vmRssKiB();
  carina::test::FakeApiServerOptions opts;
  opts.history_window = kEvents + 1000;
  carina::test::FakeApiServer server(opts);
  {
    std::vector<std::string> nodes, nsrs, pvcs;
    for (int i = 0; i < kNodes; ++i) {
      nodes.push_back(nodeJson(i));
      nsrs.push_back(nsrJson(i));
    }
    for (int i = 0; i < kPvcs; ++i) {
      pvcs.push_back(pvcJson(i));
    }
    if (!server.upsertMany(Node::kResource, nodes).ok() ||
        !server.upsertMany(NodeStorageResource::kResource, nsrs).ok() ||
        !server.upsertMany(PersistentVolumeClaim::kResource, pvcs).ok()) {
      std::fprintf(stderr, "failed to fill the server\n");
      return 1;
    }
  }
  long rss_server = vmRssKiB();

  net::io_context ioc;
  ClientConfig cfg = server.clientConfig();
  cfg.qps = 0;
  cfg.request_timeout = std::chrono::seconds(120);
  auto client = makeKubeClient(ioc.get_executor(), cfg);
  if (!client.ok()) {
    std::fprintf(stderr, "client: %s\n", std::string((*&client).status().message()).c_str());
    return 1;
  }
  InformerOptions io;
  io.page_size = 500;
  Informer<Node> nodes(ioc.get_executor(), (*client)->nodes(), io);
  Informer<NodeStorageResource> nsrs(ioc.get_executor(), (*client)->nodeStorageResources(), io);
  Informer<PersistentVolumeClaim> pvcs(ioc.get_executor(), (*client)->persistentVolumeClaims(), io);
  uint64_t pvc_updates = 0;
  pvcs.addHandlers(
      {nullptr, [&](const PersistentVolumeClaim&, const PersistentVolumeClaim&) { ++pvc_updates; },
       nullptr});
  auto t0 = Clock::now();
  nodes.start();
  nsrs.start();
  pvcs.start();
  if (!runUntil(ioc, [&] { return nodes.hasSynced() && nsrs.hasSynced() && pvcs.hasSynced(); })) {
    std::fprintf(stderr, "informers did not sync\n");
    return 1;
  }
  auto t_sync = Clock::now();
  // Let the watches open and the allocator settle before measuring.
  runUntil(ioc, [&] { return server.activeWatches() == 3; });
  long rss_caches = vmRssKiB();

  // Full relist of all three types (what a 410 costs), through the same client.
  auto relist = [&]() -> carina::Task<std::size_t> {
    ListOptions lo;
    lo.limit = 500;
    auto a = co_await listAll((*client)->nodes(), "", lo);
    auto b = co_await listAll((*client)->nodeStorageResources(), "", lo);
    auto c = co_await listAll((*client)->persistentVolumeClaims(), "", lo);
    co_return (a.ok() ? a->items.size() : 0) + (b.ok() ? b->items.size() : 0) +
        (c.ok() ? c->items.size() : 0);
  };
  std::size_t relisted = 0;
  bool relist_done = false;
  auto t_relist0 = Clock::now();
  net::co_spawn(ioc, relist(), [&](std::exception_ptr, std::size_t n) {
    relisted = n;
    relist_done = true;
  });
  runUntil(ioc, [&] { return relist_done; });
  auto t_relist1 = Clock::now();

  // Watch throughput: 50,000 MODIFIED PVC events, produced in one server turn.
  std::vector<carina::test::FakeApiServer::PatchSpec> patches;
  patches.reserve(kEvents);
  for (int i = 0; i < kEvents; ++i) {
    int p = i % kPvcs;
    patches.push_back(
        {"ns-" + std::to_string(p % 50), "data-" + std::to_string(p),
         R"({"metadata":{"annotations":{"bench/seq":")" + std::to_string(i) + R"("}}})"});
  }
  auto t_ev0 = Clock::now();
  if (!server.patchMany(PersistentVolumeClaim::kResource, patches).ok()) {
    std::fprintf(stderr, "patchMany failed\n");
    return 1;
  }
  auto t_produced = Clock::now();
  if (!runUntil(ioc, [&] { return pvc_updates >= static_cast<uint64_t>(kEvents); })) {
    std::fprintf(stderr, "only %llu of %d events arrived\n",
                 static_cast<unsigned long long>(pvc_updates), kEvents);
    return 1;
  }
  auto t_ev1 = Clock::now();
  long rss_end = vmRssKiB();

  std::printf(
      "k8s_cache_bench: %d Nodes, %d NodeStorageResources, %d PVCs (in-process TLS "
      "stand-in API server)\n",
      kNodes, kNodes, kPvcs);
  std::printf("  VmRSS at start                      %8ld KiB\n", rss_start);
  std::printf("  VmRSS after filling the server      %8ld KiB\n", rss_server);
  std::printf("  VmRSS after the caches synced       %8ld KiB  (caches: +%ld KiB, %.0f B/object)\n",
              rss_caches, rss_caches - rss_server,
              1024.0 * static_cast<double>(rss_caches - rss_server) / (2.0 * kNodes + kPvcs));
  std::printf("  VmRSS after the watch burst         %8ld KiB\n", rss_end);
  std::printf("  initial sync (3 informers, paged)   %8.3f s\n", seconds(t_sync - t0));
  std::printf("  full relist (%zu objects, 500/page) %8.3f s  (%.0f objects/s)\n", relisted,
              seconds(t_relist1 - t_relist0),
              static_cast<double>(relisted) / seconds(t_relist1 - t_relist0));
  std::printf(
      "  watch: %d MODIFIED events produced in %.3f s, applied by the informer in "
      "%.3f s\n",
      kEvents, seconds(t_produced - t_ev0), seconds(t_ev1 - t_ev0));
  std::printf("  watch events processed per second   %8.0f  (end to end)\n",
              static_cast<double>(kEvents) / seconds(t_ev1 - t_ev0));
  std::printf("  ... after the server produced them  %8.0f  (stream + decode + cache + handler)\n",
              static_cast<double>(kEvents) / seconds(t_ev1 - t_produced));
  std::printf("  cache sizes: nodes=%zu nsrs=%zu pvcs=%zu\n", nodes.size(), nsrs.size(),
              pvcs.size());
  nodes.stop();
  nsrs.stop();
  pvcs.stop();
  runUntil(
      ioc, [&] { return !nodes.running() && !nsrs.running() && !pvcs.running(); },
      std::chrono::seconds(10));
  return 0;
}
