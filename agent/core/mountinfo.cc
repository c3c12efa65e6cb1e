#include "agent/core/mountinfo.h"

#include <charconv>

namespace carina::core {
namespace {

std::vector<std::string_view> splitSpaces(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') {
      ++i;
    }
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ') {
      ++j;
    }
    if (j > i) {
      out.push_back(line.substr(i, j - i));
    }
    i = j;
  }
  return out;
}

bool parseU32(std::string_view s, uint32_t& out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

std::string unescapeMountField(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && field.size() - i >= 4) {
      int v = 0;
      bool ok = true;
      for (std::size_t k = 1; k <= 3; ++k) {
        char c = field[i + k];
        if (c < '0' || c > '7') {
          ok = false;
          break;
        }
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(field[i]);
  }
  return out;
}

std::vector<MountEntry> parseMountInfo(std::string_view text) {
  std::vector<MountEntry> result;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    std::vector<std::string_view> f = splitSpaces(line);
    // id parent major:minor root mount-point options [optional...] - fstype source superopts
    std::size_t sep = 0;
    for (std::size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        sep = i;
        break;
      }
    }
    if (f.size() < 10 || sep == 0 || sep + 2 >= f.size()) {
      continue;
    }
    MountEntry e;
    std::string_view devno = f[2];
    std::size_t colon = devno.find(':');
    if (!parseU32(f[0], e.mount_id) || !parseU32(f[1], e.parent_id) ||
        colon == std::string_view::npos || !parseU32(devno.substr(0, colon), e.major) ||
        !parseU32(devno.substr(colon + 1), e.minor)) {
      continue;
    }
    e.root = unescapeMountField(f[3]);
    e.mount_point = unescapeMountField(f[4]);
    e.options = std::string(f[5]);
    e.fs_type = std::string(f[sep + 1]);
    e.source = unescapeMountField(f[sep + 2]);
    if (sep + 3 < f.size()) {
      e.super_options = std::string(f[sep + 3]);
    }
    result.push_back(std::move(e));
  }
  return result;
}

}  // namespace carina::core
