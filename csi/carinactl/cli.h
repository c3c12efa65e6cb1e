#pragma once

// carinactl's command line: pure parsing, no I/O, so that it is unit-tested without gRPC.
// Global flags may appear before or after the command; each command accepts only its own flags.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <absl/status/statusor.h>

namespace carina::ctl {

enum class CommandKind {
  Help,
  Probe,
  Disks,
  Volumes,
  Create,
  Expand,
  Delete,
  Mount,
  Umount,
  Stats,
  Score,
  Requests
};

std::string_view toString(CommandKind kind);

struct GlobalOptions {
  std::string endpoint;     // CSI endpoint, "unix:///path/csi.sock"
  std::string http;         // agent HTTP base URL, "http://127.0.0.1:8089"
  std::string kubelet_dir;  // the agent's kubelet dir: staging paths are created below it
  bool json = false;
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
};

struct Command {
  CommandKind kind = CommandKind::Help;
  GlobalOptions global;
  std::string name;  // volume name (create, expand, delete, mount, umount, stats)
  std::string path;  // target path (mount, umount, stats; optional for stats and expand)
  uint64_t size_bytes = 0;
  std::string group;
  bool exclusive = false;
  std::string fs_type;  // "" = the agent's default (create) / from the volume (mount)
  bool block = false;
  bool readonly = false;
  std::string pod_file;  // score: the pod file ("-" = stdin)
};

/** Defaults that come from the environment ($CARINA_ENDPOINT, $CARINA_HTTP,
 *  $CARINA_KUBELET_DIR); empty members fall back to the built-in defaults. */
struct Environment {
  std::string endpoint;
  std::string http;
  std::string kubelet_dir;
};

/** Built-in defaults, derived from the agent's config defaults (agent/core/config.h). */
std::string defaultEndpoint();
std::string defaultHttp();
std::string defaultKubeletDir();

/** Parses argv[1..]. InvalidArgument with a one-line reason on any usage error. */
absl::StatusOr<Command> parseCommandLine(const std::vector<std::string>& args,
                                         const Environment& env);

/** The full usage text. */
std::string usage();

/** Parses a size: plain bytes ("1048576"), Kubernetes quantities ("1Gi", "500Mi", "1.5G",
 *  "2k"), and the "GiB"/"MB" spellings. Fractions are rounded up to whole bytes. InvalidArgument
 *  for empty, negative, malformed or overflowing input. */
absl::StatusOr<uint64_t> parseSize(std::string_view text);

/** Parses a timeout: "30" (seconds), "30s", "500ms", "2m". Must be > 0. */
absl::StatusOr<std::chrono::milliseconds> parseDuration(std::string_view text);

/** The staging directory carinactl uses for a volume:
 *  <kubelet_dir>/plugins/kubernetes.io/csi/carina.storage.io/<volume_id>/globalmount
 *  (the layout kubelet uses, so the agent's kubelet-dir check accepts it). */
std::string stagingPath(std::string_view kubelet_dir, std::string_view volume_id);

/** @p path made absolute against @p cwd and normalised lexically ("a/./b/../c" -> "a/c"). */
std::string absolutePath(std::string_view path, std::string_view cwd);

/** The path of a "unix:///abs/path" endpoint; InvalidArgument for anything else. */
absl::StatusOr<std::string> unixSocketPath(std::string_view endpoint);

struct HttpUrl {
  std::string host;
  std::string port;
  std::string base_path;  // without trailing '/', "" for the root
};

/** Parses "http://host[:port][/base]" (default port 80; IPv6 hosts in brackets); "host:port"
 *  without a scheme means http://host:port. */
absl::StatusOr<HttpUrl> parseHttpUrl(std::string_view url);

}  // namespace carina::ctl
