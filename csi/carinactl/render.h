#pragma once

// carinactl's output: aligned tables for people, JSON for scripts. Pure functions on plain
// structs (no gRPC, no I/O), unit-tested in tests/unit/ctl.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <absl/status/status.h>
#include <absl/status/statusor.h>

#include "agent/storage/disk_types.h"

namespace carina::ctl {

/** Left-aligned columns separated by two spaces, a header line first; no trailing spaces. */
std::string renderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

/** "1.5GiB"-style sizes (storage::formatBytes). */
std::string humanBytes(uint64_t bytes);

/** A volume as ListVolumes / CreateVolume / ControllerExpandVolume report it. */
struct VolumeView {
  std::string volume_id;
  std::string name;  // the CSI name when known ("" otherwise)
  uint64_t capacity_bytes = 0;
  std::map<std::string, std::string> context;                // volume_context
  std::vector<std::map<std::string, std::string>> topology;  // accessible_topology segments
  std::optional<bool> node_expansion_required;               // expand only
};

/** The value of the first context key whose last path segment ("carina.storage.io/group" ->
 *  "group") equals one of @p names, case-insensitively; "" when none. */
std::string contextValue(const std::map<std::string, std::string>& context,
                         std::initializer_list<std::string_view> names);

std::string renderVolumes(const std::vector<VolumeView>& volumes, bool json);
std::string renderVolume(const VolumeView& volume, bool json);

/** The agent's GET /debug/inventory document (agent/app/inventory_json.h). */
struct Inventory {
  std::string node;
  storage::InventorySnapshot snapshot;
};

/** Parses the /debug/inventory JSON. InvalidArgument naming the bad field. */
absl::StatusOr<Inventory> parseInventoryJson(std::string_view text);

/** Groups and their disks as a table, then the unassigned disks with their reason. */
std::string renderDisks(const Inventory& inventory, bool json);

struct UsageView {
  std::string unit;  // "bytes" | "inodes" | "unknown"
  uint64_t total = 0;
  uint64_t used = 0;
  uint64_t available = 0;
};

struct StatsView {
  std::string volume_id;
  std::string name;
  std::string path;
  std::vector<UsageView> usage;
  std::optional<bool> abnormal;
  std::string condition_message;
};

std::string renderStats(const StatsView& stats, bool json);

struct ProbeView {
  std::string driver;
  std::string version;
  std::optional<bool> ready;  // absent: ready per the CSI spec
  std::string node_id;
  std::vector<std::string> capabilities;
};

std::string renderProbe(const ProbeView& probe, bool json);

/** The result of an action (delete, mount, umount): a line for people, fields for --json. */
struct ActionView {
  std::string action;  // "deleted", "mounted", ...
  std::vector<std::pair<std::string, std::string>> fields;
  std::string text;
};

std::string renderAction(const ActionView& action, bool json);

/** One path of the agent's GET /debug/extender (extender/request_stats.h). */
struct RequestPathView {
  std::string path;
  uint64_t count = 0;
  uint64_t errors = 0;
  uint64_t window = 0;
  uint64_t p50_us = 0;
  uint64_t p90_us = 0;
  uint64_t p99_us = 0;
  uint64_t max_us = 0;
};
struct RequestsView {
  uint64_t window_size = 0;
  std::vector<RequestPathView> paths;
};

/** Parses the /debug/extender JSON. InvalidArgument naming the bad field. */
absl::StatusOr<RequestsView> parseRequestsJson(std::string_view text);
/** Per path: requests, errors, and p50/p90/p99/max latency over the last window. */
std::string renderRequests(const RequestsView& requests, bool json);

/** "error: NOT_FOUND: message" or {"error":{"code":"NOT_FOUND","message":"..."}}. */
std::string renderError(const absl::Status& status, bool json);

}  // namespace carina::ctl
