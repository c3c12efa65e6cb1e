#include "extender/http_server.h"

#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "extender/extender_service.h"
#include "tests/support/http_test_client.h"
#include "tests/support/test_support.h"
#include "tests/unit/extender/test_cluster.h"

namespace carina::extender {
namespace {

using namespace testing;  // NOLINT
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = net::ip::tcp;

std::string readTestdata(const std::string& name) {
  std::ifstream in(std::string(CARINA_EXTENDER_TESTDATA) + "/" + name);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/** An extender on 127.0.0.1:0 served by a background io thread. */
struct TestServer {
  explicit TestServer(uint64_t body_limit = 64ULL * 1024 * 1024)
      : service(view, core::ExtenderConfig{}, core::SchedulerStrategy::Binpack) {
    view.upsertStorageClass(
        carinaClass("local-lvm", {{"carina.storage.io/disk-group-name", "vg0"}}));
    view.upsertClaim(claim("data-db-0", "local-lvm", 10 * GiB));
    view.setNodeSupply(node("worker-1", {lvmGroup("vg0", 100 * GiB, 70 * GiB)}));
    view.setNodeSupply(node("worker-2", {lvmGroup("vg0", 100 * GiB, 8 * GiB)}));
    HttpServerOptions o;
    o.listen = "127.0.0.1:0";
    o.body_limit_bytes = body_limit;
    server = makeHttpServer(ioc.get_executor(), o);
    service.registerRoutes(*server);
    REQUIRE(server->start().ok());
    REQUIRE(server->port() != 0);
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([this] { ioc.run(); });
    }
  }
  ~TestServer() {
    server->stop();
    work.reset();
    ioc.stop();
    for (auto& t : threads) {
      t.join();
    }
  }
  InMemoryClusterView view;
  ExtenderService service;
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
  HttpServerPtr server;
  std::vector<std::thread> threads;
};

using Client = carina::test::HttpTestClient;

TEST_CASE("HTTP: filter and prioritize over loopback, both nodeCacheCapable modes",
          "[unit][extender][http]") {
  TestServer ts;
  Client c(ts.server->port());

  auto names =
      c.send(http::verb::post, "/scheduler/filter", readTestdata("filter_names_mode.json"));
  REQUIRE(names.result_int() == 200);
  CHECK(names[http::field::content_type] == "application/json");
  CHECK(json::parse(names.body()).at("NodeNames") == json::array{"worker-1"});

  std::string nodes_body = readTestdata("filter_nodes_mode.json");
  auto nodes = c.send(http::verb::post, "/scheduler/filter", nodes_body);
  REQUIRE(nodes.result_int() == 200);
  json::value out = json::parse(nodes.body());
  REQUIRE(out.at("Nodes").at("items").as_array().size() == 1);
  CHECK(out.at("Nodes").at("items").as_array()[0] ==
        json::parse(nodes_body).at("Nodes").at("items").as_array()[0]);

  auto legacy =
      c.send(http::verb::post, "/scheduler/filter", readTestdata("filter_legacy_lowercase.json"));
  CHECK(json::parse(legacy.body()).at("NodeNames") == json::array{"worker-1"});

  auto prio =
      c.send(http::verb::post, "/scheduler/prioritize", readTestdata("prioritize_names_mode.json"));
  REQUIRE(prio.result_int() == 200);
  json::value scores = json::parse(prio.body());
  REQUIRE(scores.is_array());
  CHECK(scores.as_array().size() == 2);
  CHECK(scores.as_array()[0].at("Score").is_int64());

  auto health = c.send(http::verb::get, "/healthz");
  CHECK(health.result_int() == 200);
  CHECK(health.body() == "ok\n");
}

TEST_CASE("HTTP: POST /debug/score (carinactl score) with an overlaid claim",
          "[unit][extender][http]") {
  TestServer ts;
  Client c(ts.server->port());
  const std::string pod = R"({"metadata":{"name":"db-0","namespace":"default"},"spec":{"volumes":[)"
                          R"({"name":"data","persistentVolumeClaim":{"claimName":"data-db-0"}}]}})";
  // The cluster's claim: 10 GiB fits worker-1 only.
  auto cluster = c.send(http::verb::post, "/debug/score", R"({"pod":)" + pod + "}");
  REQUIRE(cluster.result_int() == 200);
  CHECK(cluster[http::field::content_type] == "application/json");
  json::value v = json::parse(cluster.body());
  REQUIRE(v.at("nodes").as_array().size() == 2);
  CHECK(v.at("nodes").at(0).at("node") == "worker-1");
  CHECK(v.at("nodes").at(0).at("fits") == true);
  CHECK(v.at("nodes").at(1).at("fits") == false);
  // The file's version of the same claim (5 GiB) wins: both nodes fit.
  auto what_if = c.send(
      http::verb::post, "/debug/score",
      R"({"pod":)" + pod +
          R"(,"claims":[{"metadata":{"name":"data-db-0"},"spec":{"storageClassName":"local-lvm",)"
          R"("resources":{"requests":{"storage":"5Gi"}}}}]})");
  v = json::parse(what_if.body());
  CHECK(v.at("nodes").at(1).at("fits") == true);
  // The strategy follows the runtime setting.
  ts.service.setStrategy(core::SchedulerStrategy::Spreadout);
  v = json::parse(c.send(http::verb::post, "/debug/score", R"({"pod":)" + pod + "}").body());
  CHECK(v.at("strategy") == "spreadout");
  // Bad body: 400 text, the server keeps serving.
  auto bad = c.send(http::verb::post, "/debug/score", R"({"pod":)");
  CHECK(bad.result_int() == 400);
  CHECK(c.send(http::verb::get, "/healthz").result_int() == 200);
  CHECK(c.send(http::verb::get, "/debug/score").result_int() == 405);
}

TEST_CASE("HTTP: errors keep the server serving", "[unit][extender][http]") {
  TestServer ts(64 * 1024);
  Client c(ts.server->port());

  auto bad = c.send(http::verb::post, "/scheduler/filter", "{\"Pod\":");
  CHECK(bad.result_int() == 400);
  CHECK(bad.body().find("malformed JSON") != std::string::npos);
  // same keep-alive connection still works
  auto ok = c.send(http::verb::post, "/scheduler/filter", readTestdata("filter_names_mode.json"));
  CHECK(ok.result_int() == 200);

  auto wrong_method = c.send(http::verb::get, "/scheduler/filter");
  CHECK(wrong_method.result_int() == 405);
  CHECK(wrong_method[http::field::allow] == "POST");
  auto unknown = c.send(http::verb::post, "/nope", "{}");
  CHECK(unknown.result_int() == 404);
  auto health_post = c.send(http::verb::post, "/healthz", "{}");
  CHECK(health_post.result_int() == 405);

  SECTION("oversized body: 413 and the connection is closed") {
    Client big(ts.server->port());
    auto r = big.send(http::verb::post, "/scheduler/filter", std::string(100 * 1024, ' '));
    CHECK(r.result_int() == 413);
    CHECK_FALSE(r.keep_alive());
  }
  SECTION("malformed HTTP: 400") {
    Client raw(ts.server->port());
    net::write(raw.socket, net::buffer(std::string("GARBAGE\r\n\r\n")));
    http::response<http::string_body> r;
    http::read(raw.socket, raw.buffer, r);
    CHECK(r.result_int() == 400);
  }
  SECTION("a client that goes away mid-request") {
    {
      Client gone(ts.server->port());
      net::write(gone.socket,
                 net::buffer(std::string(
                     "POST /scheduler/filter HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")));
    }
    Client after(ts.server->port());
    CHECK(after.send(http::verb::get, "/healthz").result_int() == 200);
  }
  // and the first connection is still fine
  CHECK(c.send(http::verb::get, "/healthz").result_int() == 200);
}

TEST_CASE("HTTP: 1,000 nodes in one request, keep-alive, concurrent clients",
          "[unit][extender][http]") {
  TestServer ts;
  std::string names;
  std::string items;
  for (int i = 0; i < 1000; ++i) {
    std::string n = "node-" + std::to_string(i);
    if (i % 2 == 0) {
      ts.view.setNodeSupply(
          node(n, {lvmGroup("vg0", 100 * GiB, static_cast<uint64_t>(i % 90 + 10) * GiB)}));
    }
    names += (i ? "," : "") + ("\"" + n + "\"");
    items += (i ? "," : "") +
             ("{\"metadata\":{\"name\":\"" + n +
              "\",\"labels\":{\"a\":\"b\"}},\"status\":{\"capacity\":{\"cpu\":\"8\"}}}");
  }
  const std::string pod = R"({"metadata":{"name":"db-0","namespace":"default"},"spec":{"volumes":[)"
                          R"({"name":"data","persistentVolumeClaim":{"claimName":"data-db-0"}}]}})";
  const std::string by_name = "{\"Pod\":" + pod + ",\"Nodes\":null,\"NodeNames\":[" + names + "]}";
  const std::string by_node = "{\"Pod\":" + pod + ",\"Nodes\":{\"metadata\":{},\"items\":[" +
                              items + "]},\"NodeNames\":null}";

  auto check = [](const json::value& v, const char* key) {
    std::size_t passed = 0;
    if (std::string(key) == "NodeNames") {
      passed = v.at("NodeNames").as_array().size();
    } else {
      passed = v.at("Nodes").at("items").as_array().size();
    }
    CHECK(passed == 500);  // the even nodes; all have >= 10GiB free
    CHECK(v.at("FailedAndUnresolvableNodes").as_object().size() == 500);
  };

  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      Client c(ts.server->port());
      for (int i = 0; i < 3; ++i) {  // several requests per connection
        auto f = c.send(http::verb::post, "/scheduler/filter", t % 2 ? by_node : by_name);
        auto p = c.send(http::verb::post, "/scheduler/prioritize", by_name);
        if (f.result_int() == 200 && p.result_int() == 200 &&
            json::parse(p.body()).as_array().size() == 1000) {
          json::value v = json::parse(f.body());
          bool good = t % 2 ? v.at("Nodes").at("items").as_array().size() == 500
                            : v.at("NodeNames").as_array().size() == 500;
          ok += good ? 1 : 0;
        }
      }
    });
  }
  for (auto& th : clients) {
    th.join();
  }
  CHECK(ok == 12);
  Client c(ts.server->port());
  check(json::parse(c.send(http::verb::post, "/scheduler/filter", by_name).body()), "NodeNames");
  check(json::parse(c.send(http::verb::post, "/scheduler/filter", by_node).body()), "Nodes");
}

TEST_CASE("HTTP: routes, bad listen addresses, graceful stop", "[unit][extender][http]") {
  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  std::thread th([&] { ioc.run(); });

  HttpServerOptions bad;
  bad.listen = "127.0.0.1";
  CHECK(makeHttpServer(ioc.get_executor(), bad)->start().code() ==
        absl::StatusCode::kInvalidArgument);
  bad.listen = "not-an-ip:80";
  CHECK(makeHttpServer(ioc.get_executor(), bad)->start().code() ==
        absl::StatusCode::kInvalidArgument);
  bad.listen = "127.0.0.1:0";
  bad.tls_cert_file = "/nonexistent/cert.pem";
  bad.tls_key_file = "/nonexistent/key.pem";
  CHECK(makeHttpServer(ioc.get_executor(), bad)->start().code() ==
        absl::StatusCode::kInvalidArgument);

  HttpServerOptions o;
  auto server = makeHttpServer(ioc.get_executor(), o);
  server->route("GET", "/readyz", [](const HttpRequest& r) {
    return HttpResponse{200, "text/plain", "ready " + r.target + "\n", {}};
  });
  REQUIRE(server->start().ok());
  {
    HttpServerOptions same;
    same.listen = "127.0.0.1:" + std::to_string(server->port());
    CHECK(makeHttpServer(ioc.get_executor(), same)->start().code() ==
          absl::StatusCode::kUnavailable);
  }
  Client idle(server->port());
  auto r = idle.send(http::verb::get, "/readyz?verbose=1");
  CHECK(r.body() == "ready /readyz?verbose=1\n");
  server->route("GET", "/metrics", [](const HttpRequest&) {
    return HttpResponse{200, "text/plain", "m 1\n", {}};
  });
  CHECK(idle.send(http::verb::get, "/metrics").body() == "m 1\n");

  server->stop();
  // The idle keep-alive connection is closed by the server.
  beast::error_code ec;
  http::response<http::string_body> res;
  http::read(idle.socket, idle.buffer, res, ec);
  CHECK(ec);
  // New connections are not served any more: refused — or, since tests run in parallel and the
  // freed port may at once be taken by another test's listener, at least not answered by us.
  const uint16_t old_port = server->port();
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), old_port), ec);
  if (!ec) {
    http::request<http::string_body> req{http::verb::get, "/readyz?again=1", 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(s, req, ec);
    beast::flat_buffer buf;
    http::response<http::string_body> again;
    if (!ec) {
      http::read(s, buf, again, ec);
    }
    CHECK((ec || again.body() != "ready /readyz?again=1\n"));
  }
  server.reset();
  work.reset();
  ioc.stop();
  th.join();
}

TEST_CASE("HTTP: custom prefix and verbs, runtime strategy, view updates while serving",
          "[unit][extender][http]") {
  InMemoryClusterView view;
  view.upsertStorageClass(carinaClass("lvm", {{"carina.storage.io/disk-group-name", "vg"}}));
  view.upsertClaim(claim("data", "lvm", 16 * GiB));
  view.setNodeSupply(node("w4", {lvmGroup("vg", 100 * GiB, 40 * GiB)}));
  core::ExtenderConfig cfg;
  cfg.path_prefix = "/carina/";
  cfg.filter_verb = "predicates/filter";
  cfg.prioritize_verb = "";  // not served
  ExtenderService service(view, cfg, core::SchedulerStrategy::Binpack);
  CHECK(service.filterPath() == "/carina/predicates/filter");

  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  std::thread th([&] { ioc.run(); });
  auto server = makeHttpServer(ioc.get_executor(), serverOptions(cfg));
  // serverOptions() keeps the configured listen address; tests bind an ephemeral port.
  server = makeHttpServer(ioc.get_executor(), HttpServerOptions{});
  service.registerRoutes(*server);
  REQUIRE(server->start().ok());

  const std::string body =
      R"({"Pod":{"metadata":{"name":"p"},"spec":{"volumes":[{"name":"d","persistentVolumeClaim":)"
      R"({"claimName":"data"}}]}},"NodeNames":["w4"]})";
  Client c(server->port());
  CHECK(c.send(http::verb::post, "/carina/predicates/filter", body).result_int() == 200);
  CHECK(c.send(http::verb::post, "/carina/prioritize", body).result_int() == 404);

  // The scores come from ExtenderService::prioritize; the strategy is switched at runtime.
  HttpRequest req;
  req.body = body;
  CHECK(json::parse(service.prioritize(req).body).as_array()[0].at("Score") == 8);
  service.setStrategy(core::SchedulerStrategy::Spreadout);
  CHECK(json::parse(service.prioritize(req).body).as_array()[0].at("Score") == 2);

  // View updates from another thread while requests are served.
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; !done && i < 2000; ++i) {
      view.setNodeSupply(
          node("w4", {lvmGroup("vg", 100 * GiB, static_cast<uint64_t>(20 + i % 60) * GiB)}));
      Claim other = claim("other-" + std::to_string(i % 5), "lvm", GiB);
      other.selected_node = "w4";
      view.upsertClaim(other);
    }
  });
  for (int i = 0; i < 50; ++i) {
    auto r = c.send(http::verb::post, "/carina/predicates/filter", body);
    CHECK(r.result_int() == 200);
  }
  done = true;
  writer.join();

  server->stop();
  server.reset();
  work.reset();
  ioc.stop();
  th.join();
}

TEST_CASE("HTTP: Expect 100-continue and read timeouts", "[unit][extender][http]") {
  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  std::thread th([&] { ioc.run(); });
  HttpServerOptions o;
  o.idle_timeout = std::chrono::milliseconds(300);
  o.read_timeout = std::chrono::milliseconds(300);
  auto server = makeHttpServer(ioc.get_executor(), o);
  server->route("POST", "/echo", [](const HttpRequest& r) {
    return HttpResponse{200, "text/plain", r.body, {}};
  });
  REQUIRE(server->start().ok());

  SECTION("100-continue") {
    Client c(server->port());
    net::write(c.socket, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: x\r\n"
                                                 "Content-Length: 5\r\n"
                                                 "Expect: 100-continue\r\n\r\n")));
    std::string interim;
    net::read_until(c.socket, net::dynamic_buffer(interim), "\r\n\r\n");
    CHECK(interim.rfind("HTTP/1.1 100", 0) == 0);
    interim.erase(0, interim.find("\r\n\r\n") + 4);
    net::write(c.socket, net::buffer(std::string("hello")));
    http::response<http::string_body> res;
    beast::flat_buffer buf;
    buf.commit(net::buffer_copy(buf.prepare(interim.size()), net::buffer(interim)));
    http::read(c.socket, buf, res);
    CHECK(res.result_int() == 200);
    CHECK(res.body() == "hello");
  }
  SECTION("a stalled request is closed by the server") {
    Client c(server->port());
    net::write(c.socket,
               net::buffer(std::string("POST /echo HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc")));
    beast::error_code ec;
    http::response<http::string_body> res;
    http::read(c.socket, c.buffer, res, ec);
    CHECK(ec);
  }
  SECTION("an idle keep-alive connection is closed by the server") {
    Client c(server->port());
    beast::error_code ec;
    http::response<http::string_body> res;
    http::read(c.socket, c.buffer, res, ec);
    CHECK(ec);
    Client again(server->port());
    CHECK(again.send(http::verb::post, "/echo", "x").body() == "x");
  }
  server->stop();
  server.reset();
  work.reset();
  ioc.stop();
  th.join();
}

TEST_CASE("HTTP: slow readers of large replies, pipelining, bodies in pieces, on_request",
          "[unit][extender][http]") {
  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  std::vector<std::thread> threads;
  struct Seen {
    std::string path;
    unsigned status;
  };
  std::mutex mu;
  std::vector<Seen> seen;
  HttpServerOptions o;
  o.body_limit_bytes = 1024;
  o.on_request = [&](const std::string& path, unsigned status, std::chrono::microseconds us) {
    CHECK(us.count() >= 0);
    std::lock_guard lock(mu);
    seen.push_back({path, status});
  };
  auto server = makeHttpServer(ioc.get_executor(), o);
  // 32 MiB: far more than a socket send buffer, so the direct write stops at would_block and the
  // rest must follow asynchronously, intact and in order.
  std::string big(32 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  }
  server->route("GET", "/big", [&](const HttpRequest&) {
    return HttpResponse{200, "application/octet-stream", big, {}};
  });
  server->route("POST", "/echo", [](const HttpRequest& r) {
    return HttpResponse{200, "text/plain", r.body, {}};
  });
  REQUIRE(server->start().ok());
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] { ioc.run(); });
  }

  SECTION("a reply larger than the socket buffer, read slowly") {
    Client c(server->port());
    http::request<http::string_body> req{http::verb::get, "/big", 11};
    req.set(http::field::host, "127.0.0.1");
    http::write(c.socket, req);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    http::read(c.socket, c.buffer, parser);
    CHECK(parser.get().result_int() == 200);
    CHECK(parser.get().body().size() == big.size());
    CHECK(parser.get().body() == big);
    // The connection stays usable.
    CHECK(c.send(http::verb::post, "/echo", "after").body() == "after");
  }
  SECTION("two pipelined requests in one write are answered in order") {
    Client c(server->port());
    net::write(c.socket, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: x\r\n"
                                                 "Content-Length: 3\r\n\r\none"
                                                 "POST /echo HTTP/1.1\r\nHost: x\r\n"
                                                 "Content-Length: 3\r\n\r\ntwo")));
    http::response<http::string_body> first;
    http::read(c.socket, c.buffer, first);
    http::response<http::string_body> second;
    http::read(c.socket, c.buffer, second);
    CHECK(first.body() == "one");
    CHECK(second.body() == "two");
  }
  SECTION("a body that arrives in pieces after the header") {
    Client c(server->port());
    net::write(c.socket, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: x\r\n"
                                                 "Content-Length: 10\r\n\r\nabc")));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    net::write(c.socket, net::buffer(std::string("defg")));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    net::write(c.socket, net::buffer(std::string("hij")));
    http::response<http::string_body> res;
    http::read(c.socket, c.buffer, res);
    CHECK(res.body() == "abcdefghij");
  }
  SECTION("oversized and malformed requests are reported with their status") {
    {
      Client c(server->port());
      auto r = c.send(http::verb::post, "/echo?x=1", std::string(2048, 'x'));
      CHECK(r.result_int() == 413);
    }
    {
      Client c(server->port());
      net::write(c.socket, net::buffer(std::string("POST /echo HTTP/1.1\r\nHost: x\r\n"
                                                   "Content-Length: nope\r\n\r\n")));
      http::response<http::string_body> res;
      http::read(c.socket, c.buffer, res);
      CHECK(res.result_int() == 400);
    }
    carina::test::eventually(
        [&] {
          std::lock_guard lock(mu);
          return seen.size() >= 2;
        },
        std::chrono::seconds(10));
    std::lock_guard lock(mu);
    REQUIRE(seen.size() == 2);
    // Two connections: the reports may come in either order.
    if (seen[0].status != 413) {
      std::swap(seen[0], seen[1]);
    }
    CHECK(seen[0].path == "/echo");  // the query is not part of the path
    CHECK(seen[0].status == 413);
    CHECK(seen[1].status == 400);
  }
  SECTION("every answered request is reported once, after its reply") {
    Client c(server->port());
    for (int i = 0; i < 5; ++i) {
      CHECK(c.send(http::verb::post, "/echo", "x").result_int() == 200);
    }
    CHECK(c.send(http::verb::get, "/nope").result_int() == 404);
    carina::test::eventually(
        [&] {
          std::lock_guard lock(mu);
          return seen.size() >= 6;
        },
        std::chrono::seconds(10));
    std::lock_guard lock(mu);
    REQUIRE(seen.size() == 6);
    CHECK(seen[0].path == "/echo");
    CHECK(seen[0].status == 200);
    CHECK(seen[5].path == "/nope");
    CHECK(seen[5].status == 404);
  }
  server->stop();
  server.reset();
  work.reset();
  ioc.stop();
  for (auto& t : threads) {
    t.join();
  }
}

TEST_CASE("HTTP: TLS from certificate and key files", "[unit][extender][http]") {
  carina::test::TempDir dir;
  auto gen = carina::test::run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                "-keyout", dir.file("key.pem"), "-out", dir.file("cert.pem"),
                                "-days", "1", "-subj", "/CN=127.0.0.1"});
  REQUIRE(gen.exit_code == 0);

  net::io_context ioc;
  auto work = net::make_work_guard(ioc);
  std::thread th([&] { ioc.run(); });
  HttpServerOptions o;
  o.tls_cert_file = dir.file("cert.pem");
  o.tls_key_file = dir.file("key.pem");
  auto server = makeHttpServer(ioc.get_executor(), o);
  server->route("GET", "/healthz", [](const HttpRequest&) {
    return HttpResponse{200, "text/plain", "ok\n", {}};
  });
  REQUIRE(server->start().ok());

  {
    net::io_context cio;
    net::ssl::context ctx(net::ssl::context::tls_client);
    ctx.set_verify_mode(net::ssl::verify_none);
    beast::ssl_stream<beast::tcp_stream> stream(cio, ctx);
    beast::get_lowest_layer(stream).connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), server->port()));
    stream.handshake(net::ssl::stream_base::client);
    beast::flat_buffer buf;
    for (int i = 0; i < 2; ++i) {  // keep-alive over TLS
      http::request<http::string_body> req{http::verb::get, "/healthz", 11};
      req.set(http::field::host, "127.0.0.1");
      http::write(stream, req);
      http::response<http::string_body> res;
      http::read(stream, buf, res);
      CHECK(res.result_int() == 200);
      CHECK(res.body() == "ok\n");
    }
  }
  {
    // A plain-HTTP client talking to the TLS port gets nothing useful, and the server survives.
    Client plain(server->port());
    beast::error_code ec;
    http::request<http::string_body> req{http::verb::get, "/healthz", 11};
    http::write(plain.socket, req, ec);
    http::response<http::string_body> res;
    http::read(plain.socket, plain.buffer, res, ec);
    CHECK(ec);
  }
  server->stop();
  server.reset();
  work.reset();
  ioc.stop();
  th.join();
}

}  // namespace
}  // namespace carina::extender
