// carina-agent: parse flags, load the config, hand over to carina::app::run.
#include <sysexits.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "agent/app/app.h"
#include "agent/core/config.h"
#include "agent/core/status.h"

namespace {
constexpr const char* kUsage =
    "usage: carina-agent --config FILE [--standalone] [--node-name NAME]\n"
    "                    [--csi-endpoint unix:///PATH] [--http-listen HOST:PORT]\n"
    "                    [--state-dir DIR] [--log-level trace|debug|info|warn|error]\n"
    "                    [--kubeconfig FILE]\n"
    "Without --standalone (cluster mode) the API server is reached through the pod's service\n"
    "account, or through --kubeconfig (config key kubernetes.kubeconfig).\n";
}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool standalone = false;
  std::string node_name, endpoint, listen, state_dir, log_level, kubeconfig;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "carina-agent: %s needs a value\n%s", arg.c_str(), kUsage);
        std::exit(EX_USAGE);
      }
      out = argv[++i];
    };
    if (arg == "--config") {
      value(config_path);
    } else if (arg == "--standalone") {
      standalone = true;
    } else if (arg == "--node-name") {
      value(node_name);
    } else if (arg == "--csi-endpoint") {
      value(endpoint);
    } else if (arg == "--http-listen") {
      value(listen);
    } else if (arg == "--state-dir") {
      value(state_dir);
    } else if (arg == "--log-level") {
      value(log_level);
    } else if (arg == "--kubeconfig") {
      value(kubeconfig);
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "carina-agent: unknown argument %s\n%s", arg.c_str(), kUsage);
      return EX_USAGE;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "carina-agent: --config is required\n%s", kUsage);
    return EX_USAGE;
  }
  auto config = carina::core::loadConfigFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "carina-agent: %s\n", std::string(config.status().message()).c_str());
    return EX_CONFIG;
  }
  // Flags override config keys of the same meaning.
  if (standalone) config->standalone = true;
  if (!node_name.empty()) config->node_name = node_name;
  if (!endpoint.empty()) config->csi.endpoint = endpoint;
  if (!listen.empty()) config->extender.listen = listen;
  if (!state_dir.empty()) config->state_dir = state_dir;
  if (!log_level.empty()) config->logging.level = log_level;
  if (!kubeconfig.empty()) config->kubernetes.kubeconfig = kubeconfig;
  config->config_path = config_path;
  return carina::app::run(*config);
}
