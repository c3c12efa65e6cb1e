#include "agent/os/linux/device_use.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <memory>
#include <sstream>
#include <string_view>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "agent/core/mountinfo.h"
#include "agent/core/status.h"
#include "agent/os/linux/sysfs.h"

namespace carina::os {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

std::string devNumber(dev_t dev) {
  return std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Filesystems where stat() of a mount point may block on the network: never touched.
bool remoteFs(std::string_view fs) {
  for (std::string_view p : {"nfs", "cifs", "smb", "fuse", "ceph", "9p", "glusterfs", "lustre"}) {
    if (startsWith(fs, p)) {
      return true;
    }
  }
  return false;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/** A filesystem of the device mounted, or the device node bind-mounted, in our namespace. */
std::string mountedHere(dev_t dev) {
  for (const auto& m : core::parseMountInfo(readFile("/proc/self/mountinfo"))) {
    if (m.major == major(dev) && m.minor == minor(dev)) {
      return "mounted at " + m.mount_point;
    }
    // A bind mount of a file has the file as its root; a device node bind-mounted there (CSI
    // raw block publish) shows up only through stat() of the mount point.
    if (m.root != "/" && !remoteFs(m.fs_type)) {
      struct stat st {};
      if (stat(m.mount_point.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == dev) {
        return "device node bind-mounted at " + m.mount_point;
      }
    }
  }
  return "";
}

/** A process holding the device open (any mount namespace: /proc/<pid>/fd links lead to the
 *  inode, whatever path the process used). */
std::string openByProcess(dev_t dev) {
  DirPtr proc(opendir("/proc"));
  if (!proc) {
    return "";
  }
  while (dirent* e = readdir(proc.get())) {
    std::string_view pid = e->d_name;
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string_view::npos) {
      continue;
    }
    std::string fd_dir = "/proc/" + std::string(pid) + "/fd";
    DirPtr fds(opendir(fd_dir.c_str()));
    if (!fds) {
      continue;  // gone, or not ours to read
    }
    while (dirent* f = readdir(fds.get())) {
      if (f->d_name[0] == '.') {
        continue;
      }
      // Skip sockets, pipes and anonymous inodes without stat()ing them; only paths remain.
      char target[256];
      ssize_t n = readlinkat(dirfd(fds.get()), f->d_name, target, sizeof(target) - 1);
      if (n <= 0 || target[0] != '/') {
        continue;
      }
      struct stat st {};
      if (fstatat(dirfd(fds.get()), f->d_name, &st, 0) == 0 && S_ISBLK(st.st_mode) &&
          st.st_rdev == dev) {
        std::string comm = readFile("/proc/" + std::string(pid) + "/comm");
        while (!comm.empty() && comm.back() == '\n') {
          comm.pop_back();
        }
        return "open by pid " + std::string(pid) + (comm.empty() ? "" : " (" + comm + ")");
      }
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<DeviceUse> checkBlockDeviceUse(const std::string& devnode) {
  if (devnode.empty()) {
    return absl::InvalidArgumentError("device path is empty");
  }
  struct stat st {};
  if (stat(devnode.c_str(), &st) != 0) {
    int err = errno;
    return errnoStatus(
        err == ENOENT || err == ENOTDIR ? absl::StatusCode::kNotFound : absl::StatusCode::kInternal,
        "stat " + devnode, err);
  }
  if (!S_ISBLK(st.st_mode)) {
    return absl::InvalidArgumentError(devnode + " is not a block device");
  }
  const dev_t dev = st.st_rdev;
  const std::string sys_dir = sysRoot() + "/dev/block/" + devNumber(dev);

  // 1. Holders (device-mapper, md, bcache stacked on it).
  auto holders = listDir(sys_dir + "/holders");
  if (holders.ok() && !holders->empty()) {
    std::string names;
    for (const auto& h : *holders) {
      names += (names.empty() ? "" : ",") + h;
    }
    return DeviceUse{true, "holders: " + names};
  }
  if (!holders.ok() && holders.status().code() == absl::StatusCode::kNotFound &&
      !listDir(sys_dir).ok()) {
    // The node exists but the kernel has no such device: a stale node of a removed device.
    return absl::NotFoundError("block device " + devnode + " (" + devNumber(dev) +
                               ") does not exist in sysfs");
  }

  // 2. Mounts visible in our namespace (the best reason for a log line).
  if (std::string where = mountedHere(dev); !where.empty()) {
    return DeviceUse{true, where};
  }

  // 3. An exclusive claim: mounted in another namespace, or claimed by the kernel.
  int fd = open(devnode.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    if (err == EBUSY) {
      return DeviceUse{true, "claimed exclusively (mounted in another mount namespace, or held)"};
    }
    if (err == ENOENT || err == ENXIO || err == ENODEV) {
      return errnoStatus(absl::StatusCode::kNotFound, "open " + devnode, err);
    }
    return errnoStatus("open " + devnode + " O_EXCL", err);
  }
  close(fd);

  // 4. Open by some process.
  if (std::string who = openByProcess(dev); !who.empty()) {
    return DeviceUse{true, who};
  }
  return DeviceUse{false, ""};
}

absl::StatusOr<bool> blockDeviceInUse(const std::string& devnode) {
  CARINA_ASSIGN_OR_RETURN(DeviceUse use, checkBlockDeviceUse(devnode));
  return use.in_use;
}

}  // namespace carina::os
