#include "csi/device_probe.h"

#include "csi/convert.h"

namespace carina::csi {
namespace {

/** The tool's diagnostics on one line: its non-empty output lines joined with "; ", without
 *  the version banner some tools print first ("resize2fs 1.47.0 (5-Feb-2023)"), at most 400
 *  bytes. */
std::string diagnostics(std::string_view text, const std::string& tool) {
  std::string out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    if (line.empty() || (line.starts_with(tool + " ") && line.find(':') == std::string::npos)) {
      continue;
    }
    if (!out.empty()) {
      out += "; ";
    }
    out += line;
  }
  if (out.size() > 400) {
    out.resize(400);
  }
  return out;
}

}  // namespace

std::string DeviceContent::describe() const {
  if (!pttype.empty()) {
    return "a " + pttype + " partition table";
  }
  if (!type.empty()) {
    return "a " + type + " filesystem";
  }
  return "nothing";
}

absl::StatusOr<DeviceContent> probeDeviceContent(os::CommandRunner& runner,
                                                 const std::string& device,
                                                 std::chrono::milliseconds timeout) {
  const std::vector<std::string> argv = {"blkid", "-p", "-o", "export", device};
  auto r = runner.run(argv, timeout);
  if (!r.ok()) {
    return r.status();
  }
  DeviceContent out;
  if (r->exit_code == 2) {
    return out;  // blkid -p: no signature found
  }
  if (r->exit_code != 0) {
    return absl::InternalError("probing " + device + ": " + commandError(argv, *r));
  }
  // On a partition, blkid -p also reports the partition's own GPT entry (PART_ENTRY_*): that is
  // not content. Only a TYPE (filesystem, RAID, LVM, swap, ...) or a PTTYPE (a nested partition
  // table) means the device holds something.
  auto tags = parseBlkidExport(r->stdout_text);
  if (auto it = tags.find("TYPE"); it != tags.end()) {
    out.type = it->second;
  }
  if (auto it = tags.find("PTTYPE"); it != tags.end()) {
    out.pttype = it->second;
  }
  return out;
}

std::string commandError(const std::vector<std::string>& argv, const os::CommandResult& r) {
  std::string what = argv[0];
  const std::string detail =
      diagnostics(r.stderr_text.empty() ? r.stdout_text : r.stderr_text, what);
  return what + " exited with " + std::to_string(r.exit_code) +
         (detail.empty() ? "" : ": " + detail);
}

}  // namespace carina::csi
