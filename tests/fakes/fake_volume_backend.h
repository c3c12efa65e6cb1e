#pragma once

// In-memory VolumeBackend for unit and CSI integration tests. Groups have a capacity; volumes
// take space from it. Devices are handed out from a queue (integration tests push real loop
// devices) or synthesized as "/dev/fake-<id>". Thread-safe, like the real engines.

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agent/core/constants.h"
#include "agent/storage/volume_backend.h"

namespace carina::test {

class FakeVolumeBackend : public storage::VolumeBackend {
public:
  struct GroupSpec {
    std::string name;
    uint64_t capacity_bytes = 0;
  };

  explicit FakeVolumeBackend(std::vector<GroupSpec> groups = {{"default", 100 * kGiB}}) {
    for (auto& g : groups) {
      groups_[g.name] = GroupState{g.capacity_bytes, 0};
    }
  }

  /** The next created volume gets @p device (FIFO). */
  void pushDevice(const std::string& device) {
    std::lock_guard<std::mutex> lock(mu_);
    devices_.push_back(device);
  }
  /** Called (under no lock) after a volume grew, e.g. to grow a loop device's backing file. */
  void setOnExpand(std::function<void(const storage::Volume&)> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    on_expand_ = std::move(fn);
  }
  /** Called (under no lock) at the start of createVolume: tests block here to hold a call. */
  void setCreateHook(std::function<void(const storage::VolumeSpec&)> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    create_hook_ = std::move(fn);
  }
  /** The next call of any mutating method returns @p status instead. */
  void failNext(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_next_ = std::move(status);
  }
  size_t createCalls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return create_calls_;
  }

  // storage::VolumeBackend
  absl::StatusOr<storage::Volume> createVolume(const storage::VolumeSpec& spec) override {
    std::function<void(const storage::VolumeSpec&)> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hook = create_hook_;
    }
    if (hook) {
      hook(spec);
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++create_calls_;
    if (!fail_next_.ok()) {
      return std::exchange(fail_next_, absl::OkStatus());
    }
    if (spec.name.empty()) {
      return absl::InvalidArgumentError("volume name is empty");
    }
    if (spec.limit_bytes != 0 && spec.required_bytes > spec.limit_bytes) {
      return absl::OutOfRangeError("required bytes exceed the limit");
    }
    std::string group = spec.group;
    if (group.empty()) {
      if (groups_.size() != 1) {
        return absl::InvalidArgumentError("no disk group named and the node has " +
                                          std::to_string(groups_.size()) + " groups");
      }
      group = groups_.begin()->first;
    }
    auto git = groups_.find(group);
    if (git == groups_.end()) {
      return absl::InvalidArgumentError("unknown disk group \"" + group + "\"");
    }
    const std::string id = storage::volumeIdForName(spec.name);
    const uint64_t size = (spec.required_bytes + kMiB - 1) / kMiB * kMiB;
    if (auto it = volumes_.find(id); it != volumes_.end()) {
      const auto& v = it->second;
      if (v.group == group && v.exclusive == spec.exclusive &&
          v.size_bytes >= spec.required_bytes &&
          (spec.limit_bytes == 0 || v.size_bytes <= spec.limit_bytes)) {
        return v;
      }
      return absl::AlreadyExistsError("volume " + spec.name + " exists with other parameters");
    }
    if (git->second.used + size > git->second.capacity) {
      return absl::ResourceExhaustedError("not enough space in group " + group);
    }
    storage::Volume v;
    v.id = id;
    v.group = group;
    v.disk = "fake";
    if (!devices_.empty()) {
      v.device = devices_.front();
      devices_.pop_front();
    } else {
      v.device = "/dev/fake-" + id;
    }
    v.size_bytes = size;
    v.max_bytes = git->second.capacity - git->second.used;
    v.exclusive = spec.exclusive;
    git->second.used += size;
    volumes_[id] = v;
    return v;
  }

  absl::Status deleteVolume(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_next_.ok()) {
      return std::exchange(fail_next_, absl::OkStatus());
    }
    auto it = volumes_.find(id);
    if (it == volumes_.end()) {
      return absl::OkStatus();
    }
    groups_[it->second.group].used -= it->second.size_bytes;
    volumes_.erase(it);
    return absl::OkStatus();
  }

  absl::StatusOr<storage::Volume> expandVolume(const std::string& id, uint64_t new_bytes) override {
    std::function<void(const storage::Volume&)> hook;
    storage::Volume result;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!fail_next_.ok()) {
        return std::exchange(fail_next_, absl::OkStatus());
      }
      auto it = volumes_.find(id);
      if (it == volumes_.end()) {
        return absl::NotFoundError("volume " + id + " not found");
      }
      auto& v = it->second;
      const uint64_t size = (new_bytes + kMiB - 1) / kMiB * kMiB;
      if (size <= v.size_bytes) {
        return v;
      }
      auto& g = groups_[v.group];
      if (g.used + (size - v.size_bytes) > g.capacity) {
        return absl::ResourceExhaustedError("not enough space to grow " + id);
      }
      g.used += size - v.size_bytes;
      v.size_bytes = size;
      result = v;
      hook = on_expand_;
    }
    if (hook) {
      hook(result);
    }
    return result;
  }

  std::optional<storage::Volume> findVolume(const std::string& id) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = volumes_.find(id);
    if (it == volumes_.end()) {
      return std::nullopt;
    }
    return it->second;
  }

  std::vector<storage::Volume> listVolumes() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<storage::Volume> out;
    for (const auto& [id, v] : volumes_) {
      out.push_back(v);
    }
    return out;
  }

  storage::InventorySnapshot snapshot() override {
    std::lock_guard<std::mutex> lock(mu_);
    storage::InventorySnapshot snap;
    for (const auto& [name, g] : groups_) {
      storage::GroupSnapshot gs;
      gs.name = name;
      gs.total_bytes = g.capacity;
      gs.free_bytes = g.capacity - g.used;
      gs.largest_allocatable_bytes = gs.free_bytes;
      gs.empty_disks = g.used == 0 ? 1 : 0;
      storage::DiskSnapshot disk;
      disk.info.name = "fake-" + name;
      disk.info.group = name;
      disk.info.size_bytes = g.capacity;
      disk.info.eligible = true;
      disk.space.name = disk.info.name;
      disk.space.size_bytes = g.capacity;
      disk.largest_free_bytes = gs.free_bytes;
      gs.disks.push_back(disk);
      snap.groups.push_back(gs);
    }
    return snap;
  }

private:
  struct GroupState {
    uint64_t capacity = 0;
    uint64_t used = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, GroupState> groups_;
  std::map<std::string, storage::Volume> volumes_;
  std::deque<std::string> devices_;
  std::function<void(const storage::Volume&)> on_expand_;
  std::function<void(const storage::VolumeSpec&)> create_hook_;
  absl::Status fail_next_;
  size_t create_calls_ = 0;
};

}  // namespace carina::test
