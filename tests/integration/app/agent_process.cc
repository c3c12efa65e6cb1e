#include "tests/integration/app/agent_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>

#include <grpcpp/grpcpp.h>

extern char** environ;

namespace carina::test {

AgentProcess::AgentProcess(AgentSetup setup) : setup_(std::move(setup)) {
  std::filesystem::create_directories(setup_.kubeletDir());
  std::string re;
  for (const std::string& d : setup_.disks) {
    re += "\"" + d + "\", ";
  }
  std::ofstream cfg(setup_.configPath());
  cfg << "diskSelector:\n"
      << "  - name: " << setup_.group << "\n"
      << "    re: [" << re << "]\n"
      << "    policy: RAW\n"
      << "diskScanInterval: 0\n"
      << "minDiskSize: 64Mi\n"
      << "standalone: " << (setup_.standalone ? "true" : "false") << "\n"
      << "nodeName: it-node\n"
      << "stateDir: " << setup_.dir << "/state\n"
      << "csi:\n"
      << "  endpoint: unix://" << setup_.socket() << "\n"
      << "  kubeletDir: " << setup_.kubeletDir() << "\n"
      << "extender:\n"
      << "  listen: " << setup_.http_listen << "\n"
      << "logging:\n"
      << "  level: debug\n"
      << setup_.extra_yaml;
}

AgentProcess::~AgentProcess() { stop(false); }

std::string AgentProcess::log() const {
  std::ifstream in(setup_.logPath());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void AgentProcess::start() {
  if (pid_ > 0) {
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, setup_.logPath().c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::string bin = CARINA_AGENT_BIN;
  std::string config = setup_.configPath();
  std::vector<char*> argv = {bin.data(), const_cast<char*>("--config"), config.data(), nullptr};
  int rc = posix_spawn(&pid_, bin.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start " + bin);
  }
  auto channel =
      grpc::CreateChannel("unix://" + setup_.socket(), grpc::InsecureChannelCredentials());
  identity_ = csi::v1::Identity::NewStub(channel);
  controller_ = csi::v1::Controller::NewStub(channel);
  node_ = csi::v1::Node::NewStub(channel);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("carina-agent exited during start-up:\n" + log());
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    csi::v1::ProbeRequest req;
    csi::v1::ProbeResponse resp;
    if (identity_->Probe(&ctx, req, &resp).ok() && resp.has_ready() && resp.ready().value()) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop(true);
  throw std::runtime_error("carina-agent not ready within 60 s:\n" + log());
}

void AgentProcess::stop(bool kill_hard) {
  if (pid_ <= 0) {
    return;
  }
  kill(pid_, kill_hard ? SIGKILL : SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  identity_.reset();
  controller_.reset();
  node_.reset();
}

}  // namespace carina::test
