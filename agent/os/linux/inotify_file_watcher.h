#pragma once

// FileWatcher on inotify, run on a Boost.Asio executor (the inotify fd is waited on with
// posix::stream_descriptor::async_wait). The file's directory is watched, not the file: an
// editor's rename-replace or a ConfigMap "..data" symlink swap replaces the inode, and a watch
// on the old inode would go silent.

#include <chrono>
#include <string>

#include <absl/status/statusor.h>

#include "agent/core/async.h"
#include "agent/os/file_watcher.h"

namespace carina::os {

/**
 * Watches @p path. After a burst of directory events settles for @p debounce, the file is
 * re-read and @p on_change runs on @p executor if its content differs from the last content
 * seen (a missing file counts as empty content distinct from an empty file).
 */
FileWatcherPtr makeInotifyFileWatcher(
    Executor executor, std::string path, FileWatcher::Callback on_change,
    std::chrono::milliseconds debounce = std::chrono::milliseconds(300));

}  // namespace carina::os
