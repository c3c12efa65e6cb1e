#pragma once

// In-memory CommandRunner for unit tests: records every argv, answers from canned results, and
// simulates the filesystem tools carina uses (blkid reports what mkfs.* wrote on a device).
// failAt(n) makes the n-th call (0-based, counted from the failAt call) fail with exit 1 —
// the failure-matrix helper of CONVENTIONS.md §b.10.

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/os/command_runner.h"

namespace carina::test {

class FakeCommandRunner : public os::CommandRunner {
public:
  /** Canned result for every call whose argv[0] is @p program (overrides the simulation). */
  void on(const std::string& program, os::CommandResult result) {
    std::lock_guard<std::mutex> lock(mu_);
    canned_[program] = std::move(result);
  }
  /** Canned error status (NotFound, DeadlineExceeded, ...) for @p program. */
  void onError(const std::string& program, absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    errors_[program] = std::move(status);
  }
  /** The @p n-th call from now on (0-based) exits 1 with "injected failure". -1 disables. */
  void failAt(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_at_ = n;
    counter_ = 0;
  }
  /** Called (under no lock) before every command: tests block here to hold a call. */
  void setHook(std::function<void(const std::vector<std::string>&)> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    hook_ = std::move(fn);
  }
  /** Pretends @p device already carries a filesystem (blkid reports it). */
  void setFilesystem(const std::string& device, const std::string& fs_type) {
    std::lock_guard<std::mutex> lock(mu_);
    filesystems_[device] = fs_type;
  }
  std::optional<std::string> filesystemOf(const std::string& device) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = filesystems_.find(device);
    if (it == filesystems_.end()) {
      return std::nullopt;
    }
    return it->second;
  }
  std::vector<std::vector<std::string>> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  /** Number of recorded calls whose argv[0] is @p program. */
  size_t count(const std::string& program) const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& c : calls_) {
      n += (!c.empty() && c[0] == program) ? 1 : 0;
    }
    return n;
  }

  // os::CommandRunner
  absl::StatusOr<os::CommandResult> run(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds /*timeout*/) override {
    std::function<void(const std::vector<std::string>&)> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hook = hook_;
    }
    if (hook) {
      hook(argv);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (argv.empty()) {
      return absl::InvalidArgumentError("run: empty command");
    }
    calls_.push_back(argv);
    const int index = counter_++;
    if (fail_at_ >= 0 && index == fail_at_) {
      return os::CommandResult{1, "", "injected failure"};
    }
    if (auto it = errors_.find(argv[0]); it != errors_.end()) {
      return it->second;
    }
    if (auto it = canned_.find(argv[0]); it != canned_.end()) {
      return it->second;
    }
    return simulate(argv);
  }

private:
  os::CommandResult simulate(const std::vector<std::string>& argv) {
    const std::string& prog = argv[0];
    const std::string& last = argv.back();
    if (prog == "blkid") {
      auto it = filesystems_.find(last);
      if (it == filesystems_.end()) {
        return {2, "", ""};  // blkid -p: nothing found
      }
      return {0, "DEVNAME=" + last + "\nTYPE=" + it->second + "\n", ""};
    }
    if (prog.starts_with("mkfs.")) {
      filesystems_[last] = prog.substr(5);
      return {0, "", ""};
    }
    return {0, "", ""};
  }

  mutable std::mutex mu_;
  std::map<std::string, os::CommandResult> canned_;
  std::map<std::string, absl::Status> errors_;
  std::map<std::string, std::string> filesystems_;
  std::vector<std::vector<std::string>> calls_;
  std::function<void(const std::vector<std::string>&)> hook_;
  int fail_at_ = -1;
  int counter_ = 0;
};

}  // namespace carina::test
