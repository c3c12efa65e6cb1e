// The agent's HTTP listener as kube-scheduler and operators use it: the real carina-agent process
// (standalone, one loop disk) answering the extender verbs over loopback, refusing a malformed
// body without going down, and reporting what it answered in GET /debug/extender.

#include <regex>
#include <string>

#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "tests/integration/app/agent_process.h"
#include "tests/support/http_test_client.h"
#include "tests/support/loop_device.h"
#include "tests/support/test_support.h"

namespace {

namespace http = boost::beast::http;
namespace json = boost::json;

constexpr uint64_t MiB = 1024 * 1024;

/** The port the agent logged ("HTTP server listening", listen 127.0.0.1:0 picks one). */
uint16_t loggedPort(const std::string& log) {
  std::smatch m;
  static const std::regex re(R"re("msg":"HTTP server listening".*?"port":([0-9]+))re");
  if (!std::regex_search(log, m, re)) {
    return 0;
  }
  return static_cast<uint16_t>(std::stoi(m[1].str()));
}

using Http = carina::test::HttpTestClient;

const json::object* pathStats(const json::value& stats, const std::string& path) {
  for (const json::value& p : stats.at("paths").as_array()) {
    if (p.at("path").as_string() == path) {
      return &p.as_object();
    }
  }
  return nullptr;
}

}  // namespace

TEST_CASE("the agent serves the extender and reports it in /debug/extender",
          "[integration][root]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  carina::test::TempDir dir;
  carina::test::LoopDevice disk(512 * MiB);
  carina::test::AgentSetup setup;
  setup.dir = dir.path();
  setup.disks = {disk.name()};
  carina::test::AgentProcess agent(setup);
  agent.start();
  uint16_t port = 0;
  REQUIRE(carina::test::eventually(
      [&] {
        port = loggedPort(agent.log());
        return port != 0;
      },
      std::chrono::seconds(20)));
  INFO(agent.log());

  Http c(port);
  CHECK(c.send(http::verb::get, "/healthz").result_int() == 200);
  // A pod without carina volumes passes every node, named or not; keys as kube-scheduler sends.
  const std::string args =
      R"({"Pod":{"metadata":{"name":"web","namespace":"default"},"spec":{"volumes":[]}},)"
      R"("Nodes":null,"NodeNames":["a","b"]})";
  auto f = c.send(http::verb::post, "/scheduler/filter", args);
  REQUIRE(f.result_int() == 200);
  json::value fv = json::parse(f.body());
  CHECK(fv.at("NodeNames").as_array().size() == 2);
  CHECK(fv.at("Error").as_string() == "");
  auto p = c.send(http::verb::post, "/scheduler/prioritize", args);
  REQUIRE(p.result_int() == 200);
  CHECK(json::parse(p.body()).as_array().size() == 2);
  // Malformed: 400 with a message, and the same connection is still answered afterwards.
  auto bad = c.send(http::verb::post, "/scheduler/filter", R"({"Pod": )");
  CHECK(bad.result_int() == 400);
  CHECK(bad.body().find("malformed JSON") != std::string::npos);
  Http again(port);
  CHECK(again.send(http::verb::post, "/scheduler/filter", args).result_int() == 200);

  // The stats are recorded after each reply is written: ask until they are all in.
  json::value stats;
  CHECK(carina::test::eventually(
      [&] {
        auto r = again.send(http::verb::get, "/debug/extender");
        if (r.result_int() != 200) {
          return false;
        }
        stats = json::parse(r.body());
        const json::object* fs = pathStats(stats, "/scheduler/filter");
        return fs != nullptr && fs->at("count").as_int64() == 3;
      },
      std::chrono::seconds(10)));
  INFO(json::serialize(stats));
  const json::object* fs = pathStats(stats, "/scheduler/filter");
  REQUIRE(fs != nullptr);
  CHECK(fs->at("errors").as_int64() == 1);
  CHECK(fs->at("window").as_int64() == 3);
  CHECK(fs->at("p50Micros").as_int64() <= fs->at("p99Micros").as_int64());
  CHECK(fs->at("p99Micros").as_int64() <= fs->at("maxMicros").as_int64());
  const json::object* ps = pathStats(stats, "/scheduler/prioritize");
  REQUIRE(ps != nullptr);
  CHECK(ps->at("count").as_int64() == 1);
  CHECK(ps->at("errors").as_int64() == 0);
  agent.stop();
}
