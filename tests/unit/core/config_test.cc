#include "agent/core/config.h"

#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/core/status.h"
#include "tests/support/test_support.h"

namespace carina::core {
namespace {

std::string testdata(const std::string& name) {
  return std::string(CARINA_CONFIG_TESTDATA) + "/" + name;
}

TEST_CASE("parseConfig reads a Carina config.json unchanged", "[unit][config]") {
  auto cfg = loadConfigFile(testdata("carina_config.json"));
  REQUIRE(cfg.ok());
  REQUIRE(cfg->disk_selectors.size() == 1);
  const DiskSelector& sel = cfg->disk_selectors[0];
  CHECK(sel.name == "carina-raw-ssd");
  CHECK(sel.re == std::vector<std::string>{"loop2+"});
  CHECK(sel.policy == DiskPolicy::Raw);
  CHECK(sel.node_label == "kubernetes.io/hostname");
  CHECK(cfg->disk_scan_interval_seconds == 300);
  CHECK(cfg->scheduler_strategy == SchedulerStrategy::Spreadout);
  CHECK(cfg->config_path == testdata("carina_config.json"));
  // Everything else keeps its default.
  AgentConfig defaults;
  CHECK(cfg->min_disk_size_bytes == defaults.min_disk_size_bytes);
  CHECK(cfg->csi.endpoint == defaults.csi.endpoint);
}

TEST_CASE("parseConfig reads the one-line Carina json and numbers as numbers", "[unit][config]") {
  auto cfg =
      parseConfig(R"({"diskSelector":[{"name":"carina-raw-ssd","re":["loop2+"],"policy":"RAW",)"
                  R"("nodeLabel":"kubernetes.io/hostname"}],"diskScanInterval":"300",)"
                  R"("schedulerStrategy":"spreadout"})");
  REQUIRE(cfg.ok());
  CHECK(cfg->disk_scan_interval_seconds == 300);
  auto numeric = parseConfig(R"({"diskScanInterval": 0, "schedulerStrategy": "Binpack"})");
  REQUIRE(numeric.ok());
  CHECK(numeric->disk_scan_interval_seconds == 0);
  CHECK(numeric->scheduler_strategy == SchedulerStrategy::Binpack);
}

TEST_CASE("parseConfig reads YAML with all of carina's keys", "[unit][config]") {
  auto cfg = loadConfigFile(testdata("full.yaml"));
  REQUIRE(cfg.ok());
  REQUIRE(cfg->disk_selectors.size() == 2);
  CHECK(cfg->disk_selectors[0].policy == DiskPolicy::Raw);
  CHECK(cfg->disk_selectors[0].re.size() == 2);
  CHECK(cfg->disk_selectors[1].name == "hdd-lvm");
  CHECK(cfg->disk_selectors[1].policy == DiskPolicy::Lvm);
  CHECK(cfg->disk_selectors[1].node_label == "carina.storage.io/hdd=true");
  CHECK(cfg->disk_scan_interval_seconds == 60);
  CHECK(cfg->scheduler_strategy == SchedulerStrategy::Binpack);
  CHECK(cfg->min_disk_size_bytes == 20ULL * 1024 * 1024 * 1024);
  CHECK(cfg->node_name == "node-1");
  CHECK_FALSE(cfg->standalone);
  CHECK(cfg->csi.max_volumes_per_node == 128);
  CHECK(cfg->extender.listen == "0.0.0.0:8089");
  CHECK(cfg->extender.body_limit_bytes == 64ULL * 1024 * 1024);
  CHECK(cfg->kubernetes.qps == 20);
  CHECK(cfg->kubernetes.burst == 40);
  CHECK(cfg->reconciler.dry_run);
  CHECK(cfg->logging.components.at("storage") == "debug");
  CHECK(cfg->logging.components.at("extender") == "warn");
}

TEST_CASE("parseConfig accepts empty documents and sizes in several spellings", "[unit][config]") {
  REQUIRE(parseConfig("").ok());
  REQUIRE(parseConfig("{}").ok());
  struct Case {
    std::string text;
    uint64_t bytes;
  };
  std::vector<Case> cases = {
      {"minDiskSize: 0", 0},
      {"minDiskSize: 1048576", 1048576},
      {"minDiskSize: \"10Gi\"", 10ULL << 30},
      {"minDiskSize: 10G", 10'000'000'000ULL},
      {"minDiskSize: 1.5Ki", 1536},
      {"minDiskSize: 0.5k", 500},
      {"minDiskSize: 2Ti", 2ULL << 40},
      {"minDiskSize: 16Ei", 0},  // overflow, checked below
  };
  for (const auto& c : cases) {
    SECTION(c.text) {
      auto cfg = parseConfig(c.text);
      if (c.text == "minDiskSize: 16Ei") {
        REQUIRE_FALSE(cfg.ok());
        CHECK(toStd(cfg.status().message()).rfind("minDiskSize:", 0) == 0);
      } else {
        REQUIRE(cfg.ok());
        CHECK(cfg->min_disk_size_bytes == c.bytes);
      }
    }
  }
}

TEST_CASE("parseConfig rejects bad input with the path of the field", "[unit][config]") {
  struct Case {
    std::string name;
    std::string text;
    std::string prefix;  // the error message starts with this
  };
  std::vector<Case> cases = {
      {"unknown root key", "diskSelektor: []", "diskSelektor: unknown key"},
      {"unknown nested key", "csi: {endpointt: x}", "csi.endpointt: unknown key"},
      {"unknown selector key", R"({"diskSelector":[{"name":"a","re":["x"],"polcy":"RAW"}]})",
       "diskSelector[0].polcy: unknown key"},
      {"invalid regex", R"({"diskSelector":[{"name":"a","re":["sd[a-"]}]})",
       "diskSelector[0].re[0]: invalid regex"},
      {"invalid second regex of second group",
       R"({"diskSelector":[{"name":"a","re":["x"]},{"name":"b","re":["ok","(unclosed"]}]})",
       "diskSelector[1].re[1]: invalid regex"},
      {"empty regex", R"({"diskSelector":[{"name":"a","re":[""]}]})",
       "diskSelector[0].re[0]: empty regex"},
      {"no regex", R"({"diskSelector":[{"name":"a","re":[]}]})", "diskSelector[0].re:"},
      {"missing re", R"({"diskSelector":[{"name":"a"}]})", "diskSelector[0].re:"},
      {"duplicate group", R"({"diskSelector":[{"name":"a","re":["x"]},{"name":"a","re":["y"]}]})",
       "diskSelector[1].name: duplicate group name"},
      {"empty name", R"({"diskSelector":[{"name":"","re":["x"]}]})",
       "diskSelector[0].name: must not be empty"},
      {"missing name", R"({"diskSelector":[{"re":["x"]}]})", "diskSelector[0].name: required"},
      {"bad name chars", R"({"diskSelector":[{"name":"a b","re":["x"]}]})",
       "diskSelector[0].name:"},
      {"bad policy", R"({"diskSelector":[{"name":"a","re":["x"],"policy":"ZFS"}]})",
       "diskSelector[0].policy: policy must be RAW or LVM"},
      {"selector not a list", R"({"diskSelector":{"name":"a"}})", "diskSelector: expected a list"},
      {"selector item not a map", R"({"diskSelector":["sdb"]})", "diskSelector[0]: expected a map"},
      {"bad strategy", R"({"schedulerStrategy":"random"})",
       "schedulerStrategy: must be binpack or spreadout"},
      {"interval not a number", R"({"diskScanInterval":"5m"})",
       "diskScanInterval: expected a non-negative integer"},
      {"interval negative", R"({"diskScanInterval":-1})",
       "diskScanInterval: expected a non-negative integer"},
      {"interval too large", R"({"diskScanInterval":99999999999})",
       "diskScanInterval: value \"99999999999\" out of range"},
      {"interval is a map", R"({"diskScanInterval":{"a":1}})",
       "diskScanInterval: expected a string, got a map"},
      {"bad size", "minDiskSize: 10GB", "minDiskSize: expected a byte count"},
      {"bad bool", "standalone: maybe", "standalone: expected true or false"},
      {"relative stateDir", "stateDir: var/lib", "stateDir: must be an absolute path"},
      {"bad endpoint", "csi: {endpoint: tcp://x:1}", "csi.endpoint: must be unix://"},
      {"relative kubeletDir", "csi: {kubeletDir: kubelet}", "csi.kubeletDir:"},
      {"max volumes not a number", "csi: {maxVolumesPerNode: many}",
       "csi.maxVolumesPerNode: expected a non-negative integer"},
      {"listen without port", "extender: {listen: localhost}",
       "extender.listen: expected host:port"},
      {"listen port too large", "extender: {listen: ':70000'}", "extender.listen: value"},
      {"path prefix", "extender: {pathPrefix: scheduler}", "extender.pathPrefix: must start"},
      {"cert without key", "extender: {tlsCertFile: /a.pem}", "extender.tlsKeyFile:"},
      {"body limit zero", "extender: {bodyLimit: 0}", "extender.bodyLimit:"},
      {"qps zero", "kubernetes: {qps: 0}", "kubernetes.qps: expected a positive number"},
      {"burst zero", "kubernetes: {burst: 0}", "kubernetes.burst: must be at least 1"},
      {"timeout zero", "kubernetes: {requestTimeoutSeconds: 0}",
       "kubernetes.requestTimeoutSeconds:"},
      {"dryRun not bool", "reconciler: {dryRun: 3}", "reconciler.dryRun: expected true or false"},
      {"reconciler interval below 10", "reconciler: {intervalSeconds: 9}",
       "reconciler.intervalSeconds: must be at least 10"},
      {"reconciler enabled not bool", "reconciler: {enabled: sometimes}",
       "reconciler.enabled: expected true or false"},
      {"reconciler unknown key", "reconciler: {grace: 5}", "reconciler.grace: unknown key"},
      {"bad level", "logging: {level: verbose}", "logging.level: unknown log level"},
      {"bad format", "logging: {format: xml}", "logging.format: must be json or text"},
      {"bad component level", "logging: {components: {storage: loud}}",
       "logging.components.storage: unknown log level"},
      {"components not a map", "logging: {components: [a]}", "logging.components: expected a map"},
      {"csi not a map", "csi: [1, 2]", "csi: expected a map"},
      {"duplicate key", "diskScanInterval: 1\ndiskScanInterval: 2",
       "diskScanInterval: duplicate key"},
      {"document not a map", "[1, 2, 3]", "config: the document must be a map"},
      {"scalar document", "hello", "config: the document must be a map"},
      {"yaml syntax error", "{\"diskSelector\": [", "config: cannot parse"},
      {"tab indentation", "csi:\n\tendpoint: x", "config: cannot parse"},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      auto cfg = parseConfig(c.text);
      REQUIRE_FALSE(cfg.ok());
      CHECK(cfg.status().code() == absl::StatusCode::kInvalidArgument);
      std::string msg(toStd(cfg.status().message()));
      INFO(msg);
      CHECK(msg.rfind(c.prefix, 0) == 0);
    }
  }
}

TEST_CASE("parseConfig reads the orphan reconciler section", "[unit][config]") {
  AgentConfig defaults;
  CHECK(defaults.reconciler.interval_seconds == 600);
  CHECK(defaults.reconciler.grace_period_seconds == 3600);
  CHECK_FALSE(defaults.reconciler.dry_run);
  CHECK(defaults.reconciler.enabled);
  auto cfg = parseConfig(
      "reconciler: {intervalSeconds: 10, gracePeriodSeconds: 0, dryRun: true, enabled: false}");
  REQUIRE(cfg.ok());
  CHECK(cfg->reconciler.interval_seconds == 10);
  CHECK(cfg->reconciler.grace_period_seconds == 0);
  CHECK(cfg->reconciler.dry_run);
  CHECK_FALSE(cfg->reconciler.enabled);
}

TEST_CASE("loadConfigFile reports unreadable files and prefixes the path", "[unit][config]") {
  auto missing = loadConfigFile("/nonexistent/carina/config.json");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == absl::StatusCode::kNotFound);

  test::TempDir dir;
  std::string path = dir.file("bad.yaml");
  std::ofstream(path) << "diskScanInterval: soon\n";
  auto bad = loadConfigFile(path);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(toStd(bad.status().message()).rfind(path + ": diskScanInterval:", 0) == 0);
}

TEST_CASE("toString names policies and strategies as the config spells them", "[unit][config]") {
  CHECK(toString(DiskPolicy::Raw) == "RAW");
  CHECK(toString(DiskPolicy::Lvm) == "LVM");
  CHECK(toString(SchedulerStrategy::Binpack) == "binpack");
  CHECK(toString(SchedulerStrategy::Spreadout) == "spreadout");
}

}  // namespace
}  // namespace carina::core
