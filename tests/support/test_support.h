#pragma once

// Helpers shared by carina's tests: root gating, temporary directories, running commands.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace carina::test {

/** True when the test may proceed. When not root: WARNs and returns false if
 *  CARINA_SKIP_ROOT_TESTS=1, FAILs otherwise (CI runs as root and must run these tests). */
bool requireRootOrWarn();

/** A fresh directory under $TMPDIR (short path: unix sockets have a 108-byte limit), removed
 *  recursively (after unmounting anything mounted below it) when destroyed. */
class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;  // -1 if the command could not be started or was killed
  std::string output;  // stdout and stderr, interleaved
};

/** Runs argv[0] (looked up in PATH) with LC_ALL=C and waits for it. */
CommandResult run(const std::vector<std::string>& argv);

/** Polls @p pred every @p poll until it holds (true) or @p timeout passed (false; @p pred is
 *  asked once more at the end). For conditions other threads or processes bring about. */
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = std::chrono::milliseconds(50));

/** Unmounts (lazily, MNT_DETACH) every mount point at or below @p dir, deepest first. */
void unmountBelow(const std::string& dir);

}  // namespace carina::test
