#include "csi/carinactl/render.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include <boost/json.hpp>

#include "agent/storage/placement.h"

namespace carina::ctl {
namespace {

namespace json = boost::json;

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string pretty(const json::value& v) { return json::serialize(v) + "\n"; }

json::object volumeJson(const VolumeView& v) {
  json::object o;
  o["volumeId"] = v.volume_id;
  if (!v.name.empty()) o["name"] = v.name;
  o["capacityBytes"] = v.capacity_bytes;
  o["capacity"] = humanBytes(v.capacity_bytes);
  json::object ctx;
  for (const auto& [k, val] : v.context) ctx[k] = val;
  o["volumeContext"] = std::move(ctx);
  json::array topo;
  for (const auto& segs : v.topology) {
    json::object t;
    for (const auto& [k, val] : segs) t[k] = val;
    topo.push_back(std::move(t));
  }
  o["accessibleTopology"] = std::move(topo);
  if (v.node_expansion_required) o["nodeExpansionRequired"] = *v.node_expansion_required;
  return o;
}

std::vector<std::string> volumeRow(const VolumeView& v, bool with_name) {
  std::vector<std::string> row;
  if (with_name) row.push_back(orDash(v.name));
  row.push_back(v.volume_id);
  row.push_back(humanBytes(v.capacity_bytes));
  row.push_back(orDash(contextValue(v.context, {"group", "diskGroup", "disk-group-name"})));
  row.push_back(orDash(contextValue(v.context, {"fstype", "fsType"})));
  row.push_back(orDash(contextValue(v.context, {"device", "devicePath", "devnode"})));
  std::string excl = contextValue(v.context, {"exclusive", "exclusivity-disk"});
  row.push_back(excl.empty() ? "-" : (lower(excl) == "true" ? "yes" : "no"));
  return row;
}

std::vector<std::string> volumeHeaders(bool with_name) {
  std::vector<std::string> h;
  if (with_name) h.push_back("NAME");
  for (const char* s : {"ID", "SIZE", "GROUP", "FS", "DEVICE", "EXCLUSIVE"}) h.push_back(s);
  return h;
}

// --- inventory parsing -------------------------------------------------------------------------

struct JsonReader {
  std::string path;

  absl::Status bad(const std::string& field, const std::string& what) const {
    return absl::InvalidArgumentError("inventory JSON: " + path + (path.empty() ? "" : ".") +
                                      field + ": " + what);
  }
};

absl::StatusOr<uint64_t> getU64(const json::object& o, const JsonReader& r, const char* key,
                                bool required = false) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) return r.bad(key, "missing");
    return uint64_t{0};
  }
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64() && v->as_int64() >= 0) return static_cast<uint64_t>(v->as_int64());
  if (v->is_double() && v->as_double() >= 0 && v->as_double() < 1.8e19) {
    return static_cast<uint64_t>(v->as_double());
  }
  return r.bad(key, "not a non-negative integer");
}

absl::StatusOr<std::string> getString(const json::object& o, const JsonReader& r, const char* key,
                                      bool required = false) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) {
    if (required) return r.bad(key, "missing");
    return std::string();
  }
  if (!v->is_string()) return r.bad(key, "not a string");
  return std::string(v->as_string());
}

absl::StatusOr<bool> getBool(const json::object& o, const JsonReader& r, const char* key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return false;
  if (!v->is_bool()) return r.bad(key, "not a boolean");
  return v->as_bool();
}

absl::StatusOr<const json::array*> getArray(const json::object& o, const JsonReader& r,
                                            const char* key) {
  static const json::array kEmpty;
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return &kEmpty;
  if (!v->is_array()) return r.bad(key, "not an array");
  return &v->as_array();
}

#define CTL_ASSIGN(lhs, expr)                                \
  do {                                                       \
    auto ctl_tmp_ = (expr);                                  \
    if (!ctl_tmp_.ok()) return std::move(ctl_tmp_).status(); \
    lhs = std::move(ctl_tmp_).value();                       \
  } while (0)

absl::StatusOr<storage::DiskInfo> parseDiskInfo(const json::object& o, const JsonReader& r) {
  storage::DiskInfo d;
  CTL_ASSIGN(d.name, getString(o, r, "name", true));
  CTL_ASSIGN(d.devnode, getString(o, r, "devnode"));
  CTL_ASSIGN(d.group, getString(o, r, "group"));
  CTL_ASSIGN(d.size_bytes, getU64(o, r, "sizeBytes"));
  CTL_ASSIGN(d.reason, getString(o, r, "reason"));
  return d;
}

absl::StatusOr<storage::DiskSnapshot> parseDisk(const json::value& v, const JsonReader& r,
                                                const std::string& group, core::DiskPolicy policy) {
  if (!v.is_object()) return r.bad("", "not an object");
  const json::object& o = v.as_object();
  storage::DiskSnapshot d;
  CTL_ASSIGN(d.info, parseDiskInfo(o, r));
  d.info.group = group;
  d.info.policy = policy;
  d.info.eligible = true;
  d.space.name = d.info.name;
  d.space.size_bytes = d.info.size_bytes;
  uint64_t partitions = 0;
  CTL_ASSIGN(partitions, getU64(o, r, "partitions"));
  if (partitions > UINT32_MAX) return r.bad("partitions", "too large");
  d.space.partitions = static_cast<uint32_t>(partitions);
  CTL_ASSIGN(d.space.exclusive, getBool(o, r, "exclusive"));
  CTL_ASSIGN(d.largest_free_bytes, getU64(o, r, "largestFreeBytes"));
  const json::array* segs = nullptr;
  CTL_ASSIGN(segs, getArray(o, r, "freeSegments"));
  for (std::size_t i = 0; i < segs->size(); ++i) {
    JsonReader sr{r.path + ".freeSegments[" + std::to_string(i) + "]"};
    if (!(*segs)[i].is_object()) return sr.bad("", "not an object");
    storage::Segment s;
    CTL_ASSIGN(s.start, getU64((*segs)[i].as_object(), sr, "start", true));
    CTL_ASSIGN(s.length, getU64((*segs)[i].as_object(), sr, "length", true));
    d.space.free.push_back(s);
  }
  return d;
}

uint64_t freeOf(const storage::DiskSnapshot& d) {
  uint64_t sum = 0;
  for (const storage::Segment& s : d.space.free) sum += s.length;
  return sum;
}

}  // namespace

std::string renderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows) {
  std::size_t ncols = headers.size();
  for (const auto& row : rows) ncols = std::max(ncols, row.size());
  std::vector<std::size_t> width(ncols, 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  };
  measure(headers);
  for (const auto& row : rows) measure(row);
  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t i = 0; i < ncols; ++i) {
      const std::string cell = i < row.size() ? row[i] : std::string();
      line += cell;
      if (i + 1 < ncols) line += std::string(width[i] - cell.size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  emit(headers);
  for (const auto& row : rows) emit(row);
  return out;
}

std::string humanBytes(uint64_t bytes) { return storage::formatBytes(bytes); }

std::string contextValue(const std::map<std::string, std::string>& context,
                         std::initializer_list<std::string_view> names) {
  for (std::string_view want : names) {
    for (const auto& [key, value] : context) {
      std::size_t slash = key.rfind('/');
      std::string last = slash == std::string::npos ? key : key.substr(slash + 1);
      if (lower(last) == lower(want)) return value;
    }
  }
  return "";
}

std::string renderVolumes(const std::vector<VolumeView>& volumes, bool json) {
  if (json) {
    json::array arr;
    for (const VolumeView& v : volumes) arr.push_back(volumeJson(v));
    return pretty(json::object{{"volumes", std::move(arr)}});
  }
  if (volumes.empty()) return "no volumes\n";
  bool with_name = std::any_of(volumes.begin(), volumes.end(),
                               [](const VolumeView& v) { return !v.name.empty(); });
  std::vector<std::vector<std::string>> rows;
  for (const VolumeView& v : volumes) rows.push_back(volumeRow(v, with_name));
  return renderTable(volumeHeaders(with_name), rows);
}

std::string renderVolume(const VolumeView& volume, bool json) {
  if (json) return pretty(volumeJson(volume));
  return renderTable(volumeHeaders(!volume.name.empty()),
                     {volumeRow(volume, !volume.name.empty())});
}

absl::StatusOr<Inventory> parseInventoryJson(std::string_view text) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return absl::InvalidArgumentError("inventory JSON: " + ec.message());
  if (!root.is_object()) return absl::InvalidArgumentError("inventory JSON: not an object");
  const json::object& o = root.as_object();
  JsonReader r{""};
  Inventory inv;
  CTL_ASSIGN(inv.node, getString(o, r, "node"));
  CTL_ASSIGN(inv.snapshot.generation, getU64(o, r, "generation"));
  const json::array* groups = nullptr;
  CTL_ASSIGN(groups, getArray(o, r, "groups"));
  for (std::size_t gi = 0; gi < groups->size(); ++gi) {
    JsonReader gr{"groups[" + std::to_string(gi) + "]"};
    if (!(*groups)[gi].is_object()) return gr.bad("", "not an object");
    const json::object& go = (*groups)[gi].as_object();
    storage::GroupSnapshot g;
    CTL_ASSIGN(g.name, getString(go, gr, "name", true));
    std::string policy;
    CTL_ASSIGN(policy, getString(go, gr, "policy"));
    if (lower(policy) == "lvm") {
      g.policy = core::DiskPolicy::Lvm;
    } else if (policy.empty() || lower(policy) == "raw") {
      g.policy = core::DiskPolicy::Raw;
    } else {
      return gr.bad("policy", "unknown policy \"" + policy + "\"");
    }
    CTL_ASSIGN(g.total_bytes, getU64(go, gr, "totalBytes"));
    CTL_ASSIGN(g.free_bytes, getU64(go, gr, "freeBytes"));
    CTL_ASSIGN(g.largest_allocatable_bytes, getU64(go, gr, "largestAllocatableBytes"));
    uint64_t empty = 0;
    CTL_ASSIGN(empty, getU64(go, gr, "emptyDisks"));
    if (empty > UINT32_MAX) return gr.bad("emptyDisks", "too large");
    g.empty_disks = static_cast<uint32_t>(empty);
    const json::array* disks = nullptr;
    CTL_ASSIGN(disks, getArray(go, gr, "disks"));
    for (std::size_t di = 0; di < disks->size(); ++di) {
      JsonReader dr{gr.path + ".disks[" + std::to_string(di) + "]"};
      storage::DiskSnapshot d;
      CTL_ASSIGN(d, parseDisk((*disks)[di], dr, g.name, g.policy));
      g.disks.push_back(std::move(d));
    }
    inv.snapshot.groups.push_back(std::move(g));
  }
  const json::array* unassigned = nullptr;
  CTL_ASSIGN(unassigned, getArray(o, r, "unassigned"));
  for (std::size_t i = 0; i < unassigned->size(); ++i) {
    JsonReader ur{"unassigned[" + std::to_string(i) + "]"};
    if (!(*unassigned)[i].is_object()) return ur.bad("", "not an object");
    storage::DiskInfo d;
    CTL_ASSIGN(d, parseDiskInfo((*unassigned)[i].as_object(), ur));
    inv.snapshot.unassigned.push_back(std::move(d));
  }
  return inv;
}

absl::StatusOr<RequestsView> parseRequestsJson(std::string_view text) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return absl::InvalidArgumentError("requests JSON: " + ec.message());
  if (!root.is_object()) return absl::InvalidArgumentError("requests JSON: not an object");
  const json::object& o = root.as_object();
  JsonReader r{""};
  RequestsView out;
  CTL_ASSIGN(out.window_size, getU64(o, r, "windowSize"));
  const json::array* paths = nullptr;
  CTL_ASSIGN(paths, getArray(o, r, "paths"));
  for (std::size_t i = 0; i < paths->size(); ++i) {
    JsonReader pr{"paths[" + std::to_string(i) + "]"};
    if (!(*paths)[i].is_object()) return pr.bad("", "not an object");
    const json::object& po = (*paths)[i].as_object();
    RequestPathView p;
    CTL_ASSIGN(p.path, getString(po, pr, "path", true));
    CTL_ASSIGN(p.count, getU64(po, pr, "count"));
    CTL_ASSIGN(p.errors, getU64(po, pr, "errors"));
    CTL_ASSIGN(p.window, getU64(po, pr, "window"));
    CTL_ASSIGN(p.p50_us, getU64(po, pr, "p50Micros"));
    CTL_ASSIGN(p.p90_us, getU64(po, pr, "p90Micros"));
    CTL_ASSIGN(p.p99_us, getU64(po, pr, "p99Micros"));
    CTL_ASSIGN(p.max_us, getU64(po, pr, "maxMicros"));
    out.paths.push_back(std::move(p));
  }
  return out;
}

namespace {

/** Microseconds as "850us" or "1.25ms". */
std::string micros(uint64_t us) {
  if (us < 1000) return std::to_string(us) + "us";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fms", static_cast<double>(us) / 1000.0);
  return buf;
}

}  // namespace

std::string renderRequests(const RequestsView& requests, bool json) {
  if (json) {
    json::array paths;
    for (const RequestPathView& p : requests.paths) {
      paths.push_back(json::object{{"path", p.path},
                                   {"count", p.count},
                                   {"errors", p.errors},
                                   {"window", p.window},
                                   {"p50Micros", p.p50_us},
                                   {"p90Micros", p.p90_us},
                                   {"p99Micros", p.p99_us},
                                   {"maxMicros", p.max_us}});
    }
    return pretty(json::object{{"windowSize", requests.window_size}, {"paths", std::move(paths)}});
  }
  if (requests.paths.empty()) return "no requests yet\n";
  std::vector<std::vector<std::string>> rows;
  for (const RequestPathView& p : requests.paths) {
    rows.push_back({p.path, std::to_string(p.count), std::to_string(p.errors),
                    std::to_string(p.window), micros(p.p50_us), micros(p.p90_us), micros(p.p99_us),
                    micros(p.max_us)});
  }
  return renderTable({"PATH", "REQUESTS", "ERRORS", "WINDOW", "P50", "P90", "P99", "MAX"}, rows) +
         "latency: server side, request read to reply written, over the last WINDOW requests of "
         "each path\n";
}

std::string renderDisks(const Inventory& inv, bool json) {
  if (json) {
    json::object root;
    root["node"] = inv.node;
    root["generation"] = inv.snapshot.generation;
    json::array groups;
    for (const storage::GroupSnapshot& g : inv.snapshot.groups) {
      json::array disks;
      for (const storage::DiskSnapshot& d : g.disks) {
        json::array segs;
        for (const storage::Segment& s : d.space.free) {
          segs.push_back(json::object{{"start", s.start}, {"length", s.length}});
        }
        disks.push_back(json::object{{"name", d.info.name},
                                     {"devnode", d.info.devnode},
                                     {"sizeBytes", d.info.size_bytes},
                                     {"partitions", d.space.partitions},
                                     {"exclusive", d.space.exclusive},
                                     {"freeBytes", freeOf(d)},
                                     {"largestFreeBytes", d.largest_free_bytes},
                                     {"freeSegments", std::move(segs)}});
      }
      groups.push_back(json::object{{"name", g.name},
                                    {"policy", std::string(core::toString(g.policy))},
                                    {"totalBytes", g.total_bytes},
                                    {"freeBytes", g.free_bytes},
                                    {"largestAllocatableBytes", g.largest_allocatable_bytes},
                                    {"emptyDisks", g.empty_disks},
                                    {"disks", std::move(disks)}});
    }
    root["groups"] = std::move(groups);
    json::array unassigned;
    for (const storage::DiskInfo& d : inv.snapshot.unassigned) {
      unassigned.push_back(json::object{{"name", d.name},
                                        {"devnode", d.devnode},
                                        {"group", d.group},
                                        {"sizeBytes", d.size_bytes},
                                        {"reason", d.reason}});
    }
    root["unassigned"] = std::move(unassigned);
    return pretty(root);
  }
  std::string out;
  if (!inv.node.empty()) out += "node " + inv.node + "\n\n";
  if (inv.snapshot.groups.empty()) {
    out += "no disk groups\n";
  } else {
    std::vector<std::vector<std::string>> grows;
    std::vector<std::vector<std::string>> drows;
    for (const storage::GroupSnapshot& g : inv.snapshot.groups) {
      grows.push_back({g.name, std::string(core::toString(g.policy)),
                       std::to_string(g.disks.size()), humanBytes(g.total_bytes),
                       humanBytes(g.free_bytes), humanBytes(g.largest_allocatable_bytes),
                       std::to_string(g.empty_disks)});
      for (const storage::DiskSnapshot& d : g.disks) {
        drows.push_back({d.info.name, g.name, orDash(d.info.devnode), humanBytes(d.info.size_bytes),
                         std::to_string(d.space.partitions), d.space.exclusive ? "yes" : "no",
                         humanBytes(freeOf(d)), humanBytes(d.largest_free_bytes)});
      }
    }
    out += renderTable({"GROUP", "POLICY", "DISKS", "TOTAL", "FREE", "LARGEST FREE", "EMPTY DISKS"},
                       grows);
    out += "\n";
    out += drows.empty() ? std::string("no disks in any group\n")
                         : renderTable({"DISK", "GROUP", "DEVICE", "SIZE", "PARTITIONS",
                                        "EXCLUSIVE", "FREE", "LARGEST FREE"},
                                       drows);
  }
  if (!inv.snapshot.unassigned.empty()) {
    std::vector<std::vector<std::string>> urows;
    for (const storage::DiskInfo& d : inv.snapshot.unassigned) {
      urows.push_back(
          {d.name, orDash(d.devnode), humanBytes(d.size_bytes), orDash(d.group), orDash(d.reason)});
    }
    out += "\n";
    out += renderTable({"UNASSIGNED", "DEVICE", "SIZE", "GROUP", "REASON"}, urows);
  }
  return out;
}

std::string renderStats(const StatsView& stats, bool json) {
  if (json) {
    json::object o;
    o["volumeId"] = stats.volume_id;
    if (!stats.name.empty()) o["name"] = stats.name;
    o["path"] = stats.path;
    json::array usage;
    for (const UsageView& u : stats.usage) {
      usage.push_back(json::object{
          {"unit", u.unit}, {"total", u.total}, {"used", u.used}, {"available", u.available}});
    }
    o["usage"] = std::move(usage);
    if (stats.abnormal) {
      o["condition"] =
          json::object{{"abnormal", *stats.abnormal}, {"message", stats.condition_message}};
    }
    return pretty(o);
  }
  std::string out = "volume " + stats.volume_id;
  if (!stats.name.empty()) out += " (" + stats.name + ")";
  out += " at " + stats.path + "\n";
  std::vector<std::vector<std::string>> rows;
  for (const UsageView& u : stats.usage) {
    bool bytes = u.unit == "bytes";
    auto fmt = [&](uint64_t v) { return bytes ? humanBytes(v) : std::to_string(v); };
    std::string pct =
        u.total == 0 ? "-" : std::to_string((u.used * 100 + u.total - 1) / u.total) + "%";
    rows.push_back({u.unit, fmt(u.total), fmt(u.used), fmt(u.available), pct});
  }
  if (rows.empty()) {
    out += "no usage reported\n";
  } else {
    out += renderTable({"UNIT", "TOTAL", "USED", "AVAILABLE", "USE%"}, rows);
  }
  if (stats.abnormal) {
    out += std::string("condition: ") + (*stats.abnormal ? "ABNORMAL" : "normal");
    if (!stats.condition_message.empty()) out += " (" + stats.condition_message + ")";
    out += "\n";
  }
  return out;
}

std::string renderProbe(const ProbeView& probe, bool json) {
  bool ready = probe.ready.value_or(true);
  if (json) {
    json::array caps;
    for (const std::string& c : probe.capabilities) caps.push_back(json::string(c));
    return pretty(json::object{{"driver", probe.driver},
                               {"version", probe.version},
                               {"ready", ready},
                               {"nodeId", probe.node_id},
                               {"capabilities", std::move(caps)}});
  }
  std::string caps;
  for (const std::string& c : probe.capabilities) caps += (caps.empty() ? "" : ",") + c;
  return renderTable({"DRIVER", "VERSION", "READY", "NODE", "CAPABILITIES"},
                     {{orDash(probe.driver), orDash(probe.version), ready ? "yes" : "no",
                       orDash(probe.node_id), orDash(caps)}});
}

std::string renderAction(const ActionView& action, bool json) {
  if (json) {
    json::object o;
    o["action"] = action.action;
    for (const auto& [k, v] : action.fields) o[k] = v;
    return pretty(o);
  }
  return action.text + "\n";
}

std::string renderError(const absl::Status& status, bool json) {
  std::string code = absl::StatusCodeToString(status.code());
  std::string message(status.message());
  if (json) {
    return pretty(json::object{{"error", json::object{{"code", code}, {"message", message}}}});
  }
  return "error: " + code + ": " + message + "\n";
}

}  // namespace carina::ctl
