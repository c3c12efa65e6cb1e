#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "k8s-client/json_codec.h"
#include "k8s-client/kube_client.h"
#include "tests/support/test_support.h"

namespace {

using namespace carina::k8s;

std::string readTestData(const std::string& name) {
  std::ifstream in(std::string(CARINA_TESTDATA_DIR) + "/k8s/" + name);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_CASE("decode PVC: class, size, selected node, phase", "[unit][k8s]") {
  auto pvc = decodeAs<PersistentVolumeClaim>(R"({
    "apiVersion":"v1","kind":"PersistentVolumeClaim",
    "metadata":{"name":"data-0","namespace":"db","uid":"u1","resourceVersion":"42",
      "annotations":{"volume.kubernetes.io/selected-node":"node-a"},"labels":{"app":"pg"}},
    "spec":{"storageClassName":"carina-lvm","accessModes":["ReadWriteOnce"],
      "resources":{"requests":{"storage":"1.5Gi"}},"volumeMode":"Filesystem"},
    "status":{"phase":"Pending"}})");
  REQUIRE(pvc.ok());
  CHECK(pvc->metadata.name == "data-0");
  CHECK(pvc->metadata.namespace_ == "db");
  CHECK(pvc->metadata.resource_version == "42");
  CHECK(pvc->metadata.labels.at("app") == "pg");
  REQUIRE(pvc->storage_class_name.has_value());
  CHECK(*pvc->storage_class_name == "carina-lvm");
  CHECK(pvc->requested_bytes == 1'610'612'736);
  CHECK(pvc->selectedNode() == "node-a");
  CHECK(pvc->phase == "Pending");
  CHECK(pvc->access_modes == std::vector<std::string>{"ReadWriteOnce"});
}

TEST_CASE("decode PV, StorageClass and Pod", "[unit][k8s]") {
  auto pv = decodeAs<PersistentVolume>(R"({"metadata":{"name":"pv-1"},
    "spec":{"capacity":{"storage":"10Gi"},"csi":{"driver":"carina.storage.io","volumeHandle":"v-1",
      "fsType":"xfs"},"claimRef":{"namespace":"db","name":"data-0","uid":"u1"},
      "nodeAffinity":{"required":{"nodeSelectorTerms":[{"matchExpressions":[
        {"key":"topology.carina.storage.io/node","operator":"In","values":["node-b"]}]}]}},
      "storageClassName":"carina-lvm"},"status":{"phase":"Bound"}})");
  REQUIRE(pv.ok());
  CHECK(pv->capacity_bytes == 10ULL << 30);
  CHECK(pv->csi_driver == "carina.storage.io");
  CHECK(pv->volume_handle == "v-1");
  CHECK(pv->node_affinity_node == "node-b");
  REQUIRE(pv->claim_ref.has_value());
  CHECK(pv->claim_ref->name == "data-0");

  auto sc = decodeAs<StorageClass>(R"({"metadata":{"name":"carina-raw"},
    "provisioner":"carina.storage.io","parameters":{"carina.storage.io/disk-group-name":"ssd"},
    "volumeBindingMode":"WaitForFirstConsumer","allowVolumeExpansion":true})");
  REQUIRE(sc.ok());
  CHECK(sc->provisioner == "carina.storage.io");
  CHECK(sc->parameters.at("carina.storage.io/disk-group-name") == "ssd");
  CHECK(sc->volume_binding_mode == "WaitForFirstConsumer");
  CHECK(sc->allow_volume_expansion);

  auto pod = decodeAs<Pod>(R"({"metadata":{"name":"web","namespace":"db"},
    "spec":{"nodeName":"node-c","volumes":[
      {"name":"data","persistentVolumeClaim":{"claimName":"data-0"}},
      {"name":"scratch","ephemeral":{"volumeClaimTemplate":{"spec":{"storageClassName":"fast",
        "resources":{"requests":{"storage":"500M"}}}}}},
      {"name":"cfg","configMap":{"name":"x"}}]}})");
  REQUIRE(pod.ok());
  CHECK(pod->node_name == "node-c");
  REQUIRE(pod->volumes.size() == 3);
  CHECK(pod->volumes[0].claim_name == "data-0");
  CHECK(pod->volumes[1].ephemeral);
  CHECK(pod->volumes[1].ephemeral_bytes == 500'000'000);
  CHECK(*pod->volumes[1].ephemeral_storage_class == "fast");
  CHECK_FALSE(pod->volumes[2].ephemeral);
  CHECK(pod->volumes[2].claim_name.empty());
}

TEST_CASE("decode rejects non-objects and bad quantities with the field path", "[unit][k8s]") {
  CHECK(decodeAs<Node>("[1,2]").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(decodeAs<Node>("{not json").status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(decodeAs<Node>(R"({"metadata":"x"})").status().code() ==
        absl::StatusCode::kInvalidArgument);
  auto bad = decodeAs<PersistentVolumeClaim>(
      R"({"metadata":{"name":"x"},"spec":{"resources":{"requests":{"storage":"ten"}}}})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(bad.status().message()).find("spec.resources.requests.storage") !=
        std::string::npos);
}

TEST_CASE("encode keeps unknown fields and the original quantity text", "[unit][k8s]") {
  auto pvc = decodeAs<PersistentVolumeClaim>(R"({"metadata":{"name":"p","namespace":"n",
    "annotations":{"a":"1"},"managedFields":[{"manager":"kubectl"}]},
    "spec":{"resources":{"requests":{"storage":"2Gi"}},"futureField":{"x":[1,2]}},
    "status":{"phase":"Bound","conditions":[{"type":"Resizing"}]}})");
  REQUIRE(pvc.ok());
  pvc->metadata.annotations["b"] = "2";
  pvc->metadata.annotations.erase("a");
  std::string out = encodeObject(*pvc);
  CHECK(out.find(R"("futureField":{"x":[1,2]})") != std::string::npos);
  CHECK(out.find(R"("managedFields":[{"manager":"kubectl"}])") != std::string::npos);
  CHECK(out.find(R"("conditions":[{"type":"Resizing"}])") != std::string::npos);
  CHECK(out.find(R"("storage":"2Gi")") != std::string::npos);
  CHECK(out.find(R"("annotations":{"b":"2"})") != std::string::npos);
  CHECK(out.find(R"("kind":"PersistentVolumeClaim")") != std::string::npos);
  // A changed size is written as bytes.
  pvc->requested_bytes = 3ULL << 30;
  CHECK(encodeObject(*pvc).find(R"("storage":"3221225472")") != std::string::npos);
}

TEST_CASE("NodeStorageResource and LogicVolume round-trip", "[unit][k8s]") {
  NodeStorageResource nsr;
  nsr.metadata.name = "node-a";
  nsr.node_name = "node-a";
  nsr.update_time = "2026-01-01T00:00:00Z";
  StorageGroup raw{"ssd", "RAW", 100, 60, 40, 1, "", {}};
  raw.disks.push_back(StorageDisk{"sdb", 100, {{1048576, 40}, {2097152, 20}}, 2, false});
  nsr.groups.push_back(raw);
  nsr.groups.push_back(StorageGroup{"hdd", "LVM", 1000, 700, 700, 0, "carina-vg-hdd", {}});
  auto back = decodeAs<NodeStorageResource>(encodeObject(nsr));
  REQUIRE(back.ok());
  CHECK(back->node_name == "node-a");
  CHECK(back->groups == nsr.groups);
  CHECK(back->update_time == nsr.update_time);

  LogicVolume lv;
  lv.metadata.name = "pvc-123";
  lv.node_name = "node-a";
  lv.group_name = "ssd";
  lv.size_bytes = 5ULL << 30;
  lv.exclusive = true;
  lv.pvc_namespace = "db";
  lv.pvc_name = "data-0";
  lv.device = "/dev/sdb3";
  lv.phase = "Created";
  lv.current_bytes = 5ULL << 30;
  auto lv2 = decodeAs<LogicVolume>(encodeObject(lv));
  REQUIRE(lv2.ok());
  CHECK(lv2->size_bytes == lv.size_bytes);
  CHECK(lv2->exclusive);
  CHECK(lv2->pvc_name == "data-0");
  CHECK(lv2->device == "/dev/sdb3");
  CHECK(lv2->phase == "Created");
  CHECK(lv2->current_bytes == lv.current_bytes);
}

TEST_CASE("NodeStorageResource: node-wide sums and group names for printer columns",
          "[unit][k8s]") {
  NodeStorageResource nsr;
  nsr.metadata.name = "node-a";
  nsr.node_name = "node-a";
  nsr.groups.push_back(StorageGroup{"ssd", "RAW", 100, 60, 40, 1, "", {}});
  nsr.groups.push_back(StorageGroup{"hdd", "LVM", 1000, 700, 700, 0, "vg", {}});
  std::string json = encodeObject(nsr);
  CHECK(json.find(R"("totalBytes":1100)") != std::string::npos);
  CHECK(json.find(R"("freeBytes":760)") != std::string::npos);
  CHECK(json.find(R"("groupNames":"ssd,hdd")") != std::string::npos);
  nsr.groups.clear();
  json = encodeObject(nsr);
  CHECK(json.find(R"("totalBytes":0)") != std::string::npos);
  CHECK(json.find("groupNames") == std::string::npos);
}

TEST_CASE("ownerReferences: decoded; written for new objects, kept from raw", "[unit][k8s]") {
  auto pvc = decodeAs<PersistentVolumeClaim>(R"({"metadata":{"name":"p","namespace":"n",
    "ownerReferences":[{"apiVersion":"v1","kind":"Pod","name":"web","uid":"pod-uid",
      "controller":true,"blockOwnerDeletion":true,"x-future":1}]}})");
  REQUIRE(pvc.ok());
  REQUIRE(pvc->metadata.owner_references.size() == 1);
  const OwnerReference& ref = pvc->metadata.owner_references[0];
  CHECK(ref.api_version == "v1");
  CHECK(ref.kind == "Pod");
  CHECK(ref.name == "web");
  CHECK(ref.uid == "pod-uid");
  CHECK(ref.controller);
  CHECK(ref.block_owner_deletion);
  // Unknown fields of the references survive an update.
  CHECK(encodeObject(*pvc).find("x-future") != std::string::npos);

  Node fresh;
  fresh.metadata.name = "n";
  fresh.metadata.owner_references.push_back({"v1", "Node", "other", "u2", true, false});
  auto back = decodeAs<Node>(encodeObject(fresh));
  REQUIRE(back.ok());
  REQUIRE(back->metadata.owner_references.size() == 1);
  CHECK(back->metadata.owner_references[0] == fresh.metadata.owner_references[0]);

  CHECK(decodeAs<Node>(R"({"metadata":{"ownerReferences":{}}})").status().code() ==
        absl::StatusCode::kInvalidArgument);

  // The merge patch that sets them: the same spelling, read back by the same decoder.
  auto patched = decodeAs<Node>(ownerReferencesPatch(fresh.metadata.owner_references));
  REQUIRE(patched.ok());
  CHECK(patched->metadata.owner_references == fresh.metadata.owner_references);
}

TEST_CASE("parseKubeconfig reads the current context, token and CA data", "[unit][k8s]") {
  auto cfg = parseKubeconfig(readTestData("kubeconfig.yaml"), "/nonexistent");
  REQUIRE(cfg.ok());
  CHECK(cfg->host == "10.96.0.1");
  CHECK(cfg->port == 6443);
  CHECK(cfg->ca_pem == "CA PEM DATA");
  CHECK(cfg->token == "prod-token-123");
  CHECK(cfg->default_namespace == "storage");
  CHECK(cfg->client_cert_pem.empty());
}

TEST_CASE("parseKubeconfig: other context, relative CA file, client certificate data",
          "[unit][k8s]") {
  carina::test::TempDir dir;
  std::string certs = dir.file("certs");
  REQUIRE(carina::test::run({"mkdir", "-p", certs}).exit_code == 0);
  std::ofstream(certs + "/dev-ca.crt") << "DEV CA";
  auto cfg = parseKubeconfig(readTestData("kubeconfig.yaml"), dir.path(), "dev");
  REQUIRE(cfg.ok());
  CHECK(cfg->host == "kube.example.test");
  CHECK(cfg->port == 443);
  CHECK(cfg->ca_pem == "DEV CA");
  CHECK(cfg->client_cert_pem == "CLIENT CERT");
  CHECK(cfg->client_key_pem == "CLIENT KEY");
  CHECK(cfg->token.empty());
  CHECK(cfg->default_namespace == "default");
}

TEST_CASE("parseKubeconfig errors name the field", "[unit][k8s]") {
  struct Bad {
    std::string yaml;
    std::string expect;
  };
  const std::vector<Bad> cases = {
      {"just a string", "not a mapping"},
      {"clusters: []\ncontexts: []\n", "current-context"},
      {"current-context: x\ncontexts: []\n", "contexts[x]"},
      {"current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\n",
       "clusters[k]"},
      {"current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n"
       "  cluster: {server: 'http://x'}\n",
       "only https"},
      {"current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n"
       "  cluster: {server: 'https://x:99999'}\n",
       "bad port"},
      {"current-context: c\ncontexts:\n- name: c\n  context: {cluster: k}\nclusters:\n- name: k\n"
       "  cluster: {server: 'https://x', certificate-authority-data: '***'}\n",
       "certificate-authority-data: invalid base64"},
      {"current-context: c\ncontexts:\n- name: c\n  context: {cluster: k, user: u}\nclusters:\n"
       "- name: k\n  cluster: {server: 'https://x'}\nusers:\n- name: u\n  user: "
       "{client-certificate-data: QQ==}\n",
       "certificate and key must be given together"},
      {"{unbalanced: [", "kubeconfig"},
  };
  for (const auto& c : cases) {
    SECTION(c.expect) {
      auto cfg = parseKubeconfig(c.yaml, "/tmp");
      REQUIRE_FALSE(cfg.ok());
      CHECK(cfg.status().code() == absl::StatusCode::kInvalidArgument);
      CHECK_THAT(std::string(cfg.status().message()), Catch::Contains(c.expect));
    }
  }
}

TEST_CASE("parseServerUrl handles IPv6 and default port", "[unit][k8s]") {
  ClientConfig c;
  REQUIRE(parseServerUrl("https://[fd00::1]:6443", c).ok());
  CHECK(c.host == "fd00::1");
  CHECK(c.port == 6443);
  REQUIRE(parseServerUrl("https://api.example/", c).ok());
  CHECK(c.host == "api.example");
  CHECK(c.port == 443);
  CHECK_FALSE(parseServerUrl("https://api.example/prefix", c).ok());
  CHECK_FALSE(parseServerUrl("https://:80", c).ok());
}

TEST_CASE("inClusterConfig reads the service-account files", "[unit][k8s]") {
  carina::test::TempDir dir;
  InClusterPaths paths{dir.file("token"), dir.file("ca.crt"), dir.file("namespace")};
  std::ofstream(paths.token_file) << "sa-token\n";
  std::ofstream(paths.ca_file) << "SA CA";
  std::ofstream(paths.namespace_file) << "kube-system\n";
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto cfg = inClusterConfig(paths);
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  REQUIRE(cfg.ok());
  CHECK(cfg->host == "10.96.0.1");
  CHECK(cfg->port == 443);
  CHECK(cfg->ca_pem == "SA CA");
  CHECK(cfg->token_file == paths.token_file);
  CHECK(cfg->token.empty());  // read (and re-read) by the client
  CHECK(cfg->default_namespace == "kube-system");
  CHECK(inClusterConfig(paths).status().code() == absl::StatusCode::kFailedPrecondition);
}

}  // namespace
