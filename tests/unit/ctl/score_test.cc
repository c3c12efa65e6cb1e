#include "csi/carinactl/score.h"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "csi/carinactl/cli.h"

namespace json = boost::json;
using carina::ctl::parseScoreReply;
using carina::ctl::renderScore;
using carina::ctl::ScoreReport;
using carina::ctl::scoreRequestFromText;
using carina::ctl::yamlToJson;

namespace {

json::value request(const std::string& text) {
  auto body = scoreRequestFromText(text);
  INFO(body.status().message());
  REQUIRE(body.ok());
  return json::parse(*body);
}

std::string errorOf(const std::string& text) {
  auto body = scoreRequestFromText(text);
  REQUIRE_FALSE(body.ok());
  CHECK(body.status().code() == absl::StatusCode::kInvalidArgument);
  return std::string(body.status().message());
}

const char* kMultiDoc = R"(# a pod with its claim and class, not created yet
apiVersion: v1
kind: Pod
metadata:
  name: db-0
  namespace: prod
spec:
  containers:
    - name: c
      image: postgres:16
  volumes:
    - name: data
      persistentVolumeClaim:
        claimName: data-db-0
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data-db-0
spec:
  storageClassName: carina-lvm
  resources:
    requests:
      storage: 10Gi
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: carina-lvm
provisioner: carina.storage.io
parameters:
  carina.storage.io/disk-group-name: "vg"
  carina.storage.io/exclusivity-disk: false
---
)";

}  // namespace

TEST_CASE("score: multi-document YAML becomes the /debug/score request", "[unit][ctl]") {
  json::value v = request(kMultiDoc);
  CHECK(v.at("pod").at("metadata").at("name") == "db-0");
  CHECK(v.at("pod").at("spec").at("volumes").at(0).at("persistentVolumeClaim").at("claimName") ==
        "data-db-0");
  REQUIRE(v.at("claims").as_array().size() == 1);
  CHECK(v.at("claims").at(0).at("spec").at("resources").at("requests").at("storage") == "10Gi");
  REQUIRE(v.at("storageClasses").as_array().size() == 1);
  const json::value& params = v.at("storageClasses").at(0).at("parameters");
  CHECK(params.at("carina.storage.io/disk-group-name") == "vg");
  CHECK(params.at("carina.storage.io/exclusivity-disk") == false);  // plain YAML boolean
}

TEST_CASE("score: JSON pods, kind: List and a bare pod", "[unit][ctl]") {
  SECTION("a JSON pod (kube-scheduler's or kubectl's -o json shape)") {
    json::value v =
        request(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"x":"007"}},)"
                R"("spec":{"volumes":[{"name":"v","persistentVolumeClaim":{"claimName":"c"}}]}})");
    CHECK(v.at("pod").at("metadata").at("labels").at("x") == "007");  // quoted stays a string
    CHECK(v.at("claims").as_array().empty());
  }
  SECTION("kind: List with items of every kind") {
    json::value v = request(R"({"kind":"List","items":[
        {"kind":"StorageClass","metadata":{"name":"s"},"provisioner":"carina.storage.io"},
        {"kind":"PersistentVolumeClaim","metadata":{"name":"c"},"spec":{}},
        {"kind":"Pod","metadata":{"name":"p"},"spec":{}}]})");
    CHECK(v.at("pod").at("metadata").at("name") == "p");
    CHECK(v.at("claims").as_array().size() == 1);
    CHECK(v.at("storageClasses").as_array().size() == 1);
  }
  SECTION("one document without a kind is the pod") {
    json::value v = request("metadata:\n  name: bare\nspec:\n  volumes: []\n");
    CHECK(v.at("pod").at("metadata").at("name") == "bare");
  }
}

TEST_CASE("score: a bad file names the document and the field", "[unit][ctl]") {
  CHECK_THAT(errorOf("kind: Pod\nmetadata: {name: [unclosed\n"),
             Catch::Contains("not valid YAML or JSON") && Catch::Contains("line"));
  CHECK_THAT(errorOf(""), Catch::Contains("no Pod"));
  CHECK_THAT(errorOf("kind: PersistentVolumeClaim\nmetadata: {name: c}\nspec: {}\n"),
             Catch::Contains("no Pod"));
  CHECK_THAT(errorOf("- a\n- b\n"), Catch::Contains("document 1: expected a Kubernetes object"));
  CHECK_THAT(errorOf("kind: Pod\nmetadata: {name: a}\n---\nkind: Pod\nmetadata: {name: b}\n"),
             Catch::Contains("document 2 (Pod): a second Pod (the first is in document 1)"));
  CHECK_THAT(errorOf("kind: Pod\nmetadata: {}\n"),
             Catch::Contains("document 1 (Pod): metadata.name: required"));
  CHECK_THAT(errorOf("kind: Pod\nmetadata: {name: a}\nspec: {volumes: {x: 1}}\n"),
             Catch::Contains("spec.volumes: expected a list"));
  CHECK_THAT(errorOf("kind: Pod\nmetadata: {name: a}\n---\nkind: PersistentVolumeClaim\n"
                     "metadata: {name: c}\n"),
             Catch::Contains("document 2 (PersistentVolumeClaim): spec: required"));
  CHECK_THAT(errorOf("kind: Pod\nmetadata: {name: a}\n---\nkind: StorageClass\n"
                     "metadata: {name: s}\n"),
             Catch::Contains("document 2 (StorageClass): provisioner: required"));
  CHECK_THAT(errorOf("kind: Pod\nmetadata: {name: a}\n---\nkind: StorageClass\n"
                     "metadata: {name: s}\nprovisioner: p\nparameters: [1]\n"),
             Catch::Contains("parameters: expected a map"));
  CHECK_THAT(errorOf("kind: Pod\nmetadata: {name: a}\n---\nmetadata: {name: b}\n"),
             Catch::Contains("document 2: kind is missing"));
  CHECK_THAT(errorOf("kind: StatefulSet\nmetadata: {name: a}\n"),
             Catch::Contains("kind StatefulSet is not supported"));
  CHECK_THAT(errorOf("kind: List\nitems:\n  - kind: Pod\n    metadata: {}\n"),
             Catch::Contains("document 1: items[0] (Pod): metadata.name: required"));
  CHECK_THAT(errorOf("kind: [Pod]\n"), Catch::Contains("kind: expected a string"));
}

TEST_CASE("yamlToJson: scalar typing", "[unit][ctl]") {
  CHECK(*yamlToJson("a: 1\nb: -2.5\nc: true\nd: ~\ne: 10Gi\nf: '1'\ng: \"true\"\nh: 0x10\n"
                    "i: 007\nj:\n") ==
        R"({"a":1,"b":-2.5,"c":true,"d":null,"e":"10Gi","f":"1","g":"true","h":"0x10",)"
        R"("i":"007","j":null})");
  CHECK(*yamlToJson("[a, \"b\\\"c\", {k: v}]") == R"(["a","b\"c",{"k":"v"}])");
  CHECK(*yamlToJson("") == "null");
  CHECK_FALSE(yamlToJson("a: 1\n---\nb: 2\n").ok());
}

TEST_CASE("score: reply parsing and rendering", "[unit][ctl]") {
  const char* reply =
      R"({"pod":"prod/db-0","defaultStrategy":"binpack","strategy":"spreadout","relevant":true,)"
      R"("volumes":[{"claim":"prod/data-db-0","storageClass":"carina-lvm","group":"vg",)"
      R"("bytes":10737418240,"exclusive":false,"strategy":"spreadout"}],"pins":[],)"
      R"("nodes":[{"node":"worker-2","fits":false,"reason":"carina: group vg: no","score":0},)"
      R"({"node":"worker-1","fits":true,"reason":"","score":4},)"
      R"({"node":"worker-3","fits":true,"reason":"","score":9}],"error":""})";
  auto r = parseScoreReply(reply);
  REQUIRE(r.ok());
  CHECK(r->pod == "prod/db-0");
  CHECK(r->strategy == "spreadout");
  REQUIRE(r->nodes.size() == 3);
  REQUIRE(r->volumes.size() == 1);
  CHECK(r->volumes[0].bytes == 10737418240ULL);
  CHECK(r->volumes[0].strategy == "spreadout");

  std::string text = renderScore(*r, false);
  CHECK(text ==
        "pod prod/db-0: strategy spreadout (StorageClass override; agent default binpack)\n"
        "  needs prod/data-db-0: 10GiB of class carina-lvm, group vg\n"
        "NODE      FITS  SCORE  REASON\n"
        "worker-3  yes   9\n"
        "worker-1  yes   4\n"
        "worker-2  no    0      carina: group vg: no\n"
        "2 of 3 nodes fit\n");

  json::value j = json::parse(renderScore(*r, true));
  CHECK(j.at("nodes").at(0).at("node") == "worker-3");
  CHECK(j.at("nodes").at(2).at("reason") == "carina: group vg: no");
  CHECK(j.at("strategy") == "spreadout");

  SECTION("volumes with different strategies are labelled") {
    ScoreReport mixed = *r;
    mixed.volumes.push_back({"prod/wal", "carina-raw", "ssd", 1073741824, true, ""});
    CHECK_THAT(renderScore(mixed, false),
               Catch::Contains("  needs prod/data-db-0: 10GiB of class carina-lvm, group vg, "
                               "spreadout\n") &&
                   Catch::Contains("  needs prod/wal: 1GiB of class carina-raw, group ssd, "
                                   "exclusive disk, binpack\n"));
  }
  SECTION("an error reply") {
    auto e = parseScoreReply(R"({"pod":"d/p","error":"carina: PVC d/x not found in cache yet"})");
    REQUIRE(e.ok());
    CHECK(e->error == "carina: PVC d/x not found in cache yet");
    CHECK_THAT(renderScore(*e, false), Catch::Contains("cannot be judged"));
  }
  SECTION("a pod without carina volumes") {
    auto e = parseScoreReply(
        R"({"pod":"d/p","strategy":"binpack","defaultStrategy":"binpack","relevant":false,)"
        R"("nodes":[{"node":"a","fits":true,"score":0}],"error":""})");
    REQUIRE(e.ok());
    CHECK_THAT(renderScore(*e, false), Catch::Contains("every node passes"));
  }
  SECTION("malformed replies") {
    CHECK_FALSE(parseScoreReply("<html>").ok());
    CHECK_FALSE(parseScoreReply("[]").ok());
    CHECK_FALSE(parseScoreReply(R"({"pod":"d/p","error":""})").ok());  // no nodes
    CHECK_THAT(std::string(parseScoreReply(R"({"pod":1,"nodes":[]})").status().message()),
               Catch::Contains("pod: expected a string"));
    CHECK_THAT(std::string(parseScoreReply(R"({"nodes":[{"node":2}]})").status().message()),
               Catch::Contains("nodes[0].node"));
  }
}

TEST_CASE("score: command line", "[unit][ctl]") {
  carina::ctl::Environment env;
  auto cmd = carina::ctl::parseCommandLine({"score", "--pod", "/tmp/pod.yaml"}, env);
  REQUIRE(cmd.ok());
  CHECK(cmd->kind == carina::ctl::CommandKind::Score);
  CHECK(cmd->pod_file == "/tmp/pod.yaml");
  CHECK(cmd->global.http == "http://127.0.0.1:8089");
  auto stdin_cmd =
      carina::ctl::parseCommandLine({"score", "--pod", "-", "--http", "10.0.0.5:9000"}, env);
  REQUIRE(stdin_cmd.ok());
  CHECK(stdin_cmd->pod_file == "-");
  auto url = carina::ctl::parseHttpUrl(stdin_cmd->global.http);
  REQUIRE(url.ok());
  CHECK(url->host == "10.0.0.5");
  CHECK(url->port == "9000");
  CHECK_FALSE(carina::ctl::parseCommandLine({"score"}, env).ok());  // --pod required
  CHECK_FALSE(carina::ctl::parseCommandLine({"score", "--pod", "a", "--http", "h:0"}, env).ok());
  CHECK_FALSE(carina::ctl::parseCommandLine({"disks", "--pod", "a"}, env).ok());
}
