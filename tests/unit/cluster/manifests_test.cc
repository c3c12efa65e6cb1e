// Every manifest in manifests/ parses and is consistent with what the agent does: CRDs (schema,
// status subresource, printer columns) accept exactly the objects the agent writes, RBAC grants
// exactly the documented rules, the DaemonSet passes flags the agent understands, the ConfigMap's
// config.json loads with the agent's own parser.

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include "agent/cluster/objects.h"
#include "agent/core/config.h"
#include "agent/core/constants.h"
#include "k8s-client/json_codec.h"
#include "tests/unit/cluster/crd_schema.h"
#include "tests/unit/cluster/objects_fixtures.h"

namespace {

namespace fs = std::filesystem;
using namespace carina;
using carina::test::findPath;
using carina::test::parseSchema;
using carina::test::Schema;
using carina::test::validate;

const fs::path kManifests = fs::path(CARINA_SOURCE_DIR) / "manifests";
constexpr const char* kNamespace = "carina-system";

struct Doc {
  std::string file;
  YAML::Node node;
};

std::vector<Doc> loadAll() {
  std::vector<Doc> docs;
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(kManifests)) {
    std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::vector<YAML::Node> nodes;
    try {
      nodes = YAML::LoadAllFromFile(f.string());
    } catch (const std::exception& e) {
      FAIL(f.string() << ": " << e.what());
    }
    for (auto& n : nodes) {
      if (!n.IsNull()) {
        docs.push_back({fs::relative(f, kManifests).string(), n});
      }
    }
  }
  return docs;
}

std::string str(const YAML::Node& n) { return n && n.IsScalar() ? n.Scalar() : std::string(); }

/** node[k1][k2]... without yaml-cpp's InvalidNode exception on a missing intermediate key. */
std::string field(const YAML::Node& n, std::initializer_list<const char*> path) {
  YAML::Node cur = n;
  for (const char* key : path) {
    const YAML::Node& c = cur;  // const lookups never insert
    if (!c || !c.IsMap() || !c[key]) {
      return {};
    }
    cur.reset(c[key]);  // not operator=: that would assign INTO the referenced node
  }
  return str(cur);
}

const Doc& find(const std::vector<Doc>& docs, const std::string& kind, const std::string& name) {
  for (const auto& d : docs) {
    if (str(d.node["kind"]) == kind && field(d.node, {"metadata", "name"}) == name) {
      return d;
    }
  }
  FAIL("no " << kind << " " << name << " in manifests/");
  throw std::logic_error("unreachable");
}

YAML::Node container(const YAML::Node& ds, const std::string& name) {
  for (const auto& c : ds["spec"]["template"]["spec"]["containers"]) {
    if (str(c["name"]) == name) {
      return c;
    }
  }
  FAIL("DaemonSet has no container " << name);
  return {};
}

std::vector<std::string> args(const YAML::Node& c) {
  std::vector<std::string> out;
  for (const auto& a : c["args"]) {
    out.push_back(a.as<std::string>());
  }
  return out;
}

bool hasArg(const YAML::Node& c, const std::string& arg) {
  auto a = args(c);
  return std::find(a.begin(), a.end(), arg) != a.end();
}

std::string envFieldRef(const YAML::Node& c, const std::string& name) {
  for (const auto& e : c["env"]) {
    if (str(e["name"]) == name) {
      return str(e["valueFrom"]["fieldRef"]["fieldPath"]);
    }
  }
  return {};
}

// --- CRDs ----------------------------------------------------------------------------------

struct Crd {
  YAML::Node node;
  YAML::Node version;
  Schema schema;
};

Crd loadCrd(const std::vector<Doc>& docs, const k8s::ResourceKind& kind) {
  std::string name = std::string(kind.plural) + "." + std::string(kind.group);
  const Doc& d = find(docs, "CustomResourceDefinition", name);
  CHECK(d.file == "10-crds.yaml");
  Crd crd;
  crd.node = d.node;
  const YAML::Node& spec = d.node["spec"];
  CHECK(str(spec["group"]) == kind.group);
  CHECK(str(spec["scope"]) == (kind.namespaced ? "Namespaced" : "Cluster"));
  CHECK(str(spec["names"]["kind"]) == kind.kind);
  CHECK(str(spec["names"]["plural"]) == kind.plural);
  REQUIRE(spec["versions"].size() == 1);
  crd.version = spec["versions"][0];
  CHECK(str(crd.version["name"]) == kind.version);
  CHECK(crd.version["served"].as<bool>());
  CHECK(crd.version["storage"].as<bool>());
  auto schema = parseSchema(YAML::Dump(crd.version["schema"]["openAPIV3Schema"]));
  INFO(name << ": " << schema.status().message());
  REQUIRE(schema.ok());
  crd.schema = std::move(*schema);
  return crd;
}

/** Checks the printer columns: the expected names exist, every JSONPath names a field the schema
 *  defines, and the column type matches the field's. */
void checkColumns(const Crd& crd, const std::vector<std::string>& expected) {
  std::set<std::string> names;
  for (const auto& col : crd.version["additionalPrinterColumns"]) {
    std::string name = str(col["name"]);
    std::string path = str(col["jsonPath"]);
    std::string type = str(col["type"]);
    INFO("column " << name << " " << path);
    names.insert(name);
    const Schema* field = findPath(crd.schema, path);
    REQUIRE(field != nullptr);
    if (path.rfind(".metadata.", 0) == 0) {
      continue;
    }
    if (type == "date") {
      CHECK(field->type == "string");
      CHECK(field->format == "date-time");
    } else {
      CHECK(field->type == type);
    }
  }
  for (const auto& e : expected) {
    CHECK(names.count(e) == 1);
  }
}

std::string errorsOf(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) {
    out += e + "\n";
  }
  return out;
}

TEST_CASE("manifests: every file parses, every object is named", "[unit][cluster]") {
  auto docs = loadAll();
  REQUIRE(docs.size() >= 15);
  std::set<std::string> files;
  for (const auto& d : docs) {
    INFO(d.file);
    files.insert(d.file);
    REQUIRE(d.node.IsMap());
    CHECK_FALSE(str(d.node["apiVersion"]).empty());
    CHECK_FALSE(str(d.node["kind"]).empty());
    if (str(d.node["kind"]) == "KubeSchedulerConfiguration") {
      // A component configuration file, not an API object: no metadata.
      CHECK(str(d.node["apiVersion"]) == "kubescheduler.config.k8s.io/v1");
      continue;
    }
    CHECK_FALSE(field(d.node, {"metadata", "name"}).empty());
  }
  for (const char* f : {"00-namespace.yaml", "10-crds.yaml", "20-rbac.yaml", "30-csidriver.yaml",
                        "40-configmap.yaml", "50-daemonset.yaml", "60-storageclasses.yaml",
                        "examples/kube-scheduler-config.yaml", "examples/pvc-and-pod.yaml"}) {
    CHECK(files.count(f) == 1);
  }
  CHECK(fs::exists(kManifests / "Dockerfile"));

  // Namespaced objects of the deployment live in carina-system.
  for (const auto& d : docs) {
    std::string kind = str(d.node["kind"]);
    if (kind == "ServiceAccount" || kind == "ConfigMap" || kind == "DaemonSet" || kind == "Role" ||
        kind == "RoleBinding") {
      INFO(d.file << " " << kind);
      CHECK(field(d.node, {"metadata", "namespace"}) == kNamespace);
    }
  }
  // The agent is privileged: Pod Security Admission must allow it in its namespace.
  const YAML::Node ns = find(docs, "Namespace", kNamespace).node;
  CHECK(str(ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]) == "privileged");
}

TEST_CASE("manifests: CRDs have status, printer columns and structural schemas",
          "[unit][cluster]") {
  auto docs = loadAll();
  Crd nsr = loadCrd(docs, k8s::NodeStorageResource::kResource);
  Crd lv = loadCrd(docs, k8s::LogicVolume::kResource);
  for (const Crd* crd : {&nsr, &lv}) {
    REQUIRE(crd->version["subresources"]["status"]);
    CHECK(crd->version["subresources"]["status"].IsMap());
  }
  CHECK(str(nsr.node["spec"]["names"]["shortNames"][0]) == "nsr");
  CHECK(str(lv.node["spec"]["names"]["shortNames"][0]) == "lv");
  checkColumns(nsr, {"Node", "Groups", "Free", "Total"});
  checkColumns(lv, {"Node", "Group", "Size", "PVC", "Phase"});
  CHECK(findPath(lv.schema, ".spec.nope") == nullptr);
  CHECK(findPath(lv.schema, ".status.groups[0]") == nullptr);
}

TEST_CASE("manifests: the objects the agent writes validate against the CRD schemas",
          "[unit][cluster]") {
  auto docs = loadAll();
  Crd nsr_crd = loadCrd(docs, k8s::NodeStorageResource::kResource);
  Crd lv_crd = loadCrd(docs, k8s::LogicVolume::kResource);

  storage::InventorySnapshot inv = cluster::test::sampleInventory();
  SECTION("NodeStorageResource with RAW and LVM groups") {
    auto nsr = cluster::buildNodeStorageResource("node-1", inv, "2026-11-23T04:00:00Z");
    REQUIRE(nsr.groups.size() == 2);
    std::string json = k8s::encodeObject(nsr);
    INFO(json);
    auto errors = validate(nsr_crd.schema, json);
    INFO(errorsOf(errors));
    CHECK(errors.empty());
    // The printer columns' fields are really written.
    CHECK(json.find("\"groupNames\":\"raw-ssd,vg-hdd\"") != std::string::npos);
    CHECK(json.find("\"totalBytes\":" + std::to_string(800 * kGiB)) != std::string::npos);
  }
  SECTION("NodeStorageResource: empty, and with an owner reference") {
    auto nsr = cluster::buildNodeStorageResource("node-2", {}, "2026-11-23T04:00:00Z");
    nsr.metadata.owner_references.push_back({"v1", "Node", "node-2", "u", false, false});
    auto errors = validate(nsr_crd.schema, k8s::encodeObject(nsr));
    INFO(errorsOf(errors));
    CHECK(errors.empty());
  }
  SECTION("NodeStorageResource as read back and rewritten (raw merged)") {
    auto nsr = cluster::buildNodeStorageResource("node-1", inv, "2026-11-23T04:00:00Z");
    auto read = k8s::decodeAs<k8s::NodeStorageResource>(k8s::encodeObject(nsr));
    REQUIRE(read.ok());
    inv.groups[0].disks.pop_back();
    inv.groups[0].disks.pop_back();
    auto next = cluster::buildNodeStorageResource("node-1", inv, "2026-11-23T05:00:00Z");
    read->groups = next.groups;
    read->update_time = next.update_time;
    auto errors = validate(nsr_crd.schema, k8s::encodeObject(*read));
    INFO(errorsOf(errors));
    CHECK(errors.empty());
  }
  SECTION("LogicVolume: with PVC, without, failed") {
    storage::Volume vol = cluster::test::sampleVolume();
    auto with_pvc = cluster::buildLogicVolume("node-1", vol, "shop", "data-0");
    auto without = cluster::buildLogicVolume("node-1", vol);
    auto failed = with_pvc;
    failed.phase = "Failed";
    failed.message = "expansion failed: no space";
    vol.exclusive = true;
    auto exclusive = cluster::buildLogicVolume("node-1", vol, "shop", "data-1");
    for (const auto* lv : {&with_pvc, &without, &failed, &exclusive}) {
      std::string json = k8s::encodeObject(*lv);
      INFO(json);
      auto errors = validate(lv_crd.schema, json);
      INFO(errorsOf(errors));
      CHECK(errors.empty());
    }
    CHECK(k8s::encodeObject(with_pvc).find(
              "\"pvc\":{\"namespace\":\"shop\",\"name\":\"data-0\"}") != std::string::npos);
  }
}

TEST_CASE("CRD validator catches what kube-apiserver rejects or prunes", "[unit][cluster]") {
  auto docs = loadAll();
  Crd lv = loadCrd(docs, k8s::LogicVolume::kResource);
  Crd nsr = loadCrd(docs, k8s::NodeStorageResource::kResource);
  auto lvDoc = [](const std::string& spec, const std::string& status = "{}") {
    return R"({"apiVersion":"carina.storage.io/v1","kind":"LogicVolume","metadata":{"name":"x",)"
           R"("labels":{"a":"b"}},"spec":)" +
           spec + ",\"status\":" + status + "}";
  };
  const std::string good = R"({"nodeName":"n","groupName":"g","sizeBytes":1024,"exclusive":false})";
  CHECK(validate(lv.schema, lvDoc(good)).empty());

  struct Case {
    std::string name;
    std::string json;
    std::string expect;
  };
  std::vector<Case> cases{
      {"wrong type", lvDoc(R"({"nodeName":"n","sizeBytes":"1Gi"})"),
       "spec.sizeBytes: expected integer, got string"},
      {"missing required", lvDoc(R"({"sizeBytes":1})"), "spec.nodeName: required field missing"},
      {"unknown field", lvDoc(R"({"nodeName":"n","sizeBytes":1,"volumeId":"v"})"),
       "spec.volumeId: unknown field"},
      {"unknown status field", lvDoc(good, R"({"disk":"sdb"})"), "status.disk: unknown field"},
      {"enum", lvDoc(good, R"({"phase":"Ready"})"), "status.phase: \"Ready\" is not one of"},
      {"minimum", lvDoc(R"({"nodeName":"n","sizeBytes":-1})"), "spec.sizeBytes: below the minimum"},
      {"minLength", lvDoc(R"({"nodeName":"","sizeBytes":1})"), "spec.nodeName: shorter"},
      {"int64 overflow", lvDoc(R"({"nodeName":"n","sizeBytes":18446744073709551615})"),
       "does not fit in int64"},
      {"not an integer", lvDoc(R"({"nodeName":"n","sizeBytes":1.5})"),
       "expected integer, got number"},
      {"null", lvDoc(R"({"nodeName":null,"sizeBytes":1})"), "spec.nodeName: null"},
      {"missing spec", R"({"apiVersion":"carina.storage.io/v1","kind":"LogicVolume"})",
       "spec: required field missing"},
      {"unknown top-level field",
       R"({"kind":"LogicVolume","spec":{"nodeName":"n","sizeBytes":1},"x":1})", "x: unknown field"},
      {"nested array item",
       R"({"spec":{"nodeName":"n"},"status":{"groups":[{"name":"g","policy":"RAW",
         "totalBytes":1,"freeBytes":1,"largestAllocatableBytes":1,"emptyDisks":0,
         "disks":[{"name":"d","sizeBytes":1,"partitions":0,"exclusive":false,
         "freeSegments":[{"start":0}]}]}]}})",
       "status.groups[0].disks[0].freeSegments[0].length: required field missing"},
      {"date-time", R"({"spec":{"nodeName":"n"},"status":{"updateTime":"yesterday"}})",
       "status.updateTime: not an RFC 3339 date-time"},
      {"policy enum", R"({"spec":{"nodeName":"n"},"status":{"groups":[{"name":"g","policy":"ZFS",
         "totalBytes":1,"freeBytes":1,"largestAllocatableBytes":1,"emptyDisks":0}]}})",
       "status.groups[0].policy"},
      {"invalid JSON", "{", "invalid JSON"},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      const Schema& s = c.json.find("\"groups\"") != std::string::npos ||
                                c.json.find("updateTime") != std::string::npos
                            ? nsr.schema
                            : lv.schema;
      auto errors = validate(s, c.json);
      INFO(errorsOf(errors));
      REQUIRE_FALSE(errors.empty());
      CHECK_THAT(errorsOf(errors), Catch::Contains(c.expect));
    }
  }
  SECTION("non-structural or unsupported schemas are rejected") {
    CHECK_FALSE(parseSchema("type: object\nproperties:\n  a: {description: x}\n").ok());
    CHECK_FALSE(
        parseSchema("type: object\nproperties:\n  a: {type: string, pattern: '^a'}\n").ok());
    CHECK_FALSE(
        parseSchema("type: object\nrequired: [b]\nproperties:\n  a: {type: string}\n").ok());
    CHECK_FALSE(parseSchema("type: object\nproperties:\n  a: {type: array}\n").ok());
    CHECK_FALSE(parseSchema("type: string\n").ok());
    CHECK_FALSE(parseSchema("type: object\nproperties:\n  a: {type: strin}\n").ok());
    auto preserve = parseSchema(
        "type: object\nproperties:\n  a: {type: object, x-kubernetes-preserve-unknown-fields: "
        "true}\n  m: {type: object, additionalProperties: {type: integer}}\n");
    REQUIRE(preserve.ok());
    CHECK(validate(*preserve, R"({"a":{"anything":[1,"x"]},"m":{"k":1}})").empty());
    CHECK_THAT(errorsOf(validate(*preserve, R"({"m":{"k":"1"}})")),
               Catch::Contains("m.k: expected integer"));
  }
}

// --- RBAC ----------------------------------------------------------------------------------

using Rule = std::tuple<std::string, std::string, std::string>;  // apiGroup, resource, verb

std::set<Rule> rulesOf(const YAML::Node& role) {
  std::set<Rule> out;
  for (const auto& r : role["rules"]) {
    CHECK_FALSE(r["resourceNames"]);
    for (const auto& g : r["apiGroups"]) {
      for (const auto& res : r["resources"]) {
        for (const auto& v : r["verbs"]) {
          CHECK(v.as<std::string>() != "*");
          CHECK(res.as<std::string>() != "*");
          out.emplace(g.as<std::string>(), res.as<std::string>(), v.as<std::string>());
        }
      }
    }
  }
  return out;
}

std::set<Rule> expand(const std::string& group, const std::vector<std::string>& resources,
                      const std::vector<std::string>& verbs) {
  std::set<Rule> out;
  for (const auto& r : resources) {
    for (const auto& v : verbs) {
      out.emplace(group, r, v);
    }
  }
  return out;
}

std::set<Rule> unite(std::initializer_list<std::set<Rule>> sets) {
  std::set<Rule> out;
  for (const auto& s : sets) {
    out.insert(s.begin(), s.end());
  }
  return out;
}

std::string describe(const std::set<Rule>& rules) {
  std::string out;
  for (const auto& [g, r, v] : rules) {
    out += (g.empty() ? "core" : g) + " " + r + " " + v + "\n";
  }
  return out;
}

TEST_CASE("manifests: RBAC grants exactly the documented rules", "[unit][cluster]") {
  auto docs = loadAll();
  const std::vector<std::string> read{"get", "list", "watch"};

  // carina-agent, exactly what agent/cluster uses: informers (list + watch) of Nodes, PVCs, PVs
  // and StorageClasses; its own CRDs: get (read-modify-write), list/watch (informers, liveness),
  // create, update (PUT), delete, and the status subresource by PUT; the NodeStorageResource's
  // owner by merge patch; Events (EventRecorder:
  // create, and merge patch for aggregated repeats).
  std::set<Rule> agent = unite({
      expand("", {"nodes", "persistentvolumeclaims", "persistentvolumes"}, {"list", "watch"}),
      expand("storage.k8s.io", {"storageclasses"}, {"list", "watch"}),
      expand("", {"events"}, {"create", "patch"}),
      expand("carina.storage.io", {"nodestorageresources", "logicvolumes"},
             {"get", "list", "watch", "create", "update", "delete"}),
      expand("carina.storage.io", {"nodestorageresources/status", "logicvolumes/status"},
             {"update"}),
      expand("carina.storage.io", {"nodestorageresources"}, {"patch"}),
  });
  // external-provisioner --node-deployment --enable-capacity (upstream rbac.yaml without
  // snapshots, volumeattachments, csinodes/nodes: node deployment uses static topology objects).
  std::set<Rule> provisioner = unite({
      expand("", {"persistentvolumes"},
             {"get", "list", "watch", "create", "update", "patch", "delete"}),
      expand("", {"persistentvolumeclaims"}, {"get", "list", "watch", "update"}),
      expand("storage.k8s.io", {"storageclasses"}, read),
      expand("", {"events"}, {"create", "patch"}),
  });
  std::set<Rule> provisioner_ns = unite({
      expand("storage.k8s.io", {"csistoragecapacities"},
             {"get", "list", "watch", "create", "update", "patch", "delete"}),
      expand("", {"pods"}, {"get"}),
  });
  // external-resizer (--handle-volume-inuse-error=false: no pods).
  std::set<Rule> resizer = unite({
      expand("", {"persistentvolumes"}, {"get", "list", "watch", "patch"}),
      expand("", {"persistentvolumeclaims"}, read),
      expand("", {"persistentvolumeclaims/status"}, {"patch"}),
      expand("", {"events"}, {"create", "patch"}),
  });
  std::set<Rule> resizer_ns =
      expand("coordination.k8s.io", {"leases"}, {"get", "create", "update"});

  struct Expected {
    std::string kind;
    std::string name;
    std::set<Rule> rules;
  };
  std::vector<Expected> expected{{"ClusterRole", "carina-agent", agent},
                                 {"ClusterRole", "carina-csi-provisioner", provisioner},
                                 {"Role", "carina-csi-provisioner", provisioner_ns},
                                 {"ClusterRole", "carina-csi-resizer", resizer},
                                 {"Role", "carina-csi-resizer", resizer_ns}};
  std::set<std::string> roles;
  for (const auto& e : expected) {
    INFO(e.kind << " " << e.name);
    auto actual = rulesOf(find(docs, e.kind, e.name).node);
    std::set<Rule> extra;
    std::set<Rule> missing;
    std::set_difference(actual.begin(), actual.end(), e.rules.begin(), e.rules.end(),
                        std::inserter(extra, extra.end()));
    std::set_difference(e.rules.begin(), e.rules.end(), actual.begin(), actual.end(),
                        std::inserter(missing, missing.end()));
    INFO("extra:\n" << describe(extra) << "missing:\n" << describe(missing));
    CHECK(extra.empty());
    CHECK(missing.empty());
    roles.insert(e.kind + "/" + e.name);
  }

  // No other roles; every binding binds the agent's ServiceAccount to one of them.
  int bindings = 0;
  for (const auto& d : docs) {
    std::string kind = str(d.node["kind"]);
    if (kind == "ClusterRole" || kind == "Role") {
      CHECK(roles.count(kind + "/" + str(d.node["metadata"]["name"])) == 1);
    }
    if (kind == "ClusterRoleBinding" || kind == "RoleBinding") {
      ++bindings;
      std::string ref = str(d.node["roleRef"]["kind"]) + "/" + str(d.node["roleRef"]["name"]);
      INFO(kind << " -> " << ref);
      CHECK(roles.count(ref) == 1);
      CHECK(str(d.node["roleRef"]["apiGroup"]) == "rbac.authorization.k8s.io");
      REQUIRE(d.node["subjects"].size() == 1);
      CHECK(str(d.node["subjects"][0]["kind"]) == "ServiceAccount");
      CHECK(str(d.node["subjects"][0]["name"]) == "carina-agent");
      CHECK(str(d.node["subjects"][0]["namespace"]) == kNamespace);
    }
  }
  CHECK(bindings == static_cast<int>(expected.size()));
  find(docs, "ServiceAccount", "carina-agent");
}

// --- DaemonSet, CSIDriver, ConfigMap, StorageClasses, scheduler ----------------------------

TEST_CASE("manifests: the DaemonSet runs the agent and its sidecars as documented",
          "[unit][cluster]") {
  auto docs = loadAll();
  const YAML::Node ds = find(docs, "DaemonSet", "carina-agent").node;
  const YAML::Node pod = ds["spec"]["template"]["spec"];
  CHECK(str(pod["serviceAccountName"]) == "carina-agent");
  CHECK(pod["hostNetwork"].as<bool>());
  CHECK(str(pod["tolerations"][0]["operator"]) == "Exists");

  YAML::Node agent = container(ds, "carina-agent");
  CHECK(agent["securityContext"]["privileged"].as<bool>());
  CHECK(envFieldRef(agent, "NODE_NAME") == "spec.nodeName");
  // The agent's flags (agent/main.cc): "--flag value"; every flag is known.
  const std::set<std::string> with_value{"--config",      "--node-name", "--csi-endpoint",
                                         "--http-listen", "--state-dir", "--log-level",
                                         "--kubeconfig"};
  std::map<std::string, std::string> flags;
  auto a = args(agent);
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO("carina-agent arg " << a[i]);
    if (a[i] == "--standalone") {
      FAIL("the DaemonSet runs in cluster mode");
    }
    REQUIRE(with_value.count(a[i]) == 1);
    REQUIRE(i + 1 < a.size());
    flags[a[i]] = a[i + 1];
    ++i;
  }
  CHECK(flags["--csi-endpoint"] == "unix:///csi/csi.sock");
  std::string listen = flags["--http-listen"];
  std::string port = listen.substr(listen.rfind(':') + 1);
  CHECK(str(agent["readinessProbe"]["httpGet"]["path"]) == "/readyz");
  CHECK(str(agent["readinessProbe"]["httpGet"]["port"]) == port);

  std::map<std::string, YAML::Node> mounts;
  for (const auto& m : agent["volumeMounts"]) {
    mounts.emplace(str(m["mountPath"]), m);
  }
  REQUIRE(mounts.count("/var/lib/kubelet") == 1);
  CHECK(str(mounts.at("/var/lib/kubelet")["mountPropagation"]) == "Bidirectional");
  for (const char* p : {"/dev", "/sys", "/run/udev", "/csi", "/etc/carina", "/var/lib/carina"}) {
    CHECK(mounts.count(p) == 1);
  }
  CHECK(flags["--config"] == "/etc/carina/config.json");
  CHECK(flags["--state-dir"] == "/var/lib/carina");

  YAML::Node prov = container(ds, "csi-provisioner");
  CHECK(hasArg(prov, "--node-deployment"));
  CHECK(hasArg(prov, "--enable-capacity"));
  CHECK(hasArg(prov, "--capacity-ownerref-level=0"));  // each pod owns its node's objects
  CHECK(hasArg(prov, "--csi-address=/csi/csi.sock"));
  CHECK(envFieldRef(prov, "NODE_NAME") == "spec.nodeName");
  CHECK(envFieldRef(prov, "NAMESPACE") == "metadata.namespace");
  CHECK(envFieldRef(prov, "POD_NAME") == "metadata.name");

  YAML::Node resizer = container(ds, "csi-resizer");
  CHECK(hasArg(resizer, "--leader-election"));
  CHECK(hasArg(resizer, "--leader-election-namespace=carina-system"));
  CHECK(hasArg(resizer, "--handle-volume-inuse-error=false"));

  YAML::Node registrar = container(ds, "node-driver-registrar");
  CHECK(hasArg(registrar,
               "--kubelet-registration-path=/var/lib/kubelet/plugins/carina.storage.io/csi.sock"));
  bool socket_dir = false;
  for (const auto& v : pod["volumes"]) {
    if (str(v["name"]) == "socket-dir") {
      socket_dir = true;
      CHECK(str(v["hostPath"]["path"]) == "/var/lib/kubelet/plugins/carina.storage.io");
    }
  }
  CHECK(socket_dir);
  YAML::Node probe = container(ds, "liveness-probe");
  CHECK(hasArg(probe, "--http-endpoint=:9808"));
  CHECK(str(agent["livenessProbe"]["httpGet"]["port"]) == "9808");
}

TEST_CASE("manifests: CSIDriver, ConfigMap, StorageClasses and scheduler agree",
          "[unit][cluster]") {
  auto docs = loadAll();
  const YAML::Node driver = find(docs, "CSIDriver", std::string(kDriverName)).node;
  CHECK_FALSE(driver["spec"]["attachRequired"].as<bool>());
  CHECK(driver["spec"]["podInfoOnMount"].as<bool>());
  CHECK(driver["spec"]["storageCapacity"].as<bool>());

  const YAML::Node cm = find(docs, "ConfigMap", "carina-config").node;
  auto cfg = core::parseConfig(str(cm["data"]["config.json"]));
  INFO(cfg.status().message());
  REQUIRE(cfg.ok());
  std::set<std::string> groups;
  for (const auto& s : cfg->disk_selectors) {
    groups.insert(s.name);
  }
  REQUIRE_FALSE(groups.empty());

  int classes = 0;
  for (const auto& d : docs) {
    if (str(d.node["kind"]) != "StorageClass") {
      continue;
    }
    ++classes;
    INFO("StorageClass " << str(d.node["metadata"]["name"]));
    CHECK(str(d.node["provisioner"]) == kDriverName);
    CHECK(str(d.node["volumeBindingMode"]) == "WaitForFirstConsumer");
    std::string group = str(d.node["parameters"]["carina.storage.io/disk-group-name"]);
    std::string fs_type = str(d.node["parameters"]["csi.storage.k8s.io/fstype"]);
    CHECK((fs_type == "ext4" || fs_type == "xfs"));
    if (str(d.node["metadata"]["name"]).rfind("carina-raw", 0) == 0) {
      CHECK(groups.count(group) == 1);
    }
  }
  CHECK(classes == 4);

  const YAML::Node sched = find(docs, "KubeSchedulerConfiguration", "").node;
  core::ExtenderConfig defaults;
  REQUIRE(sched["extenders"].size() == 1);
  const YAML::Node ext = sched["extenders"][0];
  CHECK(str(ext["urlPrefix"]) == "http://127.0.0.1:8089" + defaults.path_prefix);
  CHECK(str(ext["filterVerb"]) == defaults.filter_verb);
  CHECK(str(ext["prioritizeVerb"]) == defaults.prioritize_verb);

  // The example PVC uses a shipped class.
  const YAML::Node pvc = find(docs, "PersistentVolumeClaim", "data-db-0").node;
  find(docs, "StorageClass", str(pvc["spec"]["storageClassName"]));
}

TEST_CASE("manifests: Dockerfile is multi-stage on Debian 12 and tags the DaemonSet's image",
          "[unit][cluster]") {
  std::ifstream in(kManifests / "Dockerfile");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  CHECK(text.find("FROM debian:12 AS build") != std::string::npos);
  CHECK(text.find("FROM debian:12-slim") != std::string::npos);
  CHECK(text.find("COPY --from=build") != std::string::npos);

  // BuildKit's per-Dockerfile ignore file keeps git and build trees out of the context.
  std::ifstream ignore(kManifests / "Dockerfile.dockerignore");
  REQUIRE(ignore);
  std::set<std::string> ignored;
  for (std::string line; std::getline(ignore, line);) {
    ignored.insert(line);
  }
  CHECK(ignored.count(".git") == 1);
  CHECK(ignored.count("build") == 1);
  CHECK(ignored.count("build-*") == 1);

  auto docs = loadAll();
  std::string image =
      str(container(find(docs, "DaemonSet", "carina-agent").node, "carina-agent")["image"]);
  CHECK(text.find("-t " + image) != std::string::npos);
}

}  // namespace
