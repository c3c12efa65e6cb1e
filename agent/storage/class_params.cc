#include "agent/storage/class_params.h"

#include <algorithm>

namespace carina::storage {

namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) {
             return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
           };
           return lower(x) == lower(y);
         });
}

}  // namespace

std::optional<core::SchedulerStrategy> parseSchedulerStrategy(std::string_view name) {
  if (equalsIgnoreCase(name, "binpack")) {
    return core::SchedulerStrategy::Binpack;
  }
  if (equalsIgnoreCase(name, "spreadout")) {
    return core::SchedulerStrategy::Spreadout;
  }
  return std::nullopt;
}

absl::StatusOr<ClassParams> parseClassParams(const std::map<std::string, std::string>& params) {
  ClassParams out;
  std::string disk_type;
  std::string group_name;
  for (const auto& [key, value] : params) {
    if (key == kParamFsType) {
      if (!value.empty() && value != "ext4" && value != "xfs") {
        return absl::InvalidArgumentError("parameter " + key + ": \"" + value +
                                          "\" is not supported (ext4 or xfs)");
      }
      out.fs_type = value;
    } else if (key == kParamDiskType) {
      disk_type = value;
    } else if (key == kParamDiskGroup) {
      group_name = value;
    } else if (key == kParamExclusive || key == kParamExclusiveCarina) {
      if (equalsIgnoreCase(value, "true")) {
        out.exclusive = true;
      } else if (!value.empty() && !equalsIgnoreCase(value, "false")) {
        return absl::InvalidArgumentError("parameter " + key + ": \"" + value +
                                          "\" is not a boolean (true or false)");
      }
    } else if (key == kParamSchedulerStrategy) {
      if (!value.empty()) {
        out.strategy = parseSchedulerStrategy(value);
        if (!out.strategy) {
          return absl::InvalidArgumentError("parameter " + key + ": \"" + value +
                                            "\" is not binpack or spreadout");
        }
      }
    } else if (key.starts_with("carina.storage.io/")) {
      return absl::InvalidArgumentError("unknown parameter " + key);
    }
  }
  if (!disk_type.empty() && !group_name.empty() && disk_type != group_name) {
    return absl::InvalidArgumentError(std::string("parameters ") + std::string(kParamDiskType) +
                                      " and " + std::string(kParamDiskGroup) + " disagree (\"" +
                                      disk_type + "\" vs \"" + group_name + "\")");
  }
  out.group = !group_name.empty() ? group_name : disk_type;
  return out;
}

}  // namespace carina::storage
