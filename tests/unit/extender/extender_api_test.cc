#include "extender/extender_api.h"

#include <fstream>
#include <sstream>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "tests/unit/extender/test_cluster.h"

namespace carina::extender {
namespace {

using namespace testing;  // NOLINT
namespace json = boost::json;

std::string readTestdata(const std::string& name) {
  std::ifstream in(std::string(CARINA_EXTENDER_TESTDATA) + "/" + name);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/** The cluster of PROTOCOLS.md §6: pod db-0 needs data-db-0 (10Gi) + ephemeral scratch (5Gi)
 *  from class local-lvm; worker-1 has room, worker-2 has 8GiB free, worker-3 runs no carina. */
void protocolsCluster(InMemoryClusterView& view) {
  view.upsertStorageClass(carinaClass("local-lvm", {{"carina.storage.io/disk-group-name", "vg0"}}));
  view.upsertClaim(claim("data-db-0", "local-lvm", 10 * GiB));
  view.setNodeSupply(node("worker-1", {lvmGroup("vg0", 100 * GiB, 70 * GiB)}));
  view.setNodeSupply(node("worker-2", {lvmGroup("vg0", 100 * GiB, 8 * GiB)}));
}

json::value parse(const std::string& s) { return json::parse(s); }

TEST_CASE("parseExtenderArgs reads kube-scheduler payloads", "[unit][extender]") {
  SECTION("nodeCacheCapable: false (full Node objects)") {
    std::string body = readTestdata("filter_nodes_mode.json");
    auto args = parseExtenderArgs(body);
    REQUIRE(args.ok());
    CHECK(args->pod.name == "db-0");
    CHECK(args->pod.ns == "default");
    REQUIRE(args->pod.volumes.size() == 2);
    CHECK(args->pod.volumes[0].claim_name == "data-db-0");
    CHECK_FALSE(args->pod.volumes[0].ephemeral);
    CHECK(args->pod.volumes[1].claim_name == "db-0-scratch");
    REQUIRE(args->pod.volumes[1].ephemeral);
    CHECK(args->pod.volumes[1].ephemeral->request_bytes == 5 * GiB);
    CHECK(args->pod.volumes[1].ephemeral->storage_class == "local-lvm");
    CHECK_FALSE(args->node_names);
    REQUIRE(args->nodes);
    CHECK(args->candidates() == std::vector<std::string>{"worker-1", "worker-2", "worker-3"});
  }
  SECTION("nodeCacheCapable: true (names only, Nodes null)") {
    auto args = parseExtenderArgs(readTestdata("filter_names_mode.json"));
    REQUIRE(args.ok());
    CHECK_FALSE(args->nodes);
    CHECK(args->candidates() == std::vector<std::string>{"worker-1", "worker-2", "worker-3"});
  }
  SECTION("legacy lowercase keys (k8s <= 1.15)") {
    auto args = parseExtenderArgs(readTestdata("filter_legacy_lowercase.json"));
    REQUIRE(args.ok());
    CHECK(args->pod.name == "db-0");
    CHECK(args->candidates().size() == 3);
  }
  SECTION("null lists") {
    auto args = parseExtenderArgs(
        R"({"Pod":{"metadata":{"name":"p"},"spec":{"volumes":null}},"Nodes":null,"NodeNames":[]})");
    REQUIRE(args.ok());
    CHECK(args->pod.volumes.empty());
    CHECK(args->candidates().empty());
    auto items_null = parseExtenderArgs(R"({"Pod":{},"Nodes":{"items":null},"NodeNames":null})");
    REQUIRE(items_null.ok());
    CHECK(items_null->candidates().empty());
  }
  SECTION("NodeNames: escapes, long names, duplicate keys, any member order") {
    auto args = parseExtenderArgs(
        R"({"NodeNames":["a\u0062c","d\"e","f\\g","\u00e9t\u00e9"],"Pod":{"metadata":{"name":"p",)"
        R"("labels":{"x":"1"},"n":[1,-2,3.5,true,null,{"k":[]}]}}})");
    REQUIRE(args.ok());
    CHECK(*args->node_names ==
          std::vector<std::string>{"abc", "d\"e", "f\\g", "\xc3\xa9t\xc3\xa9"});
    CHECK(args->pod.name == "p");
    // A long name full of escapes (the parser hands it over in parts).
    std::string longName;
    std::string escaped;
    for (int i = 0; i < 4000; ++i) {
      longName += "n\"";
      escaped += "n\\\"";
    }
    auto big = parseExtenderArgs(R"({"Pod":{},"NodeNames":[")" + escaped + R"(","b"]})");
    REQUIRE(big.ok());
    REQUIRE(big->node_names->size() == 2);
    CHECK((*big->node_names)[0] == longName);
    CHECK((*big->node_names)[1] == "b");
    // The exact spelling wins over a case-insensitive one, wherever it is.
    for (const char* body :
         {R"({"nodenames":["x"],"NodeNames":["a"],"Pod":{}})",
          R"({"NodeNames":["a"],"nodenames":["x"],"pod":{"metadata":{"name":"q"}},"Pod":{}})"}) {
      INFO(body);
      auto dup = parseExtenderArgs(body);
      REQUIRE(dup.ok());
      CHECK(*dup->node_names == std::vector<std::string>{"a"});
      CHECK(dup->pod.name.empty());
    }
    auto lower = parseExtenderArgs(R"({"pod":{"metadata":{"name":"l"}},"nodenames":["z"]})");
    REQUIRE(lower.ok());
    CHECK(lower->pod.name == "l");
    CHECK(*lower->node_names == std::vector<std::string>{"z"});
    // Unknown members of any shape are skipped.
    auto extra = parseExtenderArgs(
        R"({"Other":{"a":[1,{"b":null}]},"Pod":{},"X":"y","N":1,"NodeNames":["a"],"Z":[[]]})");
    REQUIRE(extra.ok());
    CHECK(*extra->node_names == std::vector<std::string>{"a"});
  }
  SECTION("NodeNames of the wrong shape name the field") {
    for (const char* bad :
         {R"({"Pod":{},"NodeNames":[["a"]]})", R"({"Pod":{},"NodeNames":[{}]})",
          R"({"Pod":{},"NodeNames":5})", R"({"Pod":{},"NodeNames":"a"})",
          R"({"Pod":{},"NodeNames":["a",null]})", R"({"Pod":{},"NodeNames":{"a":1}})"}) {
      INFO(bad);
      auto r = parseExtenderArgs(bad);
      REQUIRE(r.status().code() == absl::StatusCode::kInvalidArgument);
      CHECK(r.status().message().find("NodeNames") != std::string_view::npos);
    }
  }
  SECTION("malformed input is InvalidArgument, never a crash") {
    for (const char* bad :
         {"", "{", "[]", "null", "{\"Pod\":{}}", "{\"NodeNames\":[]}",
          "{\"Pod\":{},\"NodeNames\":{}}", "{\"Pod\":{},\"NodeNames\":[1]}",
          "{\"Pod\":[],\"NodeNames\":[]}", "{\"Pod\":{\"spec\":{\"volumes\":{}}},\"NodeNames\":[]}",
          "{\"Pod\":{\"metadata\":{\"name\":5}},\"NodeNames\":[]}",
          "{\"Pod\":{},\"Nodes\":{\"items\":[{}]}}",
          "{\"Pod\":{},\"Nodes\":{\"items\":[{\"metadata\":{\"name\":1}}]}}",
          "{\"Pod\":{\"spec\":{\"volumes\":[{\"name\":\"s\",\"ephemeral\":{"
          "\"volumeClaimTemplate\":{\"spec\":{\"resources\":{\"requests\":{"
          "\"storage\":\"lots\"}}}}}}]}},\"NodeNames\":[]}",
          "{\"Pod\":{},\"NodeNames\":[]} trailing"}) {
      INFO(bad);
      CHECK(parseExtenderArgs(bad).status().code() == absl::StatusCode::kInvalidArgument);
    }
  }
}

TEST_CASE("filter replies in the form of the request", "[unit][extender]") {
  InMemoryClusterView view;
  protocolsCluster(view);
  ScoringOptions opts;

  SECTION("NodeNames in, NodeNames out; failures with reasons") {
    ApiReply r = handleFilter(readTestdata("filter_names_mode.json"), view, opts);
    REQUIRE(r.status == 200);
    json::value v = parse(r.body);
    const json::object& o = v.as_object();
    CHECK(o.at("NodeNames") == json::array{"worker-1"});
    CHECK(o.at("Nodes").is_null());
    CHECK(o.at("Error") == "");
    const json::object& failed = o.at("FailedAndUnresolvableNodes").as_object();
    REQUIRE(failed.size() == 2);
    std::string w2(failed.at("worker-2").as_string());
    CHECK(w2.rfind("carina: group vg0: insufficient free space", 0) == 0);
    CHECK(w2.find("need 15GiB = default/data-db-0 10GiB + default/db-0-scratch 5GiB, free 8GiB") !=
          std::string::npos);
    CHECK(std::string(failed.at("worker-3").as_string()).rfind("carina: ", 0) == 0);
    CHECK(o.at("FailedNodes").as_object().empty());
  }
  SECTION("Nodes in, the unmodified Node objects echoed byte for byte") {
    std::string body = readTestdata("filter_nodes_mode.json");
    ApiReply r = handleFilter(body, view, opts);
    REQUIRE(r.status == 200);
    json::value in = parse(body);
    json::value out = parse(r.body);
    const json::array& items = out.at("Nodes").at("items").as_array();
    REQUIRE(items.size() == 1);
    CHECK(items[0] == in.at("Nodes").at("items").as_array()[0]);
    CHECK(out.at("NodeNames").is_null());
    // The exact source bytes (pretty-printing included) are in the reply.
    std::size_t b = body.find("{\n        \"metadata\": {\n          \"name\": \"worker-1\"");
    std::size_t e = body.find("\"sizeBytes\": 157824321 }\n          ]\n        }\n      }");
    REQUIRE(b != std::string::npos);
    REQUIRE(e != std::string::npos);
    std::string_view worker1(body.data() + b, e - b);
    CHECK(r.body.find(worker1) != std::string::npos);
    CHECK(out.at("FailedAndUnresolvableNodes").as_object().size() == 2);
  }
  SECTION("legacy lowercase request") {
    ApiReply r = handleFilter(readTestdata("filter_legacy_lowercase.json"), view, opts);
    REQUIRE(r.status == 200);
    CHECK(parse(r.body).at("NodeNames") == json::array{"worker-1"});
  }
  SECTION("an unseen claim is a whole-call Error (retried by kube-scheduler)") {
    view.removeClaim("default", "data-db-0");
    ApiReply r = handleFilter(readTestdata("filter_names_mode.json"), view, opts);
    REQUIRE(r.status == 200);
    json::value v = parse(r.body);
    CHECK(v.at("NodeNames").is_null());
    CHECK(std::string(v.at("Error").as_string()) ==
          "carina: PVC default/data-db-0 not found in cache yet");
  }
  SECTION("malformed bodies are 400 with a message") {
    ApiReply r = handleFilter("{not json", view, opts);
    CHECK(r.status == 400);
    CHECK(r.body.find("malformed JSON") != std::string::npos);
  }
  SECTION("unknown node names fail with a reason") {
    ApiReply r = handleFilter(
        R"({"Pod":{"metadata":{"name":"db-0","namespace":"default"},"spec":{"volumes":[)"
        R"({"name":"data","persistentVolumeClaim":{"claimName":"data-db-0"}}]}},)"
        R"("NodeNames":["worker-1","no-such-node"]})",
        view, opts);
    REQUIRE(r.status == 200);
    json::value v = parse(r.body);
    CHECK(v.at("NodeNames") == json::array{"worker-1"});
    CHECK(v.at("FailedAndUnresolvableNodes").as_object().contains("no-such-node"));
  }
}

TEST_CASE("prioritize replies a bare array of integer scores", "[unit][extender]") {
  InMemoryClusterView view;
  protocolsCluster(view);
  ApiReply r = handlePrioritize(readTestdata("prioritize_names_mode.json"), view, ScoringOptions{});
  REQUIRE(r.status == 200);
  json::value v = parse(r.body);
  const json::array& a = v.as_array();
  REQUIRE(a.size() == 2);
  CHECK(a[0].at("Host") == "worker-1");
  REQUIRE(a[0].at("Score").is_int64());
  // worker-1: VG 100GiB, 30GiB used, +15GiB => u = 0.45 => binpack round(4.5)
  CHECK(a[0].at("Score").as_int64() >= 4);
  CHECK(a[0].at("Score").as_int64() <= 5);
  CHECK(a[1].at("Score").as_int64() == 0);  // does not fit
  CHECK(r.body.find("\"Score\":") != std::string::npos);
  CHECK(r.body.find('.') == std::string::npos);  // integers only

  view.removeClaim("default", "data-db-0");
  ApiReply e = handlePrioritize(readTestdata("prioritize_names_mode.json"), view, ScoringOptions{});
  REQUIRE(e.status == 200);
  CHECK(parse(e.body).as_array().size() == 2);
}

TEST_CASE("appendJsonString escapes", "[unit][extender]") {
  std::string out;
  appendJsonString(out, std::string("a\"b\\c\n\x01", 7));
  CHECK(out == "\"a\\\"b\\\\c\\n\\u0001\"");
  CHECK(json::parse(out) == json::string(std::string("a\"b\\c\n\x01", 7)));
}

TEST_CASE("parsePodJson for carinactl", "[unit][extender]") {
  auto p = parsePodJson(
      R"({"metadata":{"name":"x","namespace":"ns1","uid":"u"},"spec":{"volumes":[)"
      R"({"name":"a","persistentVolumeClaim":{"claimName":"c1"}},{"name":"h","hostPath":{}}]}})");
  REQUIRE(p.ok());
  CHECK(p->ns == "ns1");
  REQUIRE(p->volumes.size() == 1);
  CHECK(p->volumes[0].claim_name == "c1");
  CHECK(parsePodJson("nope").status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace carina::extender
