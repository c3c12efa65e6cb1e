// partition_bench: create and delete 100 partitions of 64 MiB on a loop disk through the
// PartitionEngine (libfdisk + BLKPG + sysfs verification), and the same through Carina's way
// (`parted -s <dev> mkpart ...` / `parted -s <dev> rm N`, each followed by `partx -a/-d`), in
// the same run on the same device. Prints per-operation medians and the ratio.
//
// Needs root (loop devices). Usage: partition_bench [count=100]

#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <vector>

#include "agent/core/log.h"
#include "agent/os/linux/fdisk_partition_table.h"
#include "agent/storage/partition_engine.h"

extern char** environ;

namespace {

constexpr uint64_t kMiB = 1024ULL * 1024ULL;
using Clock = std::chrono::steady_clock;

/** Runs argv (PATH lookup), output discarded unless @p out; returns the exit code or -1. */
int runCommand(const std::vector<std::string>& argv, std::string* out = nullptr) {
  int pipefd[2] = {-1, -1};
  if (out != nullptr && pipe2(pipefd, O_CLOEXEC) != 0) {
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (out != nullptr) {
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  } else {
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  }
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (out != nullptr) {
    close(pipefd[1]);
    if (rc == 0) {
      char buf[4096];
      ssize_t n = 0;
      while ((n = read(pipefd[0], buf, sizeof buf)) > 0) {
        out->append(buf, static_cast<std::size_t>(n));
      }
    }
    close(pipefd[0]);
  }
  if (rc != 0) {
    return -1;
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
    return -1;
  }
  return WEXITSTATUS(status);
}

/** A sparse file on a loop device; detached by name and removed on destruction. */
class Loop {
public:
  explicit Loop(uint64_t bytes) {
    char tmpl[] = "/tmp/carina-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      return;
    }
    dir_ = tmpl;
    file_ = dir_ + "/disk.img";
    int fd = open(file_.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      if (fd >= 0) {
        close(fd);
      }
      return;
    }
    close(fd);
    std::string out;
    if (runCommand({"losetup", "-f", "--show", file_}, &out) == 0) {
      dev_ = out.substr(0, out.find('\n'));
    }
  }
  ~Loop() {
    if (!dev_.empty()) {
      for (int i = 0; i < 50 && runCommand({"losetup", "-d", dev_}) != 0; ++i) {
        usleep(100 * 1000);
      }
    }
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  const std::string& dev() const { return dev_; }
  std::string name() const { return dev_.substr(dev_.rfind('/') + 1); }

private:
  std::string dir_;
  std::string file_;
  std::string dev_;
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double median(std::vector<double> v) {
  if (v.empty()) {
    return 0;
  }
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/** Kernel partitions of the disk in sysfs. */
int kernelPartitionCount(const std::string& disk) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/class/block/" + disk, ec)) {
    if (std::filesystem::exists(e.path() / "partition")) {
      ++n;
    }
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (geteuid() != 0) {
    std::fprintf(stderr,
                 "partition_bench needs root (it attaches a loop device and partitions it); "
                 "skipped.\n");
    return 77;
  }
  const int count = argc > 1 ? std::atoi(argv[1]) : 100;
  if (count <= 0 || count > 120) {
    std::fprintf(stderr, "usage: partition_bench [count 1..120]\n");
    return 2;
  }
  carina::log::setGlobalLevel(carina::log::Level::Warn);
  const uint64_t part = 64 * kMiB;
  const uint64_t disk_bytes = (static_cast<uint64_t>(count) * 64 + 8) * kMiB;
  Loop loop(disk_bytes);
  if (loop.dev().empty()) {
    std::fprintf(stderr, "cannot attach a loop device\n");
    return 1;
  }
  std::printf("device %s, %d partitions of 64 MiB\n", loop.dev().c_str(), count);

  // --- engine ---
  std::vector<double> e_create;
  std::vector<double> e_delete;
  {
    carina::storage::PartitionEngine engine(carina::os::makeFdiskPartitionTableFactory());
    carina::storage::DiskInfo d;
    d.name = loop.name();
    d.devnode = loop.dev();
    d.group = "bench";
    d.size_bytes = disk_bytes;
    d.eligible = true;
    if (auto st = engine.setDisks({d}); !st.ok()) {
      std::fprintf(stderr, "setDisks: %s\n", st.ToString().c_str());
      return 1;
    }
    std::vector<std::string> ids;
    for (int i = 0; i < count; ++i) {
      carina::storage::VolumeSpec s;
      s.name = "bench-" + std::to_string(i);
      s.required_bytes = part;
      auto t0 = Clock::now();
      auto v = engine.createVolume(s);
      e_create.push_back(ms(Clock::now() - t0));
      if (!v.ok()) {
        std::fprintf(stderr, "engine create %d: %s\n", i, v.status().ToString().c_str());
        return 1;
      }
      ids.push_back(v->id);
    }
    std::printf("engine: %d kernel partitions after creates\n", kernelPartitionCount(loop.name()));
    for (const std::string& id : ids) {
      auto t0 = Clock::now();
      auto st = engine.deleteVolume(id);
      e_delete.push_back(ms(Clock::now() - t0));
      if (!st.ok()) {
        std::fprintf(stderr, "engine delete: %s\n", st.ToString().c_str());
        return 1;
      }
    }
    std::printf("engine: %d kernel partitions after deletes\n", kernelPartitionCount(loop.name()));
  }

  // --- parted + partx (Carina's way) ---
  std::vector<double> p_create;
  std::vector<double> p_delete;
  if (runCommand({"parted", "-s", loop.dev(), "mklabel", "gpt"}) != 0) {
    std::fprintf(stderr, "parted mklabel failed (is parted installed?)\n");
    return 1;
  }
  for (int i = 0; i < count; ++i) {
    const std::string start = std::to_string(1 + 64 * i) + "MiB";
    const std::string end = std::to_string(1 + 64 * (i + 1)) + "MiB";
    auto t0 = Clock::now();
    int rc = runCommand({"parted", "-s", loop.dev(), "unit", "MiB", "mkpart",
                         "bench-" + std::to_string(i), start, end});
    // partx -a fails with "already exists" when parted's own BLKPG add worked; Carina runs it
    // regardless, so it is part of the cost.
    runCommand({"partx", "-a", "--nr", std::to_string(i + 1), loop.dev()});
    p_create.push_back(ms(Clock::now() - t0));
    if (rc != 0) {
      std::fprintf(stderr, "parted mkpart %d failed\n", i);
      return 1;
    }
  }
  std::printf("parted: %d kernel partitions after creates\n", kernelPartitionCount(loop.name()));
  for (int i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    int rc = runCommand({"parted", "-s", loop.dev(), "rm", std::to_string(i + 1)});
    runCommand({"partx", "-d", "--nr", std::to_string(i + 1), loop.dev()});
    p_delete.push_back(ms(Clock::now() - t0));
    if (rc != 0) {
      std::fprintf(stderr, "parted rm %d failed\n", i + 1);
      return 1;
    }
  }
  std::printf("parted: %d kernel partitions after deletes\n", kernelPartitionCount(loop.name()));

  const double ec = median(e_create);
  const double ed = median(e_delete);
  const double pc = median(p_create);
  const double pd = median(p_delete);
  std::printf("\n%-28s %12s %12s\n", "median per operation (ms)", "create", "delete");
  std::printf("%-28s %12.3f %12.3f\n", "engine (libfdisk+BLKPG)", ec, ed);
  std::printf("%-28s %12.3f %12.3f\n", "parted + partx", pc, pd);
  std::printf("%-28s %11.1fx %11.1fx\n", "speedup (parted / engine)", ec > 0 ? pc / ec : 0.0,
              ed > 0 ? pd / ed : 0.0);
  std::printf("target: engine >= 10x faster: %s\n",
              (pc >= 10 * ec && pd >= 10 * ed) ? "met" : "NOT met");
  return 0;
}
