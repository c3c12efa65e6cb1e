#pragma once

// RAII loop devices for integration tests: a sparse backing file, `losetup -f --show`, and on
// destruction (also when the test failed) every mount of the device or its partitions is
// detached, the device is detached by name and the file removed. Other processes on the machine
// use loop devices too: we only ever touch the device we attached.

#include <cstdint>
#include <string>

namespace carina::test {

class LoopDevice {
public:
  /** Attaches a sparse file of @p size_bytes. @p sector_size 512 or 4096. Throws on failure. */
  explicit LoopDevice(uint64_t size_bytes, uint32_t sector_size = 512);
  ~LoopDevice();
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  /** "/dev/loop7" */
  const std::string& devnode() const { return devnode_; }
  /** "loop7" */
  std::string name() const { return devnode_.substr(5); }
  const std::string& backingFile() const { return file_; }
  /** Detaches now (for hot-unplug tests); the destructor then only removes the file. */
  void detach();
  bool attached() const { return attached_; }

  /** Reads @p length bytes at @p offset straight from the backing file. */
  std::string readBytes(uint64_t offset, uint64_t length) const;

  /** Removes every partition the kernel knows on this device (BLKPG delete, via partx). */
  void dropKernelPartitions();

private:
  std::string dir_;
  std::string file_;
  std::string devnode_;
  bool attached_ = false;
};

}  // namespace carina::test
