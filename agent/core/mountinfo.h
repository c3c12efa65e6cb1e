#pragma once

// Pure parser for /proc/<pid>/mountinfo (proc(5)). Used by discovery (is a disk mounted?), the
// mounter (is a path a mount point, of which device?) and the orphan reconciler.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace carina::core {

struct MountEntry {
  uint32_t mount_id = 0;
  uint32_t parent_id = 0;
  uint32_t major = 0;
  uint32_t minor = 0;
  std::string root;         // root of the mount within the filesystem ("/" or a bind subdir)
  std::string mount_point;  // unescaped (\040 -> space)
  std::string options;      // per-mount options ("rw,relatime")
  std::string fs_type;      // "ext4", "xfs", "tmpfs"
  std::string source;       // "/dev/loop3p1"
  std::string super_options;
};

/** Parses mountinfo text; malformed lines are skipped. */
std::vector<MountEntry> parseMountInfo(std::string_view text);

/** Undoes the octal escapes of mountinfo (\040 space, \011 tab, \012 newline, \134 backslash). */
std::string unescapeMountField(std::string_view field);

}  // namespace carina::core
