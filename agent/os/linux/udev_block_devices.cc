#include "agent/os/linux/udev_block_devices.h"

#include <libudev.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <utility>

#include "agent/core/log.h"
#include "agent/core/mountinfo.h"
#include "agent/core/status.h"
#include "agent/os/linux/sysfs.h"

namespace carina::os {
namespace {

log::Logger& logger() { return log::get("discovery"); }

// RAII for libudev's reference-counted objects.
struct UdevDeleter {
  void operator()(udev* u) const { udev_unref(u); }
  void operator()(udev_monitor* m) const { udev_monitor_unref(m); }
  void operator()(udev_enumerate* e) const { udev_enumerate_unref(e); }
  void operator()(udev_device* d) const { udev_device_unref(d); }
};
template <class T>
using UdevPtr = std::unique_ptr<T, UdevDeleter>;

std::string str(const char* s) { return s == nullptr ? std::string() : std::string(s); }

uint64_t readU64Or(const std::string& path, uint64_t fallback) {
  auto v = readSysfsU64(path);
  return v.ok() ? *v : fallback;
}

std::vector<std::string> listOrEmpty(const std::string& path) {
  auto v = listDir(path);
  return v.ok() ? *std::move(v) : std::vector<std::string>{};
}

uint64_t devKey(uint32_t major, uint32_t minor) { return (uint64_t{major} << 32) | minor; }

struct Mounts {
  std::map<uint64_t, std::vector<std::string>> by_dev;        // major:minor -> mount points
  std::map<std::string, std::vector<std::string>> by_source;  // "/dev/loop7" -> mount points
};

Mounts readMounts() {
  Mounts m;
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream ss;
  ss << in.rdbuf();
  for (auto& e : core::parseMountInfo(ss.str())) {
    m.by_dev[devKey(e.major, e.minor)].push_back(e.mount_point);
    if (!e.source.empty() && e.source.front() == '/') {
      m.by_source[e.source].push_back(e.mount_point);
    }
  }
  return m;
}

std::vector<std::string> mountsOf(const Mounts& m, uint32_t major, uint32_t minor,
                                  const std::string& devnode) {
  std::vector<std::string> out;
  if (auto it = m.by_dev.find(devKey(major, minor)); it != m.by_dev.end()) {
    out = it->second;
  }
  // Also by source path (major:minor of some filesystems, e.g. btrfs, is anonymous).
  if (auto it = m.by_source.find(devnode); it != m.by_source.end()) {
    for (const auto& p : it->second) {
      bool dup = false;
      for (const auto& q : out) {
        dup = dup || q == p;
      }
      if (!dup) {
        out.push_back(p);
      }
    }
  }
  return out;
}

BlockEventAction parseAction(const char* action) {
  std::string a = str(action);
  if (a == "add") {
    return BlockEventAction::Add;
  }
  if (a == "remove") {
    return BlockEventAction::Remove;
  }
  if (a == "change") {
    return BlockEventAction::Change;
  }
  return BlockEventAction::Other;
}

class UdevBlockDeviceSource final : public BlockDeviceSource {
public:
  UdevBlockDeviceSource() = default;
  ~UdevBlockDeviceSource() override {
    if (epoll_fd_ >= 0) {
      close(epoll_fd_);
    }
  }
  UdevBlockDeviceSource(const UdevBlockDeviceSource&) = delete;
  UdevBlockDeviceSource& operator=(const UdevBlockDeviceSource&) = delete;

  // BlockDeviceSource
  absl::Status startMonitor() override {
    if (epoll_fd_ >= 0) {
      return absl::OkStatus();
    }
    udev_.reset(udev_new());
    if (!udev_) {
      return errnoStatus(absl::StatusCode::kUnavailable, "udev_new", errno);
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
      return errnoStatus(absl::StatusCode::kUnavailable, "epoll_create1", errno);
    }
    std::vector<const char*> sources = {"kernel"};
    struct stat st {};
    if (stat("/run/udev/control", &st) == 0) {
      sources.push_back("udev");  // udevd runs: also take its (processed) events
    }
    for (const char* source : sources) {
      UdevPtr<udev_monitor> mon(udev_monitor_new_from_netlink(udev_.get(), source));
      if (!mon) {
        CARINA_LOG_WARN(logger(), "udev monitor unavailable", {{"source", source}});
        continue;
      }
      udev_monitor_filter_add_match_subsystem_devtype(mon.get(), "block", nullptr);
      // Bursts (many partitions, many loop devices) must not overflow the socket. Best effort.
      udev_monitor_set_receive_buffer_size(mon.get(), 4 * 1024 * 1024);
      if (udev_monitor_enable_receiving(mon.get()) < 0) {
        CARINA_LOG_WARN(logger(), "udev monitor cannot receive", {{"source", source}});
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(monitors_.size());
      if (epoll_ctl(ep, EPOLL_CTL_ADD, udev_monitor_get_fd(mon.get()), &ev) != 0) {
        continue;
      }
      monitors_.push_back(std::move(mon));
    }
    if (monitors_.empty()) {
      close(ep);
      return absl::UnavailableError("no udev monitor could be opened");
    }
    epoll_fd_ = ep;
    return absl::OkStatus();
  }

  int monitorFd() const override { return epoll_fd_; }

  std::vector<BlockDeviceEvent> drainEvents() override {
    std::vector<BlockDeviceEvent> events;
    for (auto& mon : monitors_) {
      // The monitor socket is non-blocking: receive returns nullptr when nothing is queued.
      for (int i = 0; i < 4096; ++i) {
        UdevPtr<udev_device> dev(udev_monitor_receive_device(mon.get()));
        if (!dev) {
          break;
        }
        BlockDeviceEvent ev;
        ev.action = parseAction(udev_device_get_action(dev.get()));
        ev.name = str(udev_device_get_sysname(dev.get()));
        ev.partition = str(udev_device_get_devtype(dev.get())) == "partition";
        events.push_back(std::move(ev));
      }
    }
    return events;
  }

  absl::StatusOr<std::vector<BlockDeviceFacts>> enumerate() override {
    // A context of its own: libudev objects are not thread-safe, and this runs on a pool thread.
    UdevPtr<udev> u(udev_new());
    if (!u) {
      return errnoStatus(absl::StatusCode::kUnavailable, "udev_new", errno);
    }
    UdevPtr<udev_enumerate> en(udev_enumerate_new(u.get()));
    if (!en) {
      return errnoStatus(absl::StatusCode::kInternal, "udev_enumerate_new", errno);
    }
    udev_enumerate_add_match_subsystem(en.get(), "block");
    if (int rc = udev_enumerate_scan_devices(en.get()); rc < 0) {
      return errnoStatus(absl::StatusCode::kUnavailable, "udev_enumerate_scan_devices", -rc);
    }
    Mounts mounts = readMounts();
    std::vector<BlockDeviceFacts> disks;
    std::map<std::string, size_t> disk_index;  // syspath -> index in disks
    struct Part {
      std::string parent_syspath;
      KernelPartition part;
    };
    std::vector<Part> parts;

    udev_list_entry* entry = nullptr;
    udev_list_entry_foreach(entry, udev_enumerate_get_list_entry(en.get())) {
      const char* syspath = udev_list_entry_get_name(entry);
      UdevPtr<udev_device> dev(udev_device_new_from_syspath(u.get(), syspath));
      if (!dev) {
        continue;  // vanished in between
      }
      std::string sp = str(udev_device_get_syspath(dev.get()));
      std::string devtype = str(udev_device_get_devtype(dev.get()));
      dev_t devnum = udev_device_get_devnum(dev.get());
      uint32_t maj = major(devnum);
      uint32_t min = minor(devnum);
      std::string name = str(udev_device_get_sysname(dev.get()));
      if (devtype == "partition") {
        KernelPartition p;
        p.name = name;
        p.number = static_cast<uint32_t>(readU64Or(sp + "/partition", 0));
        p.major = maj;
        p.minor = min;
        p.start_bytes = readU64Or(sp + "/start", 0) * 512;
        p.size_bytes = readU64Or(sp + "/size", 0) * 512;
        p.holders = listOrEmpty(sp + "/holders");
        std::string node = str(udev_device_get_devnode(dev.get()));
        p.mount_points = mountsOf(mounts, maj, min, node.empty() ? "/dev/" + name : node);
        udev_device* parent = udev_device_get_parent(dev.get());  // borrowed reference
        parts.push_back(
            {parent != nullptr ? str(udev_device_get_syspath(parent)) : "", std::move(p)});
        continue;
      }
      if (devtype != "disk") {
        continue;
      }
      BlockDeviceFacts d;
      d.name = name;
      d.devnode = str(udev_device_get_devnode(dev.get()));
      if (d.devnode.empty()) {
        d.devnode = "/dev/" + name;
      }
      d.major = maj;
      d.minor = min;
      d.size_bytes = readU64Or(sp + "/size", 0) * 512;
      d.logical_sector_size =
          static_cast<uint32_t>(readU64Or(sp + "/queue/logical_block_size", 512));
      d.read_only = readU64Or(sp + "/ro", 0) != 0;
      d.removable = readU64Or(sp + "/removable", 0) != 0;
      d.holders = listOrEmpty(sp + "/holders");
      d.mount_points = mountsOf(mounts, maj, min, d.devnode);
      disk_index[sp] = disks.size();
      disks.push_back(std::move(d));
    }
    for (auto& p : parts) {
      if (auto it = disk_index.find(p.parent_syspath); it != disk_index.end()) {
        disks[it->second].partitions.push_back(std::move(p.part));
      }
    }
    return disks;
  }

private:
  UdevPtr<udev> udev_;
  std::vector<UdevPtr<udev_monitor>> monitors_;
  int epoll_fd_ = -1;
};

}  // namespace

BlockDeviceSourcePtr makeUdevBlockDeviceSource() {
  return std::make_unique<UdevBlockDeviceSource>();
}

}  // namespace carina::os
