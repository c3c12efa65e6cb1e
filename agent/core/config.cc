#include "agent/core/config.h"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "agent/core/log.h"
#include "agent/core/quantity.h"
#include "agent/core/status.h"

namespace carina::core {

std::string_view toString(DiskPolicy policy) {
  switch (policy) {
    case DiskPolicy::Raw:
      return "RAW";
    case DiskPolicy::Lvm:
      return "LVM";
  }
  return "RAW";
}

std::string_view toString(SchedulerStrategy strategy) {
  switch (strategy) {
    case SchedulerStrategy::Binpack:
      return "binpack";
    case SchedulerStrategy::Spreadout:
      return "spreadout";
  }
  return "binpack";
}

namespace {

// An error carrying the path of the bad field; thrown inside the parser only and turned into
// InvalidArgument at its boundary (the walkers below stay short this way).
struct ConfigError {
  std::string path;
  std::string message;
};

[[noreturn]] void fail(const std::string& path, std::string message) {
  throw ConfigError{path, std::move(message)};
}

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

std::string index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return s;
}

std::string nodeKind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "undefined";
}

/** Iterates the keys of a map node, rejecting non-maps, duplicate and unknown keys. */
template <class Fn>
void forEachKey(const YAML::Node& node, const std::string& path, const std::set<std::string>& known,
                Fn&& fn) {
  if (node.IsNull()) {
    return;
  }
  if (!node.IsMap()) {
    fail(path.empty() ? "config" : path, "expected a map, got " + nodeKind(node));
  }
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      fail(path.empty() ? "config" : path, "keys must be strings");
    }
    std::string key = kv.first.Scalar();
    std::string field = join(path, key);
    if (!seen.insert(key).second) {
      fail(field, "duplicate key");
    }
    if (!known.empty() && known.count(key) == 0) {
      std::string list;
      for (const auto& k : known) {
        list += (list.empty() ? "" : ", ") + k;
      }
      fail(field, "unknown key (known keys: " + list + ")");
    }
    fn(key, kv.second, field);
  }
}

std::string scalar(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) {
    fail(path, "expected a string, got " + nodeKind(node));
  }
  return node.Scalar();
}

uint64_t parseUnsigned(const std::string& text, const std::string& path, uint64_t max) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec == std::errc::invalid_argument || ptr != end) {
    fail(path, "expected a non-negative integer, got \"" + text + "\"");
  }
  if (ec == std::errc::result_out_of_range || v > max) {
    fail(path, "value \"" + text + "\" out of range (max " + std::to_string(max) + ")");
  }
  return v;
}

// Accepts a number or a string holding one (Carina writes diskScanInterval as "300").
uint64_t unsignedValue(const YAML::Node& node, const std::string& path, uint64_t max) {
  return parseUnsigned(scalar(node, path), path, max);
}

uint32_t u32Value(const YAML::Node& node, const std::string& path) {
  return static_cast<uint32_t>(unsignedValue(node, path, std::numeric_limits<uint32_t>::max()));
}

bool boolValue(const YAML::Node& node, const std::string& path) {
  std::string s = lower(scalar(node, path));
  if (s == "true") {
    return true;
  }
  if (s == "false") {
    return false;
  }
  fail(path, "expected true or false, got \"" + node.Scalar() + "\"");
}

double positiveDouble(const YAML::Node& node, const std::string& path) {
  std::string s = scalar(node, path);
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !(v > 0) || v > 1e9) {
    fail(path, "expected a positive number, got \"" + s + "\"");
  }
  return v;
}

std::string nonEmptyString(const YAML::Node& node, const std::string& path) {
  std::string s = scalar(node, path);
  if (s.empty()) {
    fail(path, "must not be empty");
  }
  return s;
}

void checkLevel(const std::string& level, const std::string& path) {
  if (!log::parseLevel(level).ok()) {
    fail(path, "unknown log level \"" + level + "\" (trace, debug, info, warn, error, off)");
  }
}

void checkGroupName(const std::string& name, const std::string& path) {
  if (name.empty()) {
    fail(path, "must not be empty");
  }
  if (name.size() > 63) {
    fail(path, "\"" + name + "\" is longer than 63 characters");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) {
      fail(path, "\"" + name + "\" may contain only letters, digits, '-', '_' and '.'");
    }
  }
}

DiskSelector parseSelector(const YAML::Node& node, const std::string& path) {
  DiskSelector sel;
  bool has_name = false;
  bool has_re = false;
  forEachKey(node, path, {"name", "re", "policy", "nodeLabel"},
             [&](const std::string& key, const YAML::Node& value, const std::string& field) {
               if (key == "name") {
                 sel.name = scalar(value, field);
                 checkGroupName(sel.name, field);
                 has_name = true;
               } else if (key == "re") {
                 has_re = true;
                 if (value.IsScalar()) {
                   sel.re.push_back(value.Scalar());  // a single regex is accepted as well
                 } else if (value.IsSequence()) {
                   for (size_t i = 0; i < value.size(); ++i) {
                     sel.re.push_back(scalar(value[i], index(field, i)));
                   }
                 } else {
                   fail(field, "expected a list of regexes, got " + nodeKind(value));
                 }
                 for (size_t i = 0; i < sel.re.size(); ++i) {
                   std::string re_path = value.IsSequence() ? index(field, i) : field;
                   if (sel.re[i].empty()) {
                     fail(re_path, "empty regex");
                   }
                   try {
                     std::regex compiled(sel.re[i], std::regex::ECMAScript);
                   } catch (const std::regex_error& e) {
                     fail(re_path, "invalid regex \"" + sel.re[i] + "\": " + e.what());
                   }
                 }
               } else if (key == "policy") {
                 std::string p = lower(scalar(value, field));
                 if (p == "raw") {
                   sel.policy = DiskPolicy::Raw;
                 } else if (p == "lvm") {
                   sel.policy = DiskPolicy::Lvm;
                 } else {
                   fail(field, "policy must be RAW or LVM, got \"" + value.Scalar() + "\"");
                 }
               } else if (key == "nodeLabel") {
                 sel.node_label = scalar(value, field);
               }
             });
  if (!node.IsMap()) {
    fail(path, "expected a map, got " + nodeKind(node));
  }
  if (!has_name) {
    fail(join(path, "name"), "required");
  }
  if (!has_re || sel.re.empty()) {
    fail(join(path, "re"), "at least one regex is required");
  }
  return sel;
}

void parseCsi(const YAML::Node& node, const std::string& path, CsiConfig& csi) {
  forEachKey(node, path, {"endpoint", "kubeletDir", "maxVolumesPerNode"},
             [&](const std::string& key, const YAML::Node& value, const std::string& field) {
               if (key == "endpoint") {
                 csi.endpoint = nonEmptyString(value, field);
                 if (csi.endpoint.rfind("unix://", 0) != 0 || csi.endpoint.size() <= 7) {
                   fail(field, "must be unix:///<absolute path>, got \"" + csi.endpoint + "\"");
                 }
               } else if (key == "kubeletDir") {
                 csi.kubelet_dir = nonEmptyString(value, field);
                 if (csi.kubelet_dir.front() != '/') {
                   fail(field, "must be an absolute path");
                 }
               } else if (key == "maxVolumesPerNode") {
                 csi.max_volumes_per_node = u32Value(value, field);
               }
             });
}

void parseExtender(const YAML::Node& node, const std::string& path, ExtenderConfig& ext) {
  forEachKey(node, path,
             {"listen", "pathPrefix", "filterVerb", "prioritizeVerb", "tlsCertFile", "tlsKeyFile",
              "bodyLimit"},
             [&](const std::string& key, const YAML::Node& value, const std::string& field) {
               if (key == "listen") {
                 ext.listen = nonEmptyString(value, field);
                 auto colon = ext.listen.rfind(':');
                 if (colon == std::string::npos || colon + 1 == ext.listen.size()) {
                   fail(field, "expected host:port, got \"" + ext.listen + "\"");
                 }
                 parseUnsigned(ext.listen.substr(colon + 1), field, 65535);
               } else if (key == "pathPrefix") {
                 ext.path_prefix = scalar(value, field);
                 if (!ext.path_prefix.empty() && ext.path_prefix.front() != '/') {
                   fail(field, "must start with '/'");
                 }
               } else if (key == "filterVerb") {
                 ext.filter_verb = nonEmptyString(value, field);
               } else if (key == "prioritizeVerb") {
                 ext.prioritize_verb = nonEmptyString(value, field);
               } else if (key == "tlsCertFile") {
                 ext.tls_cert_file = scalar(value, field);
               } else if (key == "tlsKeyFile") {
                 ext.tls_key_file = scalar(value, field);
               } else if (key == "bodyLimit") {
                 ext.body_limit_bytes = parseQuantityBytes(scalar(value, field)).value_or(0);
                 if (ext.body_limit_bytes == 0) {
                   fail(field, "expected a positive byte count or quantity, got \"" +
                                   value.Scalar() + "\"");
                 }
               }
             });
  if (ext.tls_cert_file.empty() != ext.tls_key_file.empty()) {
    fail(join(path, ext.tls_cert_file.empty() ? "tlsCertFile" : "tlsKeyFile"),
         "tlsCertFile and tlsKeyFile must be set together");
  }
}

void parseKubernetes(const YAML::Node& node, const std::string& path, KubernetesConfig& k8s) {
  forEachKey(node, path, {"kubeconfig", "qps", "burst", "resyncSeconds", "requestTimeoutSeconds"},
             [&](const std::string& key, const YAML::Node& value, const std::string& field) {
               if (key == "kubeconfig") {
                 k8s.kubeconfig = scalar(value, field);
               } else if (key == "qps") {
                 k8s.qps = positiveDouble(value, field);
               } else if (key == "burst") {
                 k8s.burst = u32Value(value, field);
                 if (k8s.burst == 0) {
                   fail(field, "must be at least 1");
                 }
               } else if (key == "resyncSeconds") {
                 k8s.resync_seconds = u32Value(value, field);
               } else if (key == "requestTimeoutSeconds") {
                 k8s.request_timeout_seconds = u32Value(value, field);
                 if (k8s.request_timeout_seconds == 0) {
                   fail(field, "must be at least 1");
                 }
               }
             });
}

void parseReconciler(const YAML::Node& node, const std::string& path, ReconcilerConfig& rec) {
  forEachKey(node, path, {"intervalSeconds", "gracePeriodSeconds", "dryRun", "enabled"},
             [&](const std::string& key, const YAML::Node& value, const std::string& field) {
               if (key == "intervalSeconds") {
                 rec.interval_seconds = u32Value(value, field);
                 if (rec.interval_seconds < 10) {
                   fail(field, "must be at least 10");
                 }
               } else if (key == "enabled") {
                 rec.enabled = boolValue(value, field);
               } else if (key == "gracePeriodSeconds") {
                 rec.grace_period_seconds = u32Value(value, field);
               } else if (key == "dryRun") {
                 rec.dry_run = boolValue(value, field);
               }
             });
}

void parseLogging(const YAML::Node& node, const std::string& path, LoggingConfig& logging) {
  forEachKey(node, path, {"level", "format", "components"},
             [&](const std::string& key, const YAML::Node& value, const std::string& field) {
               if (key == "level") {
                 logging.level = lower(scalar(value, field));
                 checkLevel(logging.level, field);
               } else if (key == "format") {
                 logging.format = lower(scalar(value, field));
                 if (logging.format != "json" && logging.format != "text") {
                   fail(field, "must be json or text, got \"" + value.Scalar() + "\"");
                 }
               } else if (key == "components") {
                 forEachKey(value, field, {},
                            [&](const std::string& comp, const YAML::Node& level,
                                const std::string& comp_field) {
                              std::string l = lower(scalar(level, comp_field));
                              checkLevel(l, comp_field);
                              logging.components[comp] = l;
                            });
               }
             });
}

AgentConfig parseRoot(const YAML::Node& root) {
  AgentConfig cfg;
  if (!root.IsNull() && !root.IsMap()) {
    fail("config", "the document must be a map, got " + nodeKind(root));
  }
  forEachKey(root, "",
             {"diskSelector", "diskScanInterval", "schedulerStrategy", "minDiskSize", "stateDir",
              "nodeName", "standalone", "csi", "extender", "kubernetes", "reconciler", "logging"},
             [&](const std::string& key, const YAML::Node& value, const std::string& field) {
               if (key == "diskSelector") {
                 if (value.IsNull()) {
                   return;
                 }
                 if (!value.IsSequence()) {
                   fail(field, "expected a list, got " + nodeKind(value));
                 }
                 std::set<std::string> names;
                 for (size_t i = 0; i < value.size(); ++i) {
                   std::string item = index(field, i);
                   DiskSelector sel = parseSelector(value[i], item);
                   if (!names.insert(sel.name).second) {
                     fail(join(item, "name"), "duplicate group name \"" + sel.name + "\"");
                   }
                   cfg.disk_selectors.push_back(std::move(sel));
                 }
               } else if (key == "diskScanInterval") {
                 cfg.disk_scan_interval_seconds = u32Value(value, field);
               } else if (key == "schedulerStrategy") {
                 std::string s = lower(scalar(value, field));
                 if (s == "binpack") {
                   cfg.scheduler_strategy = SchedulerStrategy::Binpack;
                 } else if (s == "spreadout") {
                   cfg.scheduler_strategy = SchedulerStrategy::Spreadout;
                 } else {
                   fail(field, "must be binpack or spreadout, got \"" + value.Scalar() + "\"");
                 }
               } else if (key == "minDiskSize") {
                 std::string s = scalar(value, field);
                 auto q = parseQuantityBytes(s);
                 if (!q.ok()) {
                   fail(field,
                        "expected a byte count or a quantity like \"10Gi\", got \"" + s + "\"");
                 }
                 cfg.min_disk_size_bytes = *q;
               } else if (key == "stateDir") {
                 cfg.state_dir = nonEmptyString(value, field);
                 if (cfg.state_dir.front() != '/') {
                   fail(field, "must be an absolute path");
                 }
               } else if (key == "nodeName") {
                 cfg.node_name = scalar(value, field);
               } else if (key == "standalone") {
                 cfg.standalone = boolValue(value, field);
               } else if (key == "csi") {
                 parseCsi(value, field, cfg.csi);
               } else if (key == "extender") {
                 parseExtender(value, field, cfg.extender);
               } else if (key == "kubernetes") {
                 parseKubernetes(value, field, cfg.kubernetes);
               } else if (key == "reconciler") {
                 parseReconciler(value, field, cfg.reconciler);
               } else if (key == "logging") {
                 parseLogging(value, field, cfg.logging);
               }
             });
  return cfg;
}

}  // namespace

absl::StatusOr<AgentConfig> parseConfig(std::string_view text) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return parseRoot(root);
  } catch (const ConfigError& e) {
    return absl::InvalidArgumentError(e.path + ": " + e.message);
  } catch (const YAML::Exception& e) {
    // e.what() includes "yaml-cpp: error at line L, column C: ..." for parse errors.
    return absl::InvalidArgumentError(std::string("config: cannot parse: ") + e.what());
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(std::string("config: ") + e.what());
  }
}

absl::StatusOr<AgentConfig> loadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return errnoStatus("read config " + path, errno == 0 ? ENOENT : errno);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return errnoStatus("read config " + path, errno == 0 ? EIO : errno);
  }
  auto cfg = parseConfig(ss.str());
  if (!cfg.ok()) {
    return annotate(cfg.status(), path);
  }
  cfg->config_path = path;
  return cfg;
}

}  // namespace carina::core
