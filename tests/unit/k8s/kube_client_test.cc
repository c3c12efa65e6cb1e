// The real client against the stand-in API server over TLS on loopback.

#include "k8s-client/kube_client.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <absl/strings/escaping.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

#include "tests/k8s_server/fake_api_server.h"
#include "tests/support/test_support.h"
#include "tests/unit/k8s/k8s_test_util.h"

namespace {

namespace net = boost::asio;
using namespace carina::k8s;
using carina::Task;
using carina::test::FakeApiServer;
using carina::test::FakeApiServerOptions;
using carina::test::runTask;

std::string msg(const absl::Status& s) { return std::string(s.message()); }

std::unique_ptr<KubeClient> makeClient(net::io_context& ioc, const ClientConfig& cfg) {
  auto c = makeKubeClient(ioc.get_executor(), cfg);
  REQUIRE(c.ok());
  return std::move(*c);
}

Node node(const std::string& name) {
  Node n;
  n.metadata.name = name;
  n.metadata.labels["carina.storage.io/node"] = "true";
  return n;
}

PersistentVolumeClaim pvc(const std::string& ns, const std::string& name, uint64_t bytes) {
  PersistentVolumeClaim p;
  p.metadata.namespace_ = ns;
  p.metadata.name = name;
  p.storage_class_name = "carina-lvm";
  p.access_modes = {"ReadWriteOnce"};
  p.requested_bytes = bytes;
  return p;
}

TEST_CASE("client: create, get, update, conflict, patch, delete over TLS", "[unit][k8s]") {
  FakeApiServer server;
  net::io_context ioc;
  auto client = makeClient(ioc, server.clientConfig());
  auto& nodes = client->nodes();

  auto created = runTask(ioc, nodes.create(node("n1")));
  REQUIRE(created.ok());
  CHECK(created->metadata.uid.size() > 10);
  CHECK_FALSE(created->metadata.resource_version.empty());

  auto dup = runTask(ioc, nodes.create(node("n1")));
  CHECK(dup.status().code() == absl::StatusCode::kAlreadyExists);

  auto got = runTask(ioc, nodes.get("", "n1"));
  REQUIRE(got.ok());
  CHECK(got->metadata.labels.at("carina.storage.io/node") == "true");

  auto missing = runTask(ioc, nodes.get("", "nope"));
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);
  CHECK_THAT(msg(missing.status()), Catch::Contains("404"));

  Node v1 = *got;
  v1.metadata.labels["zone"] = "a";
  auto updated = runTask(ioc, nodes.update(v1));
  REQUIRE(updated.ok());
  CHECK(updated->metadata.labels.at("zone") == "a");
  CHECK(updated->metadata.resource_version != got->metadata.resource_version);

  // Writing the stale copy again: 409 Conflict -> Aborted.
  v1.metadata.labels["zone"] = "b";
  auto stale = runTask(ioc, nodes.update(v1));
  REQUIRE_FALSE(stale.ok());
  CHECK(isConflict(stale.status()));
  CHECK_THAT(msg(stale.status()), Catch::Contains("409"));

  auto patched =
      runTask(ioc, nodes.patch("", "n1", R"({"metadata":{"annotations":{"k":"v"}}})", false));
  REQUIRE(patched.ok());
  CHECK(patched->metadata.annotations.at("k") == "v");
  CHECK(patched->metadata.labels.at("zone") == "a");

  Node unnamed;
  auto invalid = runTask(ioc, nodes.create(unnamed));
  CHECK(invalid.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(msg(invalid.status()), Catch::Contains("422"));

  CHECK(runTask(ioc, nodes.remove("", "n1")).ok());
  CHECK(runTask(ioc, nodes.remove("", "n1")).code() == absl::StatusCode::kNotFound);
  CHECK(runTask(ioc, nodes.get("ns", "n1")).status().code() ==
        absl::StatusCode::kInvalidArgument);  // cluster-scoped
}

TEST_CASE("client: an update keeps fields the client does not model", "[unit][k8s]") {
  FakeApiServer server;
  REQUIRE(server
              .upsert(Node::kResource,
                      R"({"metadata":{"name":"n1","labels":{"a":"1"}},
                          "spec":{"podCIDR":"10.0.0.0/24","taints":[{"key":"k","effect":"NoSchedule"}]},
                          "status":{"capacity":{"cpu":"4"},"nodeInfo":{"kernelVersion":"6.1"}}})")
              .ok());
  net::io_context ioc;
  auto client = makeClient(ioc, server.clientConfig());
  auto n = runTask(ioc, client->nodes().get("", "n1"));
  REQUIRE(n.ok());
  n->metadata.labels["b"] = "2";
  REQUIRE(runTask(ioc, client->nodes().update(*n)).ok());
  auto stored = server.object(Node::kResource, "", "n1");
  REQUIRE(stored.has_value());
  CHECK_THAT(*stored, Catch::Contains(R"("podCIDR":"10.0.0.0/24")"));
  CHECK_THAT(*stored, Catch::Contains(R"("taints":[{"key":"k","effect":"NoSchedule"}])"));
  CHECK_THAT(*stored, Catch::Contains(R"("kernelVersion":"6.1")"));
  CHECK_THAT(*stored, Catch::Contains(R"("labels":{"a":"1","b":"2"})"));
}

TEST_CASE("client: status subresource and retry of a status update after 409", "[unit][k8s]") {
  FakeApiServer server;
  net::io_context ioc;
  auto client = makeClient(ioc, server.clientConfig());
  auto& lvs = client->logicVolumes();
  LogicVolume lv;
  lv.metadata.name = "pvc-1";
  lv.node_name = "node-a";
  lv.size_bytes = 1ULL << 30;
  auto created = runTask(ioc, lvs.create(lv));
  REQUIRE(created.ok());

  // update() on the main resource ignores status (status subresource semantics).
  LogicVolume main = *created;
  main.phase = "Created";
  main.group_name = "ssd";
  auto after_main = runTask(ioc, lvs.update(main));
  REQUIRE(after_main.ok());
  CHECK(after_main->phase.empty());
  CHECK(after_main->group_name == "ssd");

  // A concurrent writer bumps the RV between our GET and PUT exactly once.
  int attempts = 0;
  auto result = runTask(ioc, updateWithRetry<LogicVolume>(
                                 lvs, "", "pvc-1",
                                 [&](LogicVolume& v) {
                                   if (++attempts == 1) {
                                     REQUIRE(server
                                                 .patch(LogicVolume::kResource, "", "pvc-1",
                                                        R"({"metadata":{"labels":{"x":"y"}}})")
                                                 .ok());
                                   }
                                   v.phase = "Created";
                                   v.device = "/dev/vg/pvc-1";
                                   return true;
                                 },
                                 /*status_subresource=*/true));
  REQUIRE(result.ok());
  CHECK(attempts == 2);
  CHECK(result->phase == "Created");
  CHECK(result->device == "/dev/vg/pvc-1");
  CHECK(result->metadata.labels.at("x") == "y");  // the other writer's change survived

  // Merge patch on /status.
  auto patched = runTask(ioc, lvs.patch("", "pvc-1", R"({"status":{"message":"ok"}})", true));
  REQUIRE(patched.ok());
  CHECK(patched->message == "ok");
  CHECK(patched->phase == "Created");
}

TEST_CASE("client: paginated list with limit/continue, and an expired continue token",
          "[unit][k8s]") {
  FakeApiServer server;
  net::io_context ioc;
  auto client = makeClient(ioc, server.clientConfig());
  auto& pvcs = client->persistentVolumeClaims();
  for (int i = 0; i < 25; ++i) {
    REQUIRE(runTask(ioc, pvcs.create(pvc(i % 2 == 0 ? "a" : "b", "p" + std::to_string(i),
                                         (i + 1) * (1ULL << 20))))
                .ok());
  }
  ListOptions opts;
  opts.limit = 10;
  auto first = runTask(ioc, pvcs.list("", opts));
  REQUIRE(first.ok());
  CHECK(first->items.size() == 10);
  REQUIRE_FALSE(first->continue_token.empty());

  auto all = runTask(ioc, listAll(pvcs, "", opts));
  REQUIRE(all.ok());
  CHECK(all->items.size() == 25);
  CHECK(all->resource_version == std::to_string(server.resourceVersion()));
  std::set<std::string> names;
  for (const auto& p : all->items) {
    names.insert(p.metadata.namespace_ + "/" + p.metadata.name);
  }
  CHECK(names.size() == 25);
  std::size_t list_requests = 0;
  for (const auto& r : server.requests()) {
    if (r.method == "GET" && r.path == "/api/v1/persistentvolumeclaims" &&
        r.query.find("limit=10") != std::string::npos) {
      ++list_requests;
    }
  }
  CHECK(list_requests == 1 + 3);

  auto ns_a = runTask(ioc, listAll(pvcs, "a", ListOptions{}));
  REQUIRE(ns_a.ok());
  CHECK(ns_a->items.size() == 13);

  // After a compaction the continue token of an older list is rejected with 410.
  REQUIRE(runTask(ioc, pvcs.create(pvc("a", "late", 1))).ok());
  server.compactHistory();
  opts.continue_token = first->continue_token;
  auto expired = runTask(ioc, pvcs.list("", opts));
  REQUIRE_FALSE(expired.ok());
  CHECK(isGone(expired.status()));
}

TEST_CASE("client: label and field selectors", "[unit][k8s]") {
  FakeApiServer server;
  net::io_context ioc;
  auto client = makeClient(ioc, server.clientConfig());
  for (int i = 0; i < 4; ++i) {
    Node n = node("n" + std::to_string(i));
    n.metadata.labels["pool"] = i < 3 ? "ssd" : "hdd";
    REQUIRE(runTask(ioc, client->nodes().create(n)).ok());
  }
  ListOptions by_label;
  by_label.label_selector = "pool=ssd";
  auto ssd = runTask(ioc, client->nodes().list("", by_label));
  REQUIRE(ssd.ok());
  CHECK(ssd->items.size() == 3);
  ListOptions by_field;
  by_field.field_selector = "metadata.name=n3";
  auto n3 = runTask(ioc, client->nodes().list("", by_field));
  REQUIRE(n3.ok());
  REQUIRE(n3->items.size() == 1);
  CHECK(n3->items[0].metadata.labels.at("pool") == "hdd");
}

TEST_CASE("client: 401 and 403 map to PermissionDenied with verb and resource", "[unit][k8s]") {
  FakeApiServer server;
  net::io_context ioc;
  ClientConfig cfg = server.clientConfig();
  cfg.token = "wrong";
  auto bad_token = makeClient(ioc, cfg);
  auto r = runTask(ioc, bad_token->nodes().list("", {}));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(msg(r.status()), Catch::Contains("401") && Catch::Contains("list nodes"));

  server.forbid("list", "persistentvolumes");
  auto client = makeClient(ioc, server.clientConfig());
  auto f = runTask(ioc, client->persistentVolumes().list("", {}));
  REQUIRE_FALSE(f.ok());
  CHECK(f.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK_THAT(msg(f.status()), Catch::Contains("403") && Catch::Contains("list persistentvolumes") &&
                                  Catch::Contains("cannot list resource"));
  CHECK(runTask(ioc, client->persistentVolumes().get("", "x")).status().code() ==
        absl::StatusCode::kNotFound);  // only list is forbidden
}

TEST_CASE("client: 5xx maps to Unavailable and the next request succeeds", "[unit][k8s]") {
  FakeApiServer server;
  net::io_context ioc;
  auto client = makeClient(ioc, server.clientConfig());
  server.failNextRequests(2, 503);
  CHECK(runTask(ioc, client->nodes().list("", {})).status().code() ==
        absl::StatusCode::kUnavailable);
  CHECK(runTask(ioc, client->nodes().list("", {})).status().code() ==
        absl::StatusCode::kUnavailable);
  CHECK(runTask(ioc, client->nodes().list("", {})).ok());
}

TEST_CASE("client: token file rotation is picked up by the next request", "[unit][k8s]") {
  FakeApiServer server;
  carina::test::TempDir dir;
  std::string token_file = dir.file("token");
  auto writeToken = [&](const std::string& t) {
    // Like kubelet: write a new file and rename it over the old one.
    std::string tmp = token_file + ".tmp";
    std::ofstream(tmp) << t << "\n";
    REQUIRE(std::rename(tmp.c_str(), token_file.c_str()) == 0);
  };
  server.setToken("token-one");
  writeToken("token-one");
  net::io_context ioc;
  ClientConfig cfg = server.clientConfig();
  cfg.token.clear();
  cfg.token_file = token_file;
  auto client = makeClient(ioc, cfg);
  REQUIRE(runTask(ioc, client->nodes().list("", {})).ok());

  server.setToken("token-two");
  writeToken("token-two");
  REQUIRE(runTask(ioc, client->nodes().list("", {})).ok());
  CHECK(client->stats().token_reloads == 2);

  // A revoked token is a clear PermissionDenied (after one forced re-read).
  server.setToken("token-three");
  auto denied = runTask(ioc, client->nodes().list("", {}));
  CHECK(denied.status().code() == absl::StatusCode::kPermissionDenied);
}

TEST_CASE("client: TLS with the wrong CA or a wrong host name fails clearly", "[unit][k8s]") {
  FakeApiServer server;
  FakeApiServer other;  // a different CA
  net::io_context ioc;
  ClientConfig cfg = server.clientConfig();
  cfg.ca_pem = other.caPem();
  auto client = makeClient(ioc, cfg);
  auto r = runTask(ioc, client->nodes().list("", {}));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(msg(r.status()), Catch::Contains("certificate verify failed"));

  FakeApiServerOptions opts;
  opts.server_cert_san = "DNS:api.other.example";
  FakeApiServer misnamed(opts);
  auto client2 = makeClient(ioc, misnamed.clientConfig());  // right CA, host 127.0.0.1
  auto r2 = runTask(ioc, client2->nodes().list("", {}));
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.status().code() == absl::StatusCode::kUnavailable);
  CHECK_THAT(msg(r2.status()), Catch::Contains("certificate verify failed") &&
                                   Catch::Contains("IP address mismatch"));

  ClientConfig by_name = server.clientConfig();
  by_name.host = "localhost";  // in the certificate's DNS names
  auto client3 = makeClient(ioc, by_name);
  CHECK(runTask(ioc, client3->nodes().list("", {})).ok());
}

TEST_CASE("client: kubeconfig with client certificate data authenticates", "[unit][k8s]") {
  FakeApiServer server;
  auto [cert, key] = server.issueClientCertificate("carina-test");
  std::string kubeconfig =
      "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
      "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:" +
      std::to_string(server.port()) +
      "\n    certificate-authority-data: " + absl::Base64Escape(server.caPem()) +
      "\ncontexts:\n- name: t\n  context: {cluster: c, user: u}\n"
      "users:\n- name: u\n  user:\n    client-certificate-data: " +
      absl::Base64Escape(cert) + "\n    client-key-data: " + absl::Base64Escape(key) + "\n";
  auto cfg = parseKubeconfig(kubeconfig, "");
  REQUIRE(cfg.ok());
  CHECK(cfg->token.empty());
  net::io_context ioc;
  auto client = makeClient(ioc, *cfg);
  CHECK(runTask(ioc, client->nodes().list("", {})).ok());
}

TEST_CASE("client: requests time out against a server that never answers", "[unit][k8s]") {
  net::io_context ioc;
  net::ip::tcp::acceptor silent(ioc, {net::ip::make_address("127.0.0.1"), 0});
  std::vector<net::ip::tcp::socket> held;
  silent.async_accept([&](boost::system::error_code ec, net::ip::tcp::socket s) {
    if (!ec) {
      held.push_back(std::move(s));  // accept, then never speak TLS
    }
  });
  ClientConfig cfg;
  cfg.host = "127.0.0.1";
  cfg.port = silent.local_endpoint().port();
  cfg.token = "x";
  cfg.qps = 0;
  cfg.request_timeout = std::chrono::milliseconds(300);
  auto client = makeClient(ioc, cfg);
  auto r = runTask(ioc, client->nodes().get("", "n"));
  CHECK(r.status().code() == absl::StatusCode::kDeadlineExceeded);
}

TEST_CASE("client: rate limit spaces requests by 1/qps after the burst", "[unit][k8s]") {
  FakeApiServer server;
  net::io_context ioc;
  ClientConfig cfg = server.clientConfig();
  cfg.qps = 4;
  cfg.burst = 2;
  auto client = makeClient(ioc, cfg);
  constexpr int kRequests = 6;
  uint64_t before = server.requestCount();
  auto start = std::chrono::steady_clock::now();
  auto many = [&]() -> Task<int> {
    // All requests are issued at once; the limiter lets two through and queues the rest.
    int ok = 0;
    auto ex = co_await net::this_coro::executor;
    int done = 0;
    for (int i = 0; i < kRequests; ++i) {
      net::co_spawn(ex, client->nodes().list("", {}),
                    [&](std::exception_ptr, absl::StatusOr<ObjectList<Node>> r) {
                      ok += r.ok() ? 1 : 0;
                      ++done;
                    });
    }
    net::steady_timer t(ex);
    while (done < kRequests) {
      t.expires_after(std::chrono::milliseconds(5));
      co_await t.async_wait(net::as_tuple(net::use_awaitable));
    }
    co_return ok;
  };
  CHECK(runTask(ioc, many()) == kRequests);
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(server.requestCount() - before == kRequests);
  // Token accounting: exactly N - burst requests had to wait, and the last one waited
  // (N - burst) / qps; so the whole batch cannot take less than that.
  ClientStats stats = client->stats();
  CHECK(stats.rate_limited == kRequests - 2);
  CHECK(elapsed >= std::chrono::milliseconds(1000 * (kRequests - 2) / 4 - 20));
}

TEST_CASE("client: watch streams events, bookmarks, ends normally and reports 410", "[unit][k8s]") {
  auto gone_as_http = GENERATE(false, true);
  FakeApiServerOptions opts;
  opts.gone_as_http_status = gone_as_http;
  FakeApiServer server(opts);
  net::io_context ioc;
  auto client = makeClient(ioc, server.clientConfig());
  auto& nodes = client->nodes();
  REQUIRE(runTask(ioc, nodes.create(node("a"))).ok());
  std::string rv = std::to_string(server.resourceVersion());

  WatchOptions wo;
  wo.resource_version = rv;
  wo.timeout = std::chrono::seconds(2);
  auto w = runTask(ioc, nodes.watch("", wo));
  REQUIRE(w.ok());
  REQUIRE(server.upsert(Node::kResource, R"({"metadata":{"name":"b"}})").ok());
  REQUIRE(server.patch(Node::kResource, "", "a", R"({"metadata":{"labels":{"x":"1"}}})").ok());
  REQUIRE(server.erase(Node::kResource, "", "b").ok());
  server.sendBookmarks();
  std::vector<std::pair<WatchEventType, std::string>> seen;
  std::string last_rv;
  while (seen.size() < 4) {
    auto ev = runTask(ioc, (*w)->next());
    REQUIRE(ev.ok());
    REQUIRE(ev->has_value());
    seen.emplace_back((*ev)->type, (*ev)->object.metadata.name);
    last_rv = (*ev)->object.metadata.resource_version;
  }
  CHECK(seen[0] == std::make_pair(WatchEventType::Added, std::string("b")));
  CHECK(seen[1] == std::make_pair(WatchEventType::Modified, std::string("a")));
  CHECK(seen[2] == std::make_pair(WatchEventType::Deleted, std::string("b")));
  CHECK(seen[3].first == WatchEventType::Bookmark);
  CHECK(last_rv == std::to_string(server.resourceVersion()));
  // timeoutSeconds reached: the server ends the stream normally.
  auto end = runTask(ioc, (*w)->next());
  REQUIRE(end.ok());
  CHECK_FALSE(end->has_value());

  // A dropped connection surfaces as Unavailable.
  wo.resource_version = std::to_string(server.resourceVersion());
  auto w2 = runTask(ioc, nodes.watch("", wo));
  REQUIRE(w2.ok());
  server.dropConnections();
  auto broken = runTask(ioc, (*w2)->next());
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.status().code() == absl::StatusCode::kUnavailable);

  // Too old an RV: 410 Expired, as an ERROR event or an HTTP status.
  server.compactHistory();
  wo.resource_version = rv;
  auto w3 = runTask(ioc, nodes.watch("", wo));
  absl::Status gone;
  if (w3.ok()) {
    auto ev = runTask(ioc, (*w3)->next());
    REQUIRE_FALSE(ev.ok());
    gone = ev.status();
  } else {
    gone = w3.status();
  }
  CHECK(gone_as_http == !w3.ok());
  CHECK(isGone(gone));
  CHECK_THAT(msg(gone), Catch::Contains("410"));
}

}  // namespace

namespace {

TEST_CASE("client: a silent watch ends with DeadlineExceeded after the idle timeout",
          "[unit][k8s]") {
  FakeApiServer server;
  net::io_context ioc;
  ClientConfig cfg = server.clientConfig();
  cfg.watch_idle_timeout = std::chrono::milliseconds(300);
  auto client = makeClient(ioc, cfg);
  WatchOptions wo;
  wo.resource_version = std::to_string(server.resourceVersion());
  auto w = runTask(ioc, client->nodes().watch("", wo));
  REQUIRE(w.ok());
  auto ev = runTask(ioc, (*w)->next());
  REQUIRE_FALSE(ev.ok());
  CHECK(ev.status().code() == absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
