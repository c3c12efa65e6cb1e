#pragma once

// Runs external programs (blkid, mkfs.*, xfs_growfs, resize2fs, lvm) with a bound on their
// running time. The production implementation is os/linux/spawn_command_runner.h; unit tests use
// tests/fakes/fake_command_runner.h.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

namespace carina::os {

/** The outcome of a command that ran to completion (whatever its exit code). */
struct CommandResult {
  int exit_code = 0;        // 0..255; 128+signal when killed by a signal
  std::string stdout_text;  // captured, truncated to kMaxCommandOutput
  std::string stderr_text;  // captured, truncated to kMaxCommandOutput
  bool ok() const { return exit_code == 0; }
};

inline constexpr size_t kMaxCommandOutput = 1024 * 1024;
inline constexpr std::chrono::milliseconds kDefaultCommandTimeout{std::chrono::minutes(5)};

class CommandRunner {
public:
  virtual ~CommandRunner() = default;

  /**
   * Runs @p argv (argv[0] is looked up in PATH) with LC_ALL=C, stdin from /dev/null, and waits
   * for it. When @p timeout passes the child and its process group are killed (SIGKILL), so a
   * hung mkfs never outlives its caller's deadline (TopoLVM #1163).
   *
   * BLOCKING: call it from the blocking pool (carina::runBlocking), never on an io thread.
   * Thread-safe.
   *
   * @return the result for any exit code (a non-zero exit is not an error here: the caller
   *         decides what it means); InvalidArgument for an empty argv; NotFound when the
   *         program does not exist or is not executable; DeadlineExceeded when the timeout
   *         passed (the child was killed); Internal when it could not be started or awaited.
   */
  virtual absl::StatusOr<CommandResult> run(const std::vector<std::string>& argv,
                                            std::chrono::milliseconds timeout) = 0;
};

using CommandRunnerPtr = std::unique_ptr<CommandRunner>;

}  // namespace carina::os
