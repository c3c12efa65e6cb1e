#pragma once

// A real CsiServer on a unix socket in a TempDir, with the agent executor (an io_context on one
// thread) and a blocking pool, plus generated stubs to call it. Used by the unit tests (with
// fakes) and the integration tests (with the real mounter and command runner).

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <catch2/catch.hpp>
#include <grpcpp/grpcpp.h>

#include "agent/os/command_runner.h"
#include "agent/os/mounter.h"
#include "agent/storage/volume_backend.h"
#include "csi.grpc.pb.h"
#include "csi/services.h"
#include "tests/support/test_support.h"

namespace carina::test {

namespace v1 = ::csi::v1;

inline constexpr const char* kTestNode = "node-a";

class CsiHarness {
public:
  CsiHarness(
      storage::VolumeBackend& backend, os::Mounter& mounter, os::CommandRunner& runner,
      const std::function<void(csi::ServiceOptions&)>& tweak = {},
      csi::ReadinessFn ready = [] { return true; }, csi::VolumeObserver* observer = nullptr)
      : work_(boost::asio::make_work_guard(io_)) {
    kubelet_ = dir_.file("kubelet");
    std::filesystem::create_directories(kubelet_ + "/plugins");
    std::filesystem::create_directories(kubelet_ + "/pods");
    io_thread_ = std::thread([this] { io_.run(); });
    csi::ServiceOptions opts;
    opts.node_name = kTestNode;
    opts.endpoint = "unix://" + dir_.file("csi.sock");
    opts.kubelet_dir = kubelet_;
    opts.max_volumes_per_node = 100;
    opts.version = "0.1.0-test";
    opts.command_timeout = std::chrono::seconds(120);
    if (tweak) {
      tweak(opts);
    }
    auto server = csi::CsiServer::start(csi::ServiceDeps{
        opts, backend, mounter, runner, io_.get_executor(), pool_, ready, observer});
    if (!server.ok()) {
      stop();
      FAIL("CsiServer::start: " << server.status().ToString());
    }
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel(opts.endpoint, grpc::InsecureChannelCredentials());
    identity = v1::Identity::NewStub(channel_);
    controller = v1::Controller::NewStub(channel_);
    node = v1::Node::NewStub(channel_);
  }
  ~CsiHarness() { stop(); }
  CsiHarness(const CsiHarness&) = delete;
  CsiHarness& operator=(const CsiHarness&) = delete;

  const std::string& kubeletDir() const { return kubelet_; }
  const std::string& socketPath() const { return server_->socketPath(); }
  /** A fresh per-pod directory (the parent of a target path) below the kubelet dir. */
  std::string podDir(const std::string& name) const {
    std::string d = kubelet_ + "/pods/" + name;
    std::filesystem::create_directories(d);
    return d;
  }
  std::string stagingDir(const std::string& name) const {
    std::string d = kubelet_ + "/plugins/staging-" + name;
    std::filesystem::create_directories(d);
    return d;
  }

  std::unique_ptr<v1::Identity::Stub> identity;
  std::unique_ptr<v1::Controller::Stub> controller;
  std::unique_ptr<v1::Node::Stub> node;

private:
  void stop() {
    if (server_) {
      server_->shutdown(std::chrono::seconds(5));
    }
    work_.reset();
    io_.stop();
    if (io_thread_.joinable()) {
      io_thread_.join();
    }
    pool_.join();
  }

  TempDir dir_;
  std::string kubelet_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread io_thread_;
  boost::asio::thread_pool pool_{2};
  std::unique_ptr<csi::CsiServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

/** Calls a unary RPC with a 60 s deadline and returns the status. */
template <class Stub, class Req, class Resp>
grpc::Status call(Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                  const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return (stub.*method)(&ctx, req, resp);
}

inline v1::VolumeCapability mountCap(const std::string& fs = "",
                                     v1::VolumeCapability::AccessMode::Mode mode =
                                         v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER) {
  v1::VolumeCapability cap;
  cap.mutable_mount()->set_fs_type(fs);
  cap.mutable_access_mode()->set_mode(mode);
  return cap;
}

inline v1::VolumeCapability blockCap(v1::VolumeCapability::AccessMode::Mode mode =
                                         v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER) {
  v1::VolumeCapability cap;
  cap.mutable_block();
  cap.mutable_access_mode()->set_mode(mode);
  return cap;
}

inline v1::CreateVolumeRequest createRequest(const std::string& name, int64_t bytes,
                                             const v1::VolumeCapability& cap = mountCap()) {
  v1::CreateVolumeRequest req;
  req.set_name(name);
  req.mutable_capacity_range()->set_required_bytes(bytes);
  *req.add_volume_capabilities() = cap;
  return req;
}

}  // namespace carina::test
