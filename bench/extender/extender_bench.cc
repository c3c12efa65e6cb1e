// Extender benchmark: p50/p99 latency and requests/s of POST filter and prioritize with 100,
// 1,000 and 5,000 nodes (NodeNames mode, a pod with 2 PVCs, keep-alive, several client
// connections), and of the same server's trivial GET /healthz for the ratio. Loopback only,
// bounded loops. Latencies are reported three ways:
//   server   - the agent's own measure (HttpServerOptions::on_request, as /debug/extender shows):
//              request header read -> response written, i.e. body read + handler + write;
//   handler  - parse + evaluate + render only;
//   client   - round trip seen by the client threads (includes their own CPU time and the
//              queueing of N connections on the server's 2 io threads).
// A one-connection run gives kube-scheduler's view (it calls the extender once per pod and
// verb, one request at a time). The last lines compare with the issue's targets.
// Usage: extender_bench [--quick] [--server-threads N] [--connections N] [--nodes N]
//                       [--direct-only]

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "agent/core/constants.h"
#include "agent/core/log.h"
#include "extender/extender_api.h"
#include "extender/extender_service.h"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using carina::kGiB;
using carina::kMiB;
using namespace carina::extender;  // NOLINT

namespace {

/** Server-side handler times per verb, in microseconds. */
struct Recorder {
  std::mutex mu;
  std::vector<uint64_t> micros;
  void add(uint64_t us) {
    std::lock_guard lock(mu);
    micros.push_back(us);
  }
  std::vector<uint64_t> take() {
    std::lock_guard lock(mu);
    return std::exchange(micros, {});
  }
};

double threadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

/** The in-process cost of one filter / prioritize call (parse + evaluate + render), no HTTP:
 *  wall and thread-CPU microseconds per call (CPU time is what a loaded machine cannot inflate). */
void direct(const ClusterView& view, const std::string& body, int nodes, int iters,
            const char* label = "") {
  for (int verb = 0; verb < 2; ++verb) {
    double cpu0 = threadCpuMicros();
    auto t0 = std::chrono::steady_clock::now();
    std::size_t bytes = 0;
    for (int i = 0; i < iters; ++i) {
      ApiReply r = verb == 0 ? handleFilter(body, view, ScoringOptions{})
                             : handlePrioritize(body, view, ScoringOptions{});
      bytes += r.body.size();
    }
    double wall =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    double cpu = threadCpuMicros() - cpu0;
    std::printf(
        "%-11s nodes=%-5d in-process: %8.1fus wall/call, %8.1fus cpu/call (%d calls, "
        "reply %zu bytes)%s\n",
        verb == 0 ? "filter" : "prioritize", nodes, wall / iters, cpu / iters, iters,
        bytes / static_cast<std::size_t>(iters), label);
  }
}

double percentile(std::vector<uint64_t> v, double p) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  std::size_t idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  return static_cast<double>(v[idx]);
}

void buildCluster(InMemoryClusterView& view, int nodes) {
  view.upsertStorageClass(StorageClass{
      "lvm", std::string(carina::kDriverName), {{"carina.storage.io/disk-group-name", "vg"}}});
  view.upsertStorageClass(StorageClass{
      "raw", std::string(carina::kDriverName), {{"carina.storage.io/disk-group-name", "ssd"}}});
  view.upsertClaim(Claim{"default", "data-db-0", "lvm", 10 * kGiB, "", "", ""});
  view.upsertClaim(Claim{"default", "wal-db-0", "raw", 5 * kGiB, "", "", ""});
  // A claim no free segment can hold: every node fails (with its reason) for a pod using it.
  view.upsertClaim(Claim{"default", "huge-db-0", "raw", 50 * kGiB, "", "", ""});
  for (int i = 0; i < nodes; ++i) {
    std::string n = "node-" + std::to_string(i);
    uint64_t k = static_cast<uint64_t>(i % 50);
    GroupSupply lvm{"vg", carina::core::DiskPolicy::Lvm, {}, 500 * kGiB, (20 + 9 * k) * kGiB};
    GroupSupply raw{"ssd", carina::core::DiskPolicy::Raw, {}, 0, 0};
    for (int d = 0; d < 4; ++d) {
      carina::storage::DiskSpace disk;
      disk.name = "sd" + std::string(1, static_cast<char>('b' + d));
      disk.size_bytes = 100 * kGiB;
      disk.free = {{kMiB, (4 + k % 7) * kGiB}, {40 * kGiB, (2 + k % 11) * kGiB}};
      disk.partitions = 2;
      raw.disks.push_back(disk);
    }
    view.setNodeSupply(NodeSupply{n, {lvm, raw}});
    if (i % 10 == 0) {  // some promises in flight
      view.upsertClaim(
          Claim{"default", "promised-" + std::to_string(i), "raw", 2 * kGiB, "", n, ""});
    }
  }
}

std::string argsBody(int nodes, const std::string& wal_claim = "wal-db-0") {
  std::string names;
  for (int i = 0; i < nodes; ++i) {
    names += (i ? ",\"node-" : "\"node-") + std::to_string(i) + "\"";
  }
  return R"({"Pod":{"metadata":{"name":"db-0","namespace":"default","uid":"u1"},"spec":{)"
         R"("volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data-db-0"}},)"
         R"({"name":"wal","persistentVolumeClaim":{"claimName":")" +
         wal_claim +
         R"("}},)"
         R"({"name":"tok","projected":{"sources":[]}}],"containers":[{"name":"c","image":"x"}]}},)"
         R"("Nodes":null,"NodeNames":[)" +
         names + "]}";
}

struct Result {
  uint64_t requests = 0;
  double seconds = 0;
  std::vector<uint64_t> rtt_us;
  bool all_ok = true;
};

Result drive(uint16_t port, http::verb verb, const std::string& target, const std::string& body,
             int connections, int per_connection) {
  Result res;
  std::mutex mu;
  std::atomic<bool> ok{true};
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&] {
      net::io_context ioc;
      tcp::socket s(ioc);
      s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
      s.set_option(tcp::no_delay(true));
      beast::flat_buffer buf;
      std::vector<uint64_t> local;
      local.reserve(static_cast<std::size_t>(per_connection));
      http::request<http::string_body> req{verb, target, 11};
      req.set(http::field::host, "127.0.0.1");
      req.set(http::field::content_type, "application/json");
      req.keep_alive(true);
      req.body() = body;
      req.prepare_payload();
      for (int i = 0; i < per_connection; ++i) {
        auto a = std::chrono::steady_clock::now();
        http::write(s, req);
        http::response_parser<http::string_body> p;
        p.body_limit(64 * 1024 * 1024);
        http::read(s, buf, p);
        if (p.get().result_int() != 200) {
          ok = false;
        }
        local.push_back(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                  std::chrono::steady_clock::now() - a)
                                                  .count()));
      }
      std::lock_guard lock(mu);
      res.rtt_us.insert(res.rtt_us.end(), local.begin(), local.end());
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.requests = res.rtt_us.size();
  res.all_ok = ok;
  return res;
}

struct Figures {
  double rps = 0;
  double server_p50 = 0;
  double server_p99 = 0;
};

Figures report(const char* what, int nodes, int connections, const Result& r,
               std::vector<uint64_t> server_us, std::vector<uint64_t> handler_us) {
  Figures f{static_cast<double>(r.requests) / r.seconds, percentile(server_us, 0.5),
            percentile(server_us, 0.99)};
  std::printf(
      "%-11s nodes=%-5d conns=%d reqs=%-6llu req/s=%-7.0f server p50=%5.0fus p99=%5.0fus  "
      "handler p50=%5.0fus p99=%5.0fus  client p50=%5.0fus p99=%5.0fus %s\n",
      what, nodes, connections, static_cast<unsigned long long>(r.requests), f.rps, f.server_p50,
      f.server_p99, percentile(handler_us, 0.5), percentile(handler_us, 0.99),
      percentile(r.rtt_us, 0.5), percentile(r.rtt_us, 0.99), r.all_ok ? "" : "(NON-200 SEEN)");
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int server_threads = 2;
  int connections = 4;
  int only_nodes = 0;        // --nodes N: one cluster size instead of 100, 1,000 and 5,000
  bool direct_only = false;  // --direct-only: the in-process figures only (for profiling)
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--server-threads" && i + 1 < argc) {
      server_threads = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--connections" && i + 1 < argc) {
      connections = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--nodes" && i + 1 < argc) {
      only_nodes = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--direct-only") {
      direct_only = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--server-threads N] [--connections N] [--nodes N] "
                   "[--direct-only]\n",
                   argv[0]);
      return 2;
    }
  }
  carina::log::setGlobalLevel(carina::log::Level::Warn);
  std::printf("extender_bench: %d server io threads, %d keep-alive client connections, %u cores\n",
              server_threads, connections, std::thread::hardware_concurrency());
  std::vector<int> sizes = {100, 1000, 5000};
  if (only_nodes > 0) {
    sizes = {only_nodes};
  }
  struct Target {
    std::string what;
    double value = 0;
    double limit = 0;
    bool at_most = true;
    const char* unit = "";
  };
  std::vector<Target> targets;
  bool all_ok = true;
  for (int nodes : sizes) {
    InMemoryClusterView view;
    buildCluster(view, nodes);
    ExtenderService service(view, carina::core::ExtenderConfig{},
                            carina::core::SchedulerStrategy::Binpack);
    // Handler-only times (ExtenderService's observer) and the server's own request times.
    Recorder filter_rec;
    Recorder prio_rec;
    Recorder health_rec;
    Recorder filter_http;
    Recorder prio_http;
    Recorder health_http;
    service.setObserver([&](std::string_view verb, uint64_t us) {
      (verb == "filter" ? filter_rec : prio_rec).add(us);
    });
    net::io_context ioc;
    auto work = net::make_work_guard(ioc);
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    o.on_request = [&](const std::string& path, unsigned, std::chrono::microseconds us) {
      Recorder& r = path == "/scheduler/filter"       ? filter_http
                    : path == "/scheduler/prioritize" ? prio_http
                                                      : health_http;
      r.add(static_cast<uint64_t>(us.count()));
    };
    auto server = makeHttpServer(ioc.get_executor(), o);
    service.registerRoutes(*server, false);
    server->route("GET", "/healthz", [&](const HttpRequest&) {
      auto t0 = std::chrono::steady_clock::now();
      HttpResponse r{200, "text/plain", "ok\n", {}};
      health_rec.add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::steady_clock::now() - t0)
                                               .count()));
      return r;
    });
    if (!server->start().ok()) {
      std::fprintf(stderr, "cannot start server\n");
      return 1;
    }
    std::vector<std::thread> io;
    for (int t = 0; t < server_threads; ++t) {
      io.emplace_back([&] { ioc.run(); });
    }
    const std::string body = argsBody(nodes);
    const int direct_iters = std::max(10, (quick ? 20000 : 200000) / nodes);
    direct(view, body, nodes, direct_only ? direct_iters * 5 : direct_iters);
    direct(view, argsBody(nodes, "huge-db-0"), nodes, direct_only ? direct_iters * 5 : direct_iters,
           "  <- a pod no node can take");
    if (!direct_only) {
      int per_conn = nodes == 100 ? 3000 : nodes == 1000 ? 600 : 120;
      if (quick) {
        per_conn /= 10;
      }
      per_conn /= connections / 4 > 0 ? connections / 4 : 1;
      auto clear = [&] {
        for (Recorder* r :
             {&filter_rec, &prio_rec, &health_rec, &filter_http, &prio_http, &health_http}) {
          r->take();
        }
      };
      // warm-up
      drive(server->port(), http::verb::post, "/scheduler/filter", body, 1, 20);
      clear();
      // kube-scheduler's view: one request at a time.
      const int sequential = std::max(20, per_conn / 2);
      Result f1 = drive(server->port(), http::verb::post, "/scheduler/filter", body, 1, sequential);
      Figures f1f = report("filter", nodes, 1, f1, filter_http.take(), filter_rec.take());
      Result p1 =
          drive(server->port(), http::verb::post, "/scheduler/prioritize", body, 1, sequential);
      Figures p1f = report("prioritize", nodes, 1, p1, prio_http.take(), prio_rec.take());
      // Load: several keep-alive connections at once.
      Result f =
          drive(server->port(), http::verb::post, "/scheduler/filter", body, connections, per_conn);
      Figures ff = report("filter", nodes, connections, f, filter_http.take(), filter_rec.take());
      Result p = drive(server->port(), http::verb::post, "/scheduler/prioritize", body, connections,
                       per_conn);
      Figures pf = report("prioritize", nodes, connections, p, prio_http.take(), prio_rec.take());
      Result h =
          drive(server->port(), http::verb::get, "/healthz", "", connections, quick ? 300 : 3000);
      report("healthz", nodes, connections, h, health_http.take(), health_rec.take());
      std::printf("  ratio filter/healthz req/s: %.2f   request body %zu bytes\n",
                  ff.rps / (static_cast<double>(h.requests) / h.seconds), body.size());
      all_ok = all_ok && f1.all_ok && p1.all_ok && f.all_ok && p.all_ok && h.all_ok;
      if (nodes == 1000) {
        targets.push_back({"filter server p99, 1 conn, 1000 nodes", f1f.server_p99, 2000});
        targets.push_back({"prioritize server p99, 1 conn, 1000 nodes", p1f.server_p99, 2000});
        targets.push_back(
            {"filter server p99, " + std::to_string(connections) + " conns, 1000 nodes",
             ff.server_p99, 2000});
        targets.push_back(
            {"prioritize server p99, " + std::to_string(connections) + " conns, 1000 nodes",
             pf.server_p99, 2000});
      }
      if (nodes == 100) {
        targets.push_back({"filter req/s, " + std::to_string(connections) + " conns, 100 nodes",
                           ff.rps, 5000, false});
        targets.push_back({"prioritize req/s, " + std::to_string(connections) + " conns, 100 nodes",
                           pf.rps, 5000, false});
      }
    }
    server->stop();
    work.reset();
    for (auto& t : io) {
      t.join();
    }
  }
  for (const Target& t : targets) {
    bool met = t.at_most ? t.value < t.limit : t.value >= t.limit;
    std::printf("target %-45s %s %8.0f%s (%s %.0f)\n", t.what.c_str(), met ? "MET   " : "MISSED",
                t.value, t.at_most ? "us" : "", t.at_most ? "<" : ">=", t.limit);
  }
  if (!all_ok) {
    std::printf("some requests were not answered with 200\n");
    return 1;
  }
  return 0;
}
