#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <vector>

#include <catch2/catch.hpp>

#include "agent/os/linux/device_use.h"
#include "agent/os/linux/sysfs.h"
#include "tests/support/loop_device.h"
#include "tests/support/test_support.h"

namespace carina::os {
namespace {

void mustRun(const std::vector<std::string>& argv) {
  auto r = test::run(argv);
  INFO(argv[0] << ": " << r.output);
  REQUIRE(r.exit_code == 0);
}

/** A child process, killed (and reaped) on destruction. */
class Child {
public:
  /** Runs argv; waits until the child prints one line on stdout (its "ready"). */
  explicit Child(const std::vector<std::string>& argv) {
    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(fds[1], 1);
      std::vector<char*> args;
      for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));  // NOLINT: execvp's signature
      }
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    char c = 0;
    while (read(fds[0], &c, 1) == 1 && c != '\n') {
      line_.push_back(c);
    }
    close(fds[0]);
  }
  ~Child() {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  const std::string& line() const { return line_; }

private:
  pid_t pid_ = -1;
  std::string line_;
};

TEST_CASE("blockDeviceInUse sees mounts, bind mounts, other namespaces and open fds",
          "[integration][cluster][root]") {
  if (!test::requireRootOrWarn()) {
    return;
  }
  test::LoopDevice dev(64ULL << 20);
  test::TempDir dir;  // destroyed first: everything mounted below it is unmounted
  const std::string& node = dev.devnode();

  auto free = checkBlockDeviceUse(node);
  REQUIRE(free.ok());
  CHECK_FALSE(free->in_use);
  CHECK(blockDeviceInUse(node).value() == false);

  mustRun({"mkfs.ext4", "-q", "-F", node});
  CHECK_FALSE(blockDeviceInUse(node).value());  // a filesystem alone is not a use

  SECTION("a mounted filesystem") {
    std::string mnt = dir.file("mnt");
    mustRun({"mkdir", mnt});
    mustRun({"mount", node, mnt});
    auto use = checkBlockDeviceUse(node);
    REQUIRE(use.ok());
    CHECK(use->in_use);
    CHECK(use->reason == "mounted at " + mnt);
    mustRun({"umount", mnt});
    CHECK_FALSE(blockDeviceInUse(node).value());
  }
  SECTION("the device node bind-mounted (CSI raw block publish)") {
    std::string target = dir.file("block");
    std::ofstream(target).close();
    mustRun({"mount", "--bind", node, target});
    auto use = checkBlockDeviceUse(node);
    REQUIRE(use.ok());
    CHECK(use->in_use);
    CHECK(use->reason == "device node bind-mounted at " + target);
    mustRun({"umount", target});
    CHECK_FALSE(blockDeviceInUse(node).value());
  }
  SECTION("mounted only in another mount namespace") {
    std::string mnt = dir.file("ns");
    mustRun({"mkdir", mnt});
    {
      Child child({"unshare", "--mount", "--propagation", "private", "sh", "-c",
                   "mount " + node + " " + mnt + " && echo ready && exec sleep 600"});
      REQUIRE(child.line() == "ready");
      auto use = checkBlockDeviceUse(node);
      REQUIRE(use.ok());
      CHECK(use->in_use);
      CHECK(use->reason.find("claimed exclusively") == 0);
    }
    // The namespace died with the child, and its mount with it (released asynchronously).
    bool freed = false;
    for (int i = 0; i < 100 && !freed; ++i) {
      freed = !blockDeviceInUse(node).value();
      if (!freed) {
        usleep(50'000);
      }
    }
    CHECK(freed);
  }
  SECTION("open by a process") {
    int fd = open(node.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    auto use = checkBlockDeviceUse(node);
    close(fd);
    REQUIRE(use.ok());
    CHECK(use->in_use);
    CHECK(use->reason.find("open by pid " + std::to_string(getpid())) == 0);
    CHECK_FALSE(blockDeviceInUse(node).value());
  }
  SECTION("holders listed in sysfs (a fake sysfs root: no device-mapper needed)") {
    struct stat st {};
    REQUIRE(stat(node.c_str(), &st) == 0);
    test::TempDir sys;
    struct RestoreSysRoot {
      ~RestoreSysRoot() { setSysRootForTest("/sys"); }
    } restore;
    setSysRootForTest(sys.path());
    std::string dev_dir = sys.path() + "/dev/block/" + std::to_string(major(st.st_rdev)) + ":" +
                          std::to_string(minor(st.st_rdev));
    mustRun({"mkdir", "-p", dev_dir + "/holders/dm-7"});
    auto use = checkBlockDeviceUse(node);
    REQUIRE(use.ok());
    CHECK(use->in_use);
    CHECK(use->reason == "holders: dm-7");
    mustRun({"rmdir", dev_dir + "/holders/dm-7"});
    CHECK_FALSE(blockDeviceInUse(node).value());
    mustRun({"rm", "-r", dev_dir});  // a stale device node: the kernel has no such device
    CHECK(blockDeviceInUse(node).status().code() == absl::StatusCode::kNotFound);
  }
  SECTION("held by a device-mapper device") {
    std::string name = "carina-it-" + std::to_string(getpid());
    auto created = test::run(
        {"dmsetup", "create", "--noudevsync", name, "--table", "0 2048 linear " + node + " 0"});
    if (created.exit_code != 0) {
      WARN("dmsetup unavailable here: " << created.output);
      return;
    }
    auto use = checkBlockDeviceUse(node);
    test::run({"dmsetup", "remove", "--noudevsync", name});
    REQUIRE(use.ok());
    CHECK(use->in_use);
    CHECK(use->reason.find("holders: dm-") == 0);
    CHECK_FALSE(blockDeviceInUse(node).value());
  }
}

TEST_CASE("blockDeviceInUse rejects what is not a block device", "[integration][cluster][root]") {
  if (!test::requireRootOrWarn()) {
    return;
  }
  test::TempDir dir;
  CHECK(blockDeviceInUse(dir.file("missing")).status().code() == absl::StatusCode::kNotFound);
  CHECK(blockDeviceInUse("").status().code() == absl::StatusCode::kInvalidArgument);
  std::ofstream(dir.file("plain")).close();
  CHECK(blockDeviceInUse(dir.file("plain")).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(blockDeviceInUse("/dev/null").status().code() == absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace carina::os
