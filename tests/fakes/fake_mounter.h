#pragma once

// In-memory Mounter for unit tests: a mount table keyed by mount point, a set of fake block
// devices, canned statvfs numbers. Targets must exist on the real filesystem (tests use a
// TempDir as the kubelet dir), so the node service's own mkdir/rmdir logic is exercised.
// failAt(n) makes the n-th mutating call (mount, bindMount, unmount; 0-based from the failAt
// call) fail with Internal.

#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agent/os/mounter.h"

namespace carina::test {

class FakeMounter : public os::Mounter {
public:
  void addDevice(const std::string& device, uint64_t size_bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    devices_[device] = size_bytes;
  }
  void removeDevice(const std::string& device) {
    std::lock_guard<std::mutex> lock(mu_);
    devices_.erase(device);
  }
  void setDeviceSize(const std::string& device, uint64_t size_bytes) {
    addDevice(device, size_bytes);
  }
  void setStats(os::FsStats stats) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_ = stats;
  }
  void failAt(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_at_ = n;
    counter_ = 0;
  }
  std::map<std::string, os::MountPoint> mounts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return mounts_;
  }
  std::vector<std::string> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

  // os::Mounter
  absl::Status mount(const std::string& device, const std::string& target,
                     const std::string& fs_type, const std::vector<std::string>& options) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("mount " + device + " " + target);
    if (injectFailure()) {
      return absl::InternalError("mount " + device + " -> " + target + ": injected failure");
    }
    if (devices_.count(device) == 0) {
      return absl::NotFoundError("mount " + device + ": ENOENT (no such device)");
    }
    if (!std::filesystem::is_directory(target)) {
      return absl::NotFoundError("mount -> " + target + ": ENOENT (no such directory)");
    }
    os::MountPoint m;
    m.path = target;
    m.device = device;
    m.fs_type = fs_type;
    for (const auto& o : options) {
      if (o == "ro") {
        m.readonly = true;
      }
      if (o == "bind" || o.find(',') != std::string::npos) {
        return absl::InvalidArgumentError("invalid mount option \"" + o + "\"");
      }
    }
    mounts_[target] = m;
    return absl::OkStatus();
  }
  absl::Status bindMount(const std::string& source, const std::string& target,
                         bool readonly) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("bind " + source + " " + target);
    if (injectFailure()) {
      return absl::InternalError("bind mount " + source + " -> " + target + ": injected failure");
    }
    if (!std::filesystem::exists(target)) {
      return absl::NotFoundError("bind mount -> " + target + ": ENOENT");
    }
    os::MountPoint m;
    if (auto it = mounts_.find(source); it != mounts_.end()) {
      m = it->second;
    } else if (devices_.count(source) != 0) {
      m.device = source;
      m.fs_type = "devtmpfs";
      m.device_node = true;
    } else {
      return absl::NotFoundError("bind mount " + source + ": ENOENT");
    }
    m.path = target;
    m.readonly = readonly;
    mounts_[target] = m;
    return absl::OkStatus();
  }
  absl::Status unmount(const std::string& target) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("unmount " + target);
    if (mounts_.count(target) == 0) {
      return absl::OkStatus();
    }
    if (injectFailure()) {
      return absl::InternalError("unmount " + target + ": injected failure");
    }
    mounts_.erase(target);
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<os::MountPoint>> findMount(const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = mounts_.find(path);
    if (it == mounts_.end()) {
      return std::optional<os::MountPoint>();
    }
    return std::optional<os::MountPoint>(it->second);
  }
  absl::StatusOr<std::vector<os::MountPoint>> mountsOfDevice(const std::string& device) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<os::MountPoint> out;
    for (const auto& [path, m] : mounts_) {
      if (m.device == device) {
        out.push_back(m);
      }
    }
    return out;
  }
  absl::StatusOr<os::FsStats> statFs(const std::string& path) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!std::filesystem::exists(path)) {
      return absl::NotFoundError("statvfs " + path + ": ENOENT");
    }
    return stats_;
  }
  bool isBlockDevice(const std::string& device) override {
    std::lock_guard<std::mutex> lock(mu_);
    return devices_.count(device) != 0;
  }
  absl::StatusOr<uint64_t> blockDeviceSize(const std::string& device) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = devices_.find(device);
    if (it == devices_.end()) {
      return absl::NotFoundError("stat " + device + ": ENOENT");
    }
    return it->second;
  }

private:
  bool injectFailure() {
    const int index = counter_++;
    return fail_at_ >= 0 && index == fail_at_;
  }

  mutable std::mutex mu_;
  std::map<std::string, uint64_t> devices_;
  std::map<std::string, os::MountPoint> mounts_;
  std::vector<std::string> calls_;
  os::FsStats stats_{
      1000 * 1024 * 1024ULL, 900 * 1024 * 1024ULL, 100 * 1024 * 1024ULL, 65536, 65000, 536};
  int fail_at_ = -1;
  int counter_ = 0;
};

}  // namespace carina::test
