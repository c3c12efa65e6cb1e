// SpawnCommandRunner and LinuxMounter against the real system.

#include <filesystem>
#include <fstream>
#include <sys/mount.h>

#include <catch2/catch.hpp>

#include "agent/os/linux/linux_mounter.h"
#include "agent/os/linux/spawn_command_runner.h"
#include "tests/support/test_support.h"

namespace carina::os {
namespace {

using namespace std::chrono_literals;

TEST_CASE("SpawnCommandRunner captures stdout, stderr and the exit code", "[integration][csi]") {
  SpawnCommandRunner runner;
  auto r = runner.run({"sh", "-c", "echo out; echo err >&2; exit 3"}, 30s);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 3);
  CHECK(r->stdout_text == "out\n");
  CHECK(r->stderr_text == "err\n");
  CHECK_FALSE(r->ok());
  auto env = runner.run({"sh", "-c", "echo $LC_ALL"}, 30s);
  REQUIRE(env.ok());
  CHECK(env->stdout_text == "C\n");
  auto in = runner.run({"cat"}, 30s);  // stdin is /dev/null: cat ends at once
  REQUIRE(in.ok());
  CHECK(in->exit_code == 0);
  CHECK(in->stdout_text.empty());
}

TEST_CASE("SpawnCommandRunner errors: empty argv, missing program, timeout", "[integration][csi]") {
  SpawnCommandRunner runner;
  CHECK(runner.run({}, 1s).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(runner.run({"carina-no-such-program-xyz"}, 1s).status().code() ==
        absl::StatusCode::kNotFound);
  // The child and its own child are killed at the deadline (sleep 600 would outlive the test).
  auto r = runner.run({"sh", "-c", "sleep 600 & sleep 600"}, 300ms);
  CHECK(r.status().code() == absl::StatusCode::kDeadlineExceeded);
  // A child that closes its output but keeps running is still bounded.
  auto quiet = runner.run({"sh", "-c", "exec >/dev/null 2>&1; sleep 600"}, 300ms);
  CHECK(quiet.status().code() == absl::StatusCode::kDeadlineExceeded);
}

TEST_CASE("SpawnCommandRunner with a prefix", "[integration][csi]") {
  SpawnCommandRunner runner({"env", "CARINA_X=1"});
  auto r = runner.run({"sh", "-c", "echo $CARINA_X"}, 30s);
  REQUIRE(r.ok());
  CHECK(r->stdout_text == "1\n");
}

TEST_CASE("splitMountOptions", "[integration][csi]") {
  unsigned long flags = 0;
  std::string data;
  REQUIRE(splitMountOptions({"ro", "noatime", "discard", "nouuid"}, flags, data).ok());
  CHECK((flags & MS_RDONLY) != 0);
  CHECK((flags & MS_NOATIME) != 0);
  CHECK(data == "discard,nouuid");
  CHECK(splitMountOptions({"bind"}, flags, data).code() == absl::StatusCode::kInvalidArgument);
  CHECK(splitMountOptions({"a,b"}, flags, data).code() == absl::StatusCode::kInvalidArgument);
  CHECK(splitMountOptions({""}, flags, data).code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("LinuxMounter: tmpfs mount, read-only bind, findMount, unmount",
          "[integration][csi][root]") {
  if (!carina::test::requireRootOrWarn()) {
    return;
  }
  carina::test::TempDir dir;
  LinuxMounter mounter;
  const std::string a = dir.file("a");
  const std::string b = dir.file("b");
  std::filesystem::create_directories(a);
  std::filesystem::create_directories(b);
  auto none = mounter.findMount(a);
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
  REQUIRE(mounter.mount("tmpfs", a, "tmpfs", {"size=1m", "nodev"}).ok());
  auto m = mounter.findMount(a);
  REQUIRE(m.ok());
  REQUIRE(m->has_value());
  CHECK((*m)->fs_type == "tmpfs");
  CHECK_FALSE((*m)->readonly);
  { std::ofstream(a + "/f") << "hello"; }
  REQUIRE(mounter.bindMount(a, b, /*readonly=*/true).ok());
  auto bm = mounter.findMount(b);
  REQUIRE(bm.ok());
  REQUIRE(bm->has_value());
  CHECK((*bm)->readonly);
  CHECK(std::ifstream(b + "/f").good());
  CHECK_FALSE(std::ofstream(b + "/g").good());  // read-only
  auto st = mounter.statFs(a);
  REQUIRE(st.ok());
  CHECK(st->total_bytes > 0);
  REQUIRE(mounter.unmount(b).ok());
  REQUIRE(mounter.unmount(b).ok());  // idempotent
  REQUIRE(mounter.unmount(a).ok());
  CHECK_FALSE(mounter.findMount(a)->has_value());
  CHECK(mounter.mount("tmpfs", dir.file("missing"), "tmpfs", {}).code() ==
        absl::StatusCode::kNotFound);
  CHECK_FALSE(mounter.isBlockDevice(a));
  CHECK(mounter.blockDeviceSize(a).status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(mounter.blockDeviceSize(dir.file("nope")).status().code() == absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace carina::os
