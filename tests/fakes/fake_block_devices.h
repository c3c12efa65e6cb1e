#pragma once

// Fakes for agent/os/block_devices.h: a scripted BlockDeviceSource whose monitor fd is a pipe
// (so the real async code can wait on it) and a SignatureProber answering from a map. Both keep
// call counts and can inject failures. Thread-safe: enumerate()/probe() run on pool threads.

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <absl/status/statusor.h>

#include "agent/os/block_devices.h"

namespace carina::test {

class FakeBlockDeviceSource final : public os::BlockDeviceSource {
public:
  FakeBlockDeviceSource() {
    if (pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0) {
      pipe_[0] = pipe_[1] = -1;
    }
  }
  ~FakeBlockDeviceSource() override {
    for (int fd : pipe_) {
      if (fd >= 0) {
        close(fd);
      }
    }
  }
  FakeBlockDeviceSource(const FakeBlockDeviceSource&) = delete;
  FakeBlockDeviceSource& operator=(const FakeBlockDeviceSource&) = delete;

  // Test controls.
  void setDevices(std::vector<os::BlockDeviceFacts> devices) {
    std::lock_guard<std::mutex> lock(mu_);
    devices_ = std::move(devices);
  }
  void addDevice(os::BlockDeviceFacts device) {
    std::lock_guard<std::mutex> lock(mu_);
    devices_.push_back(std::move(device));
  }
  void removeDevice(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(devices_, [&](const auto& d) { return d.name == name; });
  }
  /** Queues an event and makes the monitor fd readable. */
  void pushEvent(os::BlockDeviceEvent event) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(event));
    }
    char b = 'e';
    [[maybe_unused]] auto n = write(pipe_[1], &b, 1);
  }
  void failEnumerate(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    enumerate_error_ = std::move(status);
  }
  void failMonitor(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    monitor_error_ = std::move(status);
  }
  int enumerateCalls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return enumerate_calls_;
  }
  bool monitorStarted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return monitor_started_;
  }

  // os::BlockDeviceSource
  absl::Status startMonitor() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!monitor_error_.ok()) {
      return monitor_error_;
    }
    monitor_started_ = true;
    return absl::OkStatus();
  }
  int monitorFd() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return monitor_started_ ? pipe_[0] : -1;
  }
  std::vector<os::BlockDeviceEvent> drainEvents() override {
    char buf[256];
    while (read(pipe_[0], buf, sizeof(buf)) > 0) {
    }
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(events_, {});
  }
  absl::StatusOr<std::vector<os::BlockDeviceFacts>> enumerate() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++enumerate_calls_;
    if (!enumerate_error_.ok()) {
      return enumerate_error_;
    }
    return devices_;
  }

private:
  mutable std::mutex mu_;
  int pipe_[2] = {-1, -1};
  std::vector<os::BlockDeviceFacts> devices_;
  std::vector<os::BlockDeviceEvent> events_;
  absl::Status enumerate_error_;
  absl::Status monitor_error_;
  int enumerate_calls_ = 0;
  bool monitor_started_ = false;
};

class FakeSignatureProber final : public os::SignatureProber {
public:
  /** Devices not set here probe as empty (no signature, no table). */
  void set(const std::string& devnode, os::DeviceSignatures sig) {
    std::lock_guard<std::mutex> lock(mu_);
    signatures_[devnode] = std::move(sig);
  }
  void fail(const std::string& devnode, absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    errors_[devnode] = std::move(status);
  }
  std::vector<std::string> probed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return probed_;
  }

  // os::SignatureProber
  absl::StatusOr<os::DeviceSignatures> probe(const std::string& devnode) override {
    std::lock_guard<std::mutex> lock(mu_);
    probed_.push_back(devnode);
    if (auto it = errors_.find(devnode); it != errors_.end()) {
      return it->second;
    }
    if (auto it = signatures_.find(devnode); it != signatures_.end()) {
      return it->second;
    }
    return os::DeviceSignatures{};
  }

private:
  mutable std::mutex mu_;
  std::map<std::string, os::DeviceSignatures> signatures_;
  std::map<std::string, absl::Status> errors_;
  std::vector<std::string> probed_;
};

}  // namespace carina::test
