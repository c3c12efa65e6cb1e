#pragma once

// The agent's configuration: plain data, nested by component. A Carina config.json works
// unchanged (diskSelector, diskScanInterval, schedulerStrategy); carina's own keys use the same
// camelCase style so that one file reads consistently (see docs/configuration.md). Defaults live
// in the member initializers. Each component receives only its own sub-struct.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

namespace carina::core {

enum class DiskPolicy { Raw, Lvm };
enum class SchedulerStrategy { Binpack, Spreadout };

std::string_view toString(DiskPolicy policy);
std::string_view toString(SchedulerStrategy strategy);

/** One diskSelector entry: a named group of disks. */
struct DiskSelector {
  std::string name;             // group name, unique; StorageClass disk-group-name refers to it
  std::vector<std::string> re;  // regexes, whole-name match against the kernel device name
  DiskPolicy policy = DiskPolicy::Raw;
  std::string node_label;  // the selector applies only on nodes carrying this label ("" = all)
};

struct CsiConfig {
  std::string endpoint = "unix:///var/lib/kubelet/plugins/carina.storage.io/csi.sock";
  std::string kubelet_dir = "/var/lib/kubelet";  // target/staging paths must lie below it
  uint32_t max_volumes_per_node = 256;
};

struct ExtenderConfig {
  std::string listen = "0.0.0.0:8089";
  std::string path_prefix = "/scheduler";
  std::string filter_verb = "filter";
  std::string prioritize_verb = "prioritize";
  std::string tls_cert_file;  // both set: serve HTTPS
  std::string tls_key_file;
  uint64_t body_limit_bytes = 64ULL * 1024 * 1024;
};

struct KubernetesConfig {
  std::string kubeconfig;  // empty: in-cluster service account
  double qps = 20;
  uint32_t burst = 40;
  uint32_t resync_seconds = 300;
  uint32_t request_timeout_seconds = 30;
};

/** The orphan reconciler (docs/orphans.md). */
struct ReconcilerConfig {
  uint32_t interval_seconds = 600;  // >= 10
  uint32_t grace_period_seconds = 3600;
  bool dry_run = false;
  bool enabled = true;
};

struct LoggingConfig {
  std::string level = "info";
  std::string format = "json";                    // json | text
  std::map<std::string, std::string> components;  // per-component level overrides
};

struct AgentConfig {
  std::vector<DiskSelector> disk_selectors;
  uint32_t disk_scan_interval_seconds = 300;  // 0 disables the periodic rescan
  SchedulerStrategy scheduler_strategy = SchedulerStrategy::Binpack;
  uint64_t min_disk_size_bytes = 10ULL * 1024 * 1024 * 1024;
  std::string state_dir = "/var/lib/carina";
  std::string node_name;    // empty: from $NODE_NAME, else the host name
  bool standalone = false;  // no API server; state from the node only
  std::string config_path;  // the file this came from (set by main; watched for changes)
  CsiConfig csi;
  ExtenderConfig extender;
  KubernetesConfig kubernetes;
  ReconcilerConfig reconciler;
  LoggingConfig logging;
};

/** Parses YAML or JSON text. Unknown keys, wrong types, invalid regexes and duplicate group
 *  names are InvalidArgument with the path of the bad field ("diskSelector[1].re[0]: ..."). */
absl::StatusOr<AgentConfig> parseConfig(std::string_view text);

/** Reads and parses @p path. NotFound / PermissionDenied if unreadable; parse errors are
 *  prefixed with the path. */
absl::StatusOr<AgentConfig> loadConfigFile(const std::string& path);

}  // namespace carina::core
