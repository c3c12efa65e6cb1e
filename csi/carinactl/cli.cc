#include "csi/carinactl/cli.h"

#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "agent/core/config.h"
#include "agent/core/constants.h"
#include "agent/core/quantity.h"

namespace carina::ctl {
namespace {

struct CommandInfo {
  CommandKind kind;
  std::size_t min_args;
  std::size_t max_args;
  std::set<std::string_view> flags;  // command-specific flags
  const char* synopsis;
};

const std::map<std::string_view, CommandInfo>& commands() {
  static const std::map<std::string_view, CommandInfo> table = {
      {"help", {CommandKind::Help, 0, 0, {}, "help"}},
      {"probe", {CommandKind::Probe, 0, 0, {}, "probe"}},
      {"disks", {CommandKind::Disks, 0, 0, {}, "disks"}},
      {"volumes", {CommandKind::Volumes, 0, 0, {}, "volumes"}},
      {"create",
       {CommandKind::Create,
        1,
        1,
        {"size", "group", "exclusive", "fs", "block"},
        "create NAME --size SIZE [--group G] [--exclusive] [--fs xfs|ext4] [--block]"}},
      {"expand", {CommandKind::Expand, 1, 2, {"size"}, "expand NAME --size SIZE [PATH]"}},
      {"delete", {CommandKind::Delete, 1, 1, {}, "delete NAME"}},
      {"mount",
       {CommandKind::Mount,
        2,
        2,
        {"fs", "block", "readonly"},
        "mount NAME PATH [--fs xfs|ext4] [--block] [--readonly]"}},
      {"umount", {CommandKind::Umount, 2, 2, {}, "umount NAME PATH"}},
      {"stats", {CommandKind::Stats, 1, 2, {}, "stats NAME [PATH]"}},
      {"score", {CommandKind::Score, 0, 0, {"pod"}, "score --pod FILE   (YAML/JSON; - = stdin)"}},
      {"requests", {CommandKind::Requests, 0, 0, {}, "requests"}},
  };
  return table;
}

// Flags that take a value; the others are booleans.
const std::set<std::string_view> kValueFlags = {"endpoint", "http",  "kubelet-dir", "timeout",
                                                "size",     "group", "fs",          "pod"};
const std::set<std::string_view> kGlobalFlags = {"endpoint", "http", "kubelet-dir",
                                                 "timeout",  "json", "help"};

absl::Status usageError(const std::string& message) { return absl::InvalidArgumentError(message); }

bool isVolumeNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

absl::Status checkVolumeName(const std::string& name) {
  if (name.empty()) {
    return usageError("volume NAME must not be empty");
  }
  if (name.size() > 128) {
    return usageError("volume NAME is longer than 128 bytes (CSI limit)");
  }
  for (char c : name) {
    if (!isVolumeNameChar(c)) {
      return usageError("volume NAME \"" + name + "\" may contain only [A-Za-z0-9._-]");
    }
  }
  return absl::OkStatus();
}

std::string cwd() {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::current_path(ec);
  return ec ? std::string("/") : p.string();
}

}  // namespace

std::string_view toString(CommandKind kind) {
  for (const auto& [name, info] : commands()) {
    if (info.kind == kind) {
      return name;
    }
  }
  return "?";
}

std::string defaultEndpoint() { return core::CsiConfig{}.endpoint; }

std::string defaultHttp() {
  std::string listen = core::ExtenderConfig{}.listen;  // "0.0.0.0:8089"
  std::size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  std::string port = colon == std::string::npos ? "80" : listen.substr(colon + 1);
  if (host.empty() || host == "0.0.0.0") {
    host = "127.0.0.1";
  } else if (host == "[::]" || host == "::") {
    host = "[::1]";
  }
  return "http://" + host + ":" + port;
}

std::string defaultKubeletDir() { return core::CsiConfig{}.kubelet_dir; }

std::string usage() {
  std::string text =
      "usage: carinactl [--endpoint unix:///PATH] [--http http://HOST:PORT] [--kubelet-dir DIR]\n"
      "                 [--json] [--timeout DURATION] COMMAND [ARGS]\n"
      "commands:\n";
  for (const auto& [name, info] : commands()) {
    text += "  carinactl ";
    text += info.synopsis;
    text += "\n";
  }
  text += "defaults: --endpoint $CARINA_ENDPOINT or " + defaultEndpoint() +
          "\n          --http $CARINA_HTTP or " + defaultHttp() +
          "\n          --kubelet-dir $CARINA_KUBELET_DIR or " + defaultKubeletDir() +
          "\n          --timeout 120s\n"
          "sizes: bytes, 500Mi, 1Gi, 1.5G, 2GiB; mount/umount PATH must lie below the agent's "
          "kubelet dir\n";
  return text;
}

absl::StatusOr<Command> parseCommandLine(const std::vector<std::string>& args,
                                         const Environment& env) {
  Command cmd;
  cmd.global.endpoint = env.endpoint.empty() ? defaultEndpoint() : env.endpoint;
  cmd.global.http = env.http.empty() ? defaultHttp() : env.http;
  cmd.global.kubelet_dir = env.kubelet_dir.empty() ? defaultKubeletDir() : env.kubelet_dir;

  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;  // name -> value ("" for booleans)
  bool only_positional = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    if (arg == "-h") {
      flags["help"] = "";
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return usageError("unknown option " + arg);
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (std::size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    bool known = kValueFlags.contains(name) || kGlobalFlags.contains(name);
    for (const auto& [cname, info] : commands()) {
      known = known || info.flags.contains(name);
    }
    if (!known) {
      return usageError("unknown option --" + name);
    }
    if (kValueFlags.contains(name)) {
      if (!value) {
        if (i + 1 >= args.size()) {
          return usageError("option --" + name + " needs a value");
        }
        value = args[++i];
      }
    } else if (value) {
      return usageError("option --" + name + " takes no value");
    }
    if (flags.contains(name)) {
      return usageError("option --" + name + " given twice");
    }
    flags[name] = value.value_or("");
  }

  if (flags.contains("help") || positional.empty()) {
    cmd.kind = CommandKind::Help;
    if (positional.empty() && !flags.contains("help")) {
      return usageError("no command given");
    }
    return cmd;
  }
  auto it = commands().find(positional[0]);
  if (it == commands().end()) {
    return usageError("unknown command \"" + positional[0] + "\"");
  }
  const CommandInfo& info = it->second;
  cmd.kind = info.kind;
  std::size_t nargs = positional.size() - 1;
  if (nargs < info.min_args || nargs > info.max_args) {
    return usageError(std::string("wrong number of arguments; usage: carinactl ") + info.synopsis);
  }
  for (const auto& [name, value] : flags) {
    if (!kGlobalFlags.contains(name) && !info.flags.contains(name)) {
      return usageError("option --" + name + " is not valid for \"" + positional[0] + "\"");
    }
  }

  if (auto f = flags.find("endpoint"); f != flags.end()) {
    cmd.global.endpoint = f->second;
  }
  if (auto f = flags.find("http"); f != flags.end()) {
    cmd.global.http = f->second;
  }
  if (auto f = flags.find("kubelet-dir"); f != flags.end()) {
    cmd.global.kubelet_dir = f->second;
  }
  cmd.global.json = flags.contains("json");
  if (auto f = flags.find("timeout"); f != flags.end()) {
    auto timeout = parseDuration(f->second);
    if (!timeout.ok()) {
      return timeout.status();
    }
    cmd.global.timeout = *timeout;
  }
  if (auto parsed = unixSocketPath(cmd.global.endpoint); !parsed.ok()) {
    return parsed.status();
  }
  if (cmd.global.kubelet_dir.empty() || cmd.global.kubelet_dir[0] != '/') {
    return usageError("--kubelet-dir must be an absolute path");
  }
  cmd.global.kubelet_dir = absolutePath(cmd.global.kubelet_dir, "/");

  if (nargs >= 1) {
    cmd.name = positional[1];
    if (absl::Status st = checkVolumeName(cmd.name); !st.ok()) {
      return st;
    }
  }
  if (nargs >= 2) {
    if (positional[2].empty()) {
      return usageError("PATH must not be empty");
    }
    cmd.path = absolutePath(positional[2], cwd());
  }
  if (auto f = flags.find("size"); f != flags.end()) {
    auto size = parseSize(f->second);
    if (!size.ok()) {
      return size.status();
    }
    if (*size == 0) {
      return usageError("--size must be greater than 0");
    }
    cmd.size_bytes = *size;
  } else if (cmd.kind == CommandKind::Create || cmd.kind == CommandKind::Expand) {
    return usageError(std::string("--size is required; usage: carinactl ") + info.synopsis);
  }
  if (auto f = flags.find("group"); f != flags.end()) {
    if (f->second.empty()) {
      return usageError("--group must not be empty");
    }
    cmd.group = f->second;
  }
  cmd.exclusive = flags.contains("exclusive");
  cmd.block = flags.contains("block");
  cmd.readonly = flags.contains("readonly");
  if (auto f = flags.find("fs"); f != flags.end()) {
    if (f->second != "xfs" && f->second != "ext4") {
      return usageError("--fs must be xfs or ext4, not \"" + f->second + "\"");
    }
    cmd.fs_type = f->second;
  }
  if (cmd.block && !cmd.fs_type.empty()) {
    return usageError("--block and --fs exclude each other");
  }
  if (auto f = flags.find("pod"); f != flags.end()) {
    if (f->second.empty()) {
      return usageError("--pod must name a file (or - for stdin)");
    }
    cmd.pod_file = f->second == "-" ? f->second : absolutePath(f->second, cwd());
  } else if (cmd.kind == CommandKind::Score) {
    return usageError(std::string("--pod is required; usage: carinactl ") + info.synopsis);
  }
  if (cmd.kind == CommandKind::Score) {
    if (auto url = parseHttpUrl(cmd.global.http); !url.ok()) {
      return url.status();
    }
  }
  return cmd;
}

absl::StatusOr<uint64_t> parseSize(std::string_view text) {
  // People's spellings on top of Kubernetes quantities (agent/core/quantity.h does the
  // arithmetic): "2GiB" = "2Gi", "1GB" = "1G", "1K" = "1k", "512B" = "512", spaces allowed.
  const std::string original(text);
  std::string q;
  for (char c : text) {
    if (c != ' ') {
      q.push_back(c);
    }
  }
  auto endsWith = [&](std::string_view suffix) {
    return q.size() > suffix.size() &&
           q.compare(q.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (endsWith("iB") || endsWith("B")) {
    q.pop_back();  // "GiB" -> "Gi", "GB" -> "G", "512B" -> "512"
  }
  if (!q.empty() && (q.back() == 'K')) {
    q.back() = 'k';  // decimal kilo, as people write it
  }
  auto bytes = core::parseQuantityBytes(q);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError("invalid size \"" + original +
                                      "\": " + std::string(bytes.status().message()) +
                                      " (examples: 1Gi, 500Mi, 1.5G, 1048576)");
  }
  return *bytes;
}

absl::StatusOr<std::chrono::milliseconds> parseDuration(std::string_view text) {
  const std::string original(text);
  auto bad = [&] {
    return absl::InvalidArgumentError("invalid duration \"" + original +
                                      "\" (examples: 30, 30s, 500ms, 2m)");
  };
  std::size_t i = 0;
  uint64_t value = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    value = value * 10 + static_cast<uint64_t>(text[i] - '0');
    if (value > 1000ULL * 1000 * 1000) {
      return bad();
    }
  }
  if (i == 0) {
    return bad();
  }
  std::string_view unit = text.substr(i);
  uint64_t ms = 0;
  if (unit.empty() || unit == "s") {
    ms = value * 1000;
  } else if (unit == "ms") {
    ms = value;
  } else if (unit == "m") {
    ms = value * 60 * 1000;
  } else if (unit == "h") {
    ms = value * 3600 * 1000;
  } else {
    return bad();
  }
  if (ms == 0) {
    return absl::InvalidArgumentError("duration \"" + original + "\" must be greater than 0");
  }
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(ms));
}

std::string stagingPath(std::string_view kubelet_dir, std::string_view volume_id) {
  std::string dir(kubelet_dir);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (dir == "/") dir.clear();
  return dir + "/plugins/kubernetes.io/csi/" + std::string(kDriverName) + "/" +
         std::string(volume_id) + "/globalmount";
}

std::string absolutePath(std::string_view path, std::string_view cwd) {
  std::string full = (!path.empty() && path[0] == '/') ? std::string(path)
                                                       : std::string(cwd) + "/" + std::string(path);
  std::vector<std::string> parts;
  std::size_t pos = 0;
  while (pos <= full.size()) {
    std::size_t next = full.find('/', pos);
    if (next == std::string::npos) next = full.size();
    std::string part = full.substr(pos, next - pos);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    pos = next + 1;
  }
  std::string out;
  for (const std::string& p : parts) {
    out += "/" + p;
  }
  return out.empty() ? "/" : out;
}

absl::StatusOr<std::string> unixSocketPath(std::string_view endpoint) {
  constexpr std::string_view kPrefix = "unix://";
  if (endpoint.substr(0, kPrefix.size()) != kPrefix) {
    return absl::InvalidArgumentError("endpoint \"" + std::string(endpoint) +
                                      "\" must look like unix:///path/to/csi.sock");
  }
  std::string path(endpoint.substr(kPrefix.size()));
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError("endpoint \"" + std::string(endpoint) +
                                      "\" must name an absolute socket path (unix:///...)");
  }
  return path;
}

absl::StatusOr<HttpUrl> parseHttpUrl(std::string_view url) {
  const std::string original(url);
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError("invalid --http URL \"" + original + "\": " + why);
  };
  constexpr std::string_view kPrefix = "http://";
  if (url.substr(0, kPrefix.size()) == kPrefix) {
    url.remove_prefix(kPrefix.size());
  } else if (url.find("://") != std::string_view::npos) {
    return bad("must start with http://");
  }  // else "host:port[/base]"
  std::size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  std::string base = slash == std::string_view::npos ? "" : std::string(url.substr(slash));
  while (!base.empty() && base.back() == '/') base.pop_back();
  HttpUrl out;
  out.base_path = base;
  out.port = "80";
  if (authority.empty()) {
    return bad("no host");
  }
  if (authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return bad("unterminated [");
    }
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("junk after ]");
      out.port = std::string(rest.substr(1));
    }
  } else {
    std::size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      out.port = std::string(authority.substr(colon + 1));
    }
  }
  if (out.host.empty()) {
    return bad("no host");
  }
  if (out.port.empty() || out.port.size() > 5 ||
      out.port.find_first_not_of("0123456789") != std::string::npos || std::stoul(out.port) == 0 ||
      std::stoul(out.port) > 65535) {
    return bad("bad port \"" + out.port + "\"");
  }
  return out;
}

}  // namespace carina::ctl
