// Client configuration: in-cluster (service account) and kubeconfig (yaml-cpp; JSON is YAML).

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <absl/strings/escaping.h>
#include <yaml-cpp/yaml.h>

#include "agent/core/status.h"
#include "k8s-client/kube_client.h"
#include "k8s-client/str_internal.h"

namespace carina::k8s {
using internal::append;
using internal::cat;
namespace {

absl::StatusOr<std::string> readFile(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return errnoStatus(absl::StatusCode::kNotFound, cat("reading ", what, " ", path), errno);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

std::string resolve(const std::string& path, std::string_view base_dir) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) {
    return path;
  }
  return cat(std::string(base_dir), "/", path);
}

/** The entry named @p name of a kubeconfig list ("clusters", "users", "contexts"). */
YAML::Node findNamed(const YAML::Node& root, const char* list, const std::string& name) {
  const YAML::Node items = root[list];
  if (items && items.IsSequence()) {
    for (const auto& item : items) {
      if (item["name"] && item["name"].as<std::string>() == name) {
        return item;
      }
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string scalar(const YAML::Node& node, const char* key) {
  const YAML::Node v = node[key];
  if (!v || !v.IsScalar()) {
    return {};
  }
  return v.as<std::string>();
}

absl::StatusOr<std::string> dataOrFile(const YAML::Node& node, const char* data_key,
                                       const char* file_key, std::string_view field_prefix,
                                       std::string_view base_dir) {
  std::string data = scalar(node, data_key);
  if (!data.empty()) {
    std::string decoded;
    if (!absl::Base64Unescape(data, &decoded)) {
      return absl::InvalidArgumentError(cat(field_prefix, ".", data_key, ": invalid base64"));
    }
    return decoded;
  }
  std::string file = scalar(node, file_key);
  if (!file.empty()) {
    return readFile(resolve(file, base_dir), cat(field_prefix, ".", file_key));
  }
  return std::string();
}

}  // namespace

absl::Status parseServerUrl(std::string_view url, ClientConfig& config) {
  constexpr std::string_view kHttps = "https://";
  if (url.substr(0, kHttps.size()) != kHttps) {
    return absl::InvalidArgumentError(
        cat("server \"", std::string(url), "\": only https:// is supported"));
  }
  std::string_view rest = url.substr(kHttps.size());
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") {
      return absl::InvalidArgumentError(
          cat("server \"", std::string(url), "\": a path prefix is not supported"));
    }
    rest = rest.substr(0, slash);
  }
  std::string_view host = rest;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {  // [v6]:port
    auto close = rest.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(cat("server \"", std::string(url), "\": bad host"));
    }
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return absl::InvalidArgumentError(cat("server \"", std::string(url), "\": bad host"));
      }
      port = after.substr(1);
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty()) {
    return absl::InvalidArgumentError(cat("server \"", std::string(url), "\": no host"));
  }
  uint32_t p = 443;
  if (!port.empty()) {
    p = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || p > 65535) {
        return absl::InvalidArgumentError(cat("server \"", std::string(url), "\": bad port"));
      }
      p = p * 10 + static_cast<uint32_t>(c - '0');
    }
    if (p == 0 || p > 65535) {
      return absl::InvalidArgumentError(cat("server \"", std::string(url), "\": bad port"));
    }
  }
  config.host = std::string(host);
  config.port = static_cast<uint16_t>(p);
  return absl::OkStatus();
}

absl::StatusOr<ClientConfig> inClusterConfig(const InClusterPaths& paths) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
    return absl::FailedPreconditionError(
        "not running in a cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT unset");
  }
  ClientConfig config;
  std::string h = host;
  std::string url = h.find(':') != std::string::npos ? cat("https://[", h, "]:", port)
                                                     : cat("https://", h, ":", port);
  CARINA_RETURN_IF_ERROR(parseServerUrl(url, config));
  CARINA_ASSIGN_OR_RETURN(config.ca_pem, readFile(paths.ca_file, "service-account CA"));
  // Read once to fail early; the client re-reads it whenever it changes.
  CARINA_ASSIGN_OR_RETURN(std::string token, readFile(paths.token_file, "service-account token"));
  if (trim(token).empty()) {
    return absl::InvalidArgumentError(cat(paths.token_file, ": empty token"));
  }
  config.token_file = paths.token_file;
  if (auto ns = readFile(paths.namespace_file, "namespace"); ns.ok() && !trim(*ns).empty()) {
    config.default_namespace = trim(*ns);
  }
  return config;
}

absl::StatusOr<ClientConfig> parseKubeconfig(std::string_view text, std::string_view base_dir,
                                             std::string_view context) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsMap()) {
      return absl::InvalidArgumentError("kubeconfig: not a mapping");
    }
    std::string ctx_name = context.empty() ? scalar(root, "current-context") : std::string(context);
    if (ctx_name.empty()) {
      return absl::InvalidArgumentError("kubeconfig: current-context: required");
    }
    YAML::Node ctx = findNamed(root, "contexts", ctx_name);
    if (!ctx || !ctx["context"] || !ctx["context"].IsMap()) {
      return absl::InvalidArgumentError(cat("kubeconfig: contexts[", ctx_name, "]: not found"));
    }
    std::string cluster_name = scalar(ctx["context"], "cluster");
    std::string user_name = scalar(ctx["context"], "user");
    ClientConfig config;
    if (std::string ns = scalar(ctx["context"], "namespace"); !ns.empty()) {
      config.default_namespace = ns;
    }
    YAML::Node cluster_entry = findNamed(root, "clusters", cluster_name);
    if (!cluster_entry || !cluster_entry["cluster"] || !cluster_entry["cluster"].IsMap()) {
      return absl::InvalidArgumentError(cat("kubeconfig: clusters[", cluster_name, "]: not found"));
    }
    YAML::Node cluster = cluster_entry["cluster"];
    std::string prefix = cat("kubeconfig: clusters[", cluster_name, "].cluster");
    std::string server = scalar(cluster, "server");
    if (server.empty()) {
      return absl::InvalidArgumentError(cat(prefix, ".server: required"));
    }
    if (absl::Status s = parseServerUrl(server, config); !s.ok()) {
      return annotate(s, cat(prefix, ".server"));
    }
    CARINA_ASSIGN_OR_RETURN(config.ca_pem, dataOrFile(cluster, "certificate-authority-data",
                                                      "certificate-authority", prefix, base_dir));
    config.insecure_skip_tls_verify = scalar(cluster, "insecure-skip-tls-verify") == "true";
    if (!user_name.empty()) {
      YAML::Node user_entry = findNamed(root, "users", user_name);
      if (!user_entry || !user_entry["user"] || !user_entry["user"].IsMap()) {
        return absl::InvalidArgumentError(cat("kubeconfig: users[", user_name, "]: not found"));
      }
      YAML::Node user = user_entry["user"];
      std::string uprefix = cat("kubeconfig: users[", user_name, "].user");
      config.token = scalar(user, "token");
      if (std::string tf = scalar(user, "tokenFile"); !tf.empty()) {
        config.token_file = resolve(tf, base_dir);
      }
      CARINA_ASSIGN_OR_RETURN(
          config.client_cert_pem,
          dataOrFile(user, "client-certificate-data", "client-certificate", uprefix, base_dir));
      CARINA_ASSIGN_OR_RETURN(config.client_key_pem,
                              dataOrFile(user, "client-key-data", "client-key", uprefix, base_dir));
      if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
        return absl::InvalidArgumentError(
            cat(uprefix, ": client certificate and key must be given together"));
      }
      if (user["exec"] || user["auth-provider"]) {
        return absl::InvalidArgumentError(
            cat(uprefix, ": exec and auth-provider credentials are not supported"));
      }
    }
    return config;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(cat("kubeconfig: ", e.what()));
  }
}

absl::StatusOr<ClientConfig> loadKubeconfigFile(const std::string& path, std::string_view context) {
  CARINA_ASSIGN_OR_RETURN(std::string text, readFile(path, "kubeconfig"));
  std::string dir;
  if (auto slash = path.rfind('/'); slash != std::string::npos) {
    dir = path.substr(0, slash);
  }
  return parseKubeconfig(text, dir, context);
}

}  // namespace carina::k8s
