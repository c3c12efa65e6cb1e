#pragma once

// A carina-agent child process for integration tests, plus a CSI client to it. The agent runs in
// standalone mode on the loop devices the test names; its log goes to a file in the test's temp
// dir (printed when a test fails). The destructor stops it (SIGTERM, then SIGKILL).

#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include "csi.grpc.pb.h"

namespace carina::test {

struct AgentSetup {
  std::string dir;                 // temp dir: config, socket, state, kubelet dir, log
  std::vector<std::string> disks;  // kernel names the single RAW group selects, e.g. "loop7"
  std::string group = "raw";
  std::string extra_yaml;  // appended to the generated config
  bool standalone = true;  // false: cluster mode (give kubernetes.kubeconfig in extra_yaml)
  std::string http_listen = "127.0.0.1:0";
  std::string socket() const { return dir + "/csi.sock"; }
  std::string kubeletDir() const { return dir + "/kubelet"; }
  std::string configPath() const { return dir + "/config.yaml"; }
  std::string logPath() const { return dir + "/agent.log"; }
};

class AgentProcess {
public:
  explicit AgentProcess(AgentSetup setup);
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  /** Starts the agent and waits until Probe says ready. Throws on failure (log attached). */
  void start();
  /** SIGTERM and wait (graceful) or SIGKILL (a crash). */
  void stop(bool kill_hard = false);
  void restart(bool kill_hard = false) {
    stop(kill_hard);
    start();
  }
  std::string log() const;

  csi::v1::Identity::Stub& identity() { return *identity_; }
  csi::v1::Controller::Stub& controller() { return *controller_; }
  csi::v1::Node::Stub& node() { return *node_; }
  const AgentSetup& setup() const { return setup_; }

private:
  AgentSetup setup_;
  pid_t pid_ = -1;
  std::unique_ptr<csi::v1::Identity::Stub> identity_;
  std::unique_ptr<csi::v1::Controller::Stub> controller_;
  std::unique_ptr<csi::v1::Node::Stub> node_;
};

}  // namespace carina::test
