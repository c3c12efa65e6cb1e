#pragma once

// CommandRunner on posix_spawn (not fork: gRPC threads are running) with pipes for stdout and
// stderr, LC_ALL=C, the child in its own process group so that a timeout kills it and anything
// it started.

#include <string>
#include <vector>

#include "agent/os/command_runner.h"

namespace carina::os {

class SpawnCommandRunner : public CommandRunner {
public:
  /** @param prefix prepended to every argv, e.g. {"nsenter", "-t", "1", "-m", "--"} from the
   *  configuration when tools must run in the host's mount namespace; usually empty. */
  explicit SpawnCommandRunner(std::vector<std::string> prefix = {});

  // CommandRunner
  absl::StatusOr<CommandResult> run(const std::vector<std::string>& argv,
                                    std::chrono::milliseconds timeout) override;

private:
  std::vector<std::string> prefix_;
};

}  // namespace carina::os
