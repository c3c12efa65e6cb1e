#include "tests/support/loop_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/mount.h>
#include <vector>

#include "tests/support/test_support.h"

namespace carina::test {
namespace {

// Mount points whose source is @p devnode or one of its partitions (devnode + "pN").
std::vector<std::string> mountsOf(const std::string& devnode) {
  std::vector<std::string> result;
  std::ifstream in("/proc/self/mounts");
  std::string source, target, rest;
  while (in >> source >> target && std::getline(in, rest)) {
    if (source == devnode ||
        (source.rfind(devnode + "p", 0) == 0 && source.size() > devnode.size() + 1)) {
      result.push_back(target);
    }
  }
  return result;
}

}  // namespace

LoopDevice::LoopDevice(uint64_t size_bytes, uint32_t sector_size) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/carina-loop-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  dir_ = buf.data();
  file_ = dir_ + "/disk.img";
  int fd = ::open(file_.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(size_bytes)) != 0) {
    if (fd >= 0) {
      ::close(fd);
    }
    std::filesystem::remove_all(dir_);
    throw std::runtime_error("cannot create backing file " + file_);
  }
  ::close(fd);
  CommandResult r =
      run({"losetup", "-f", "--show", "--sector-size", std::to_string(sector_size), file_});
  if (r.exit_code != 0) {
    std::filesystem::remove_all(dir_);
    throw std::runtime_error("losetup failed: " + r.output);
  }
  devnode_ = r.output.substr(0, r.output.find('\n'));
  attached_ = true;
  // A loop device detached while still busy can keep kernel partitions (BLKPG entries) that
  // survive into its next attachment. The device is ours now: start from a clean kernel view.
  dropKernelPartitions();
}

void LoopDevice::dropKernelPartitions() { run({"partx", "-d", devnode_}); }

void LoopDevice::detach() {
  if (!attached_) {
    return;
  }
  for (const std::string& target : mountsOf(devnode_)) {
    if (umount2(target.c_str(), 0) != 0) {
      umount2(target.c_str(), MNT_DETACH);
    }
  }
  dropKernelPartitions();
  // Detach by name; retry briefly, a just-unmounted device can still be busy.
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (run({"losetup", "-d", devnode_}).exit_code == 0) {
      break;
    }
    usleep(100 * 1000);
  }
  attached_ = false;
}

LoopDevice::~LoopDevice() {
  detach();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string LoopDevice::readBytes(uint64_t offset, uint64_t length) const {
  std::ifstream in(file_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string data(length, '\0');
  in.read(data.data(), static_cast<std::streamsize>(length));
  data.resize(static_cast<std::size_t>(in.gcount()));
  return data;
}

}  // namespace carina::test
