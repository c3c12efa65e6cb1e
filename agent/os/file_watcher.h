#pragma once

// Watches one file (the agent's config) for changes. The production implementation
// (agent/os/linux/inotify_file_watcher.h) watches the file's directory with inotify, so that
// editors' write-to-temp-and-rename and Kubernetes ConfigMap symlink swaps (..data) are seen,
// debounces bursts and compares the file's content: the callback fires only when the content
// really changed (or the file appeared or disappeared).

#include <functional>
#include <memory>

#include <absl/status/status.h>

namespace carina::os {

class FileWatcher {
public:
  /** Called on the watcher's executor after the content of the file changed. */
  using Callback = std::function<void()>;

  virtual ~FileWatcher() = default;

  /**
   * Starts watching. Reads the current content as the baseline (a missing file is a valid
   * baseline: its creation is a change). Idempotent.
   * @return NotFound when the directory does not exist, Unavailable/Internal when inotify
   *         cannot be set up.
   */
  virtual absl::Status start() = 0;

  /** Stops watching; no callback runs after stop() returns (when called on the watcher's
   *  executor). Idempotent; the destructor calls it. */
  virtual void stop() = 0;
};
using FileWatcherPtr = std::unique_ptr<FileWatcher>;

}  // namespace carina::os
