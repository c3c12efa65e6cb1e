#include "agent/os/linux/sysfs.h"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <mutex>
#include <sstream>

#include "agent/core/status.h"

namespace carina::os {
namespace {
std::mutex g_root_mu;
std::string g_root = "/sys";  // NOLINT: plain string, only changed by tests
}  // namespace

std::string sysRoot() {
  std::lock_guard<std::mutex> lock(g_root_mu);
  return g_root;
}

void setSysRootForTest(std::string root) {
  std::lock_guard<std::mutex> lock(g_root_mu);
  g_root = std::move(root);
}

absl::StatusOr<std::string> readSysfs(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return errnoStatus("read " + path, errno == 0 ? ENOENT : errno);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

absl::StatusOr<uint64_t> readSysfsU64(const std::string& path) {
  CARINA_ASSIGN_OR_RETURN(std::string s, readSysfs(path));
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return absl::InternalError("read " + path + ": not a number: \"" + s + "\"");
  }
  return v;
}

absl::StatusOr<std::vector<std::string>> listDir(const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) {
    return errnoStatus("opendir " + path, errno);
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") {
      names.push_back(std::move(n));
    }
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace carina::os
