#include "agent/os/linux/linux_mounter.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <linux/fs.h>
#include <sstream>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <utility>

#include "agent/core/mountinfo.h"
#include "agent/core/status.h"

namespace carina::os {
namespace {

struct FlagName {
  std::string_view name;
  unsigned long set;
  unsigned long clear;
};

constexpr FlagName kFlags[] = {
    {"ro", MS_RDONLY, 0},
    {"rw", 0, MS_RDONLY},
    {"noatime", MS_NOATIME, 0},
    {"atime", 0, MS_NOATIME},
    {"nodiratime", MS_NODIRATIME, 0},
    {"diratime", 0, MS_NODIRATIME},
    {"relatime", MS_RELATIME, 0},
    {"norelatime", 0, MS_RELATIME},
    {"strictatime", MS_STRICTATIME, 0},
    {"lazytime", MS_LAZYTIME, 0},
    {"nodev", MS_NODEV, 0},
    {"dev", 0, MS_NODEV},
    {"nosuid", MS_NOSUID, 0},
    {"suid", 0, MS_NOSUID},
    {"noexec", MS_NOEXEC, 0},
    {"exec", 0, MS_NOEXEC},
    {"sync", MS_SYNCHRONOUS, 0},
    {"async", 0, MS_SYNCHRONOUS},
    {"dirsync", MS_DIRSYNC, 0},
    {"defaults", 0, 0},
};

constexpr std::string_view kForbidden[] = {"bind",   "rbind",   "remount",    "move",
                                           "shared", "rshared", "private",    "rprivate",
                                           "slave",  "rslave",  "unbindable", "runbindable"};

std::optional<dev_t> deviceNumber(const std::string& device) {
  struct stat st {};
  if (::stat(device.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) {
    return std::nullopt;
  }
  return st.st_rdev;
}

bool hasOption(const std::string& options, std::string_view opt) {
  std::string_view rest(options);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    if (rest.substr(0, comma) == opt) {
      return true;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(comma + 1);
  }
  return false;
}

MountPoint toMountPoint(const core::MountEntry& e) {
  MountPoint m;
  m.path = e.mount_point;
  m.fs_type = e.fs_type;
  m.readonly = hasOption(e.options, "ro");
  if (e.fs_type == "devtmpfs" && e.root != "/") {
    // A device node bound onto a file: the "root" is the node's path inside /dev.
    m.device = "/dev" + e.root;
    m.device_node = true;
  } else {
    m.device = e.source;
  }
  return m;
}

}  // namespace

absl::Status splitMountOptions(const std::vector<std::string>& options, unsigned long& flags,
                               std::string& data) {
  flags = 0;
  data.clear();
  for (const auto& opt : options) {
    if (opt.empty() || opt.find_first_of(", \t\n\"'") != std::string::npos) {
      return absl::InvalidArgumentError("invalid mount option \"" + opt + "\"");
    }
    for (auto f : kForbidden) {
      if (opt == f) {
        return absl::InvalidArgumentError("mount option \"" + opt + "\" is not allowed");
      }
    }
    bool known = false;
    for (const auto& f : kFlags) {
      if (opt == f.name) {
        flags = (flags | f.set) & ~f.clear;
        known = true;
        break;
      }
    }
    if (!known) {
      if (!data.empty()) {
        data += ',';
      }
      data += opt;
    }
  }
  return absl::OkStatus();
}

LinuxMounter::LinuxMounter(std::string mountinfo_path)
    : mountinfo_path_(std::move(mountinfo_path)) {}

absl::Status LinuxMounter::mount(const std::string& device, const std::string& target,
                                 const std::string& fs_type,
                                 const std::vector<std::string>& options) {
  unsigned long flags = 0;
  std::string data;
  CARINA_RETURN_IF_ERROR(splitMountOptions(options, flags, data));
  if (::mount(device.c_str(), target.c_str(), fs_type.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) != 0) {
    const int err = errno;
    return errnoStatus("mount " + device + " -> " + target + " (" + fs_type + ")", err);
  }
  return absl::OkStatus();
}

absl::Status LinuxMounter::bindMount(const std::string& source, const std::string& target,
                                     bool readonly) {
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    const int err = errno;
    return errnoStatus("bind mount " + source + " -> " + target, err);
  }
  if (readonly) {
    // A bind mount ignores MS_RDONLY on creation; it takes effect only on a remount.
    if (::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
      const int err = errno;
      ::umount2(target.c_str(), 0);
      return errnoStatus("remount read-only " + target, err);
    }
  }
  return absl::OkStatus();
}

absl::Status LinuxMounter::unmount(const std::string& target) {
  CARINA_ASSIGN_OR_RETURN(auto mounted, findMount(target));
  if (!mounted) {
    return absl::OkStatus();
  }
  if (::umount2(target.c_str(), UMOUNT_NOFOLLOW) != 0) {
    const int err = errno;
    if (err == EINVAL || err == ENOENT) {
      return absl::OkStatus();  // raced with another unmount: gone is what we want
    }
    return errnoStatus("unmount " + target, err);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<MountPoint>> LinuxMounter::findMount(const std::string& path) {
  std::ifstream in(mountinfo_path_);
  if (!in) {
    return absl::InternalError("cannot read " + mountinfo_path_);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::optional<MountPoint> found;
  for (const auto& e : core::parseMountInfo(ss.str())) {
    if (e.mount_point == path) {
      found = toMountPoint(e);  // the last one is the topmost
    }
  }
  return found;
}

absl::StatusOr<std::vector<MountPoint>> LinuxMounter::mountsOfDevice(const std::string& device) {
  std::vector<MountPoint> out;
  const auto rdev = deviceNumber(device);
  if (!rdev) {
    return out;
  }
  std::ifstream in(mountinfo_path_);
  if (!in) {
    return absl::InternalError("cannot read " + mountinfo_path_);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  for (const auto& e : core::parseMountInfo(ss.str())) {
    MountPoint m = toMountPoint(e);
    if (e.major == major(*rdev) && e.minor == minor(*rdev) && !m.device_node) {
      m.device = device;
      out.push_back(std::move(m));
    } else if (m.device_node) {
      const auto node = deviceNumber(m.device);
      if (node && *node == *rdev) {
        out.push_back(std::move(m));
      }
    }
  }
  return out;
}

absl::StatusOr<FsStats> LinuxMounter::statFs(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) {
    const int err = errno;
    return errnoStatus("statvfs " + path, err);
  }
  FsStats s;
  const uint64_t frsize = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
  s.total_bytes = st.f_blocks * frsize;
  s.available_bytes = st.f_bavail * frsize;
  s.used_bytes = (st.f_blocks - st.f_bfree) * frsize;
  s.total_inodes = st.f_files;
  s.free_inodes = st.f_ffree;
  s.used_inodes = st.f_files - st.f_ffree;
  return s;
}

bool LinuxMounter::isBlockDevice(const std::string& device) {
  return deviceNumber(device).has_value();
}

absl::StatusOr<uint64_t> LinuxMounter::blockDeviceSize(const std::string& device) {
  struct stat st {};
  if (::stat(device.c_str(), &st) != 0) {
    const int err = errno;
    return errnoStatus("stat " + device, err);
  }
  if (!S_ISBLK(st.st_mode)) {
    return absl::InvalidArgumentError(device + " is not a block device");
  }
  const int fd = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return errnoStatus("open " + device, err);
  }
  uint64_t size = 0;
  const int rc = ::ioctl(fd, BLKGETSIZE64, &size);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    return errnoStatus("BLKGETSIZE64 " + device, err);
  }
  return size;
}

}  // namespace carina::os
