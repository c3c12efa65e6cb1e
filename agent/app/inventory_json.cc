#include "agent/app/inventory_json.h"

#include <boost/json.hpp>

namespace carina::app {
namespace {

namespace json = boost::json;

json::object diskInfoJson(const storage::DiskInfo& d) {
  json::object o;
  o["name"] = d.name;
  o["devnode"] = d.devnode;
  o["group"] = d.group;
  o["sizeBytes"] = d.size_bytes;
  o["reason"] = d.reason;
  return o;
}

}  // namespace

std::string inventoryToJson(const storage::InventorySnapshot& snapshot, const std::string& node) {
  json::object root;
  root["node"] = node;
  root["generation"] = snapshot.generation;
  json::array groups;
  for (const storage::GroupSnapshot& g : snapshot.groups) {
    json::object go;
    go["name"] = g.name;
    go["policy"] = std::string(core::toString(g.policy));
    go["totalBytes"] = g.total_bytes;
    go["freeBytes"] = g.free_bytes;
    go["largestAllocatableBytes"] = g.largest_allocatable_bytes;
    go["emptyDisks"] = g.empty_disks;
    json::array disks;
    for (const storage::DiskSnapshot& d : g.disks) {
      json::object dobj;
      dobj["name"] = d.info.name;
      dobj["devnode"] = d.info.devnode;
      dobj["sizeBytes"] = d.info.size_bytes;
      dobj["partitions"] = d.space.partitions;
      dobj["exclusive"] = d.space.exclusive;
      dobj["largestFreeBytes"] = d.largest_free_bytes;
      json::array segs;
      for (const storage::Segment& s : d.space.free) {
        segs.push_back(json::object{{"start", s.start}, {"length", s.length}});
      }
      dobj["freeSegments"] = std::move(segs);
      disks.push_back(std::move(dobj));
    }
    go["disks"] = std::move(disks);
    groups.push_back(std::move(go));
  }
  root["groups"] = std::move(groups);
  json::array unassigned;
  for (const storage::DiskInfo& d : snapshot.unassigned) {
    unassigned.push_back(diskInfoJson(d));
  }
  root["unassigned"] = std::move(unassigned);
  return json::serialize(root);
}

std::string clusterStatsToJson(const cluster::ClusterAgentStats& st) {
  json::object o;
  o["apiLive"] = st.api_live;
  o["cachesSynced"] = st.caches_synced;
  o["syncs"] = st.syncs;
  o["nodeStorageResourceWrites"] = st.nsr_writes;
  o["writeFailures"] = st.write_failures;
  o["logicVolumes"] = json::object{
      {"created", st.lv_creates}, {"updated", st.lv_updates}, {"deleted", st.lv_deletes}};
  o["orphans"] = json::object{{"runs", st.orphans.runs},
                              {"volumesDeleted", st.orphans.volumes_deleted},
                              {"logicVolumesDeleted", st.orphans.logic_volumes_deleted},
                              {"skippedInUse", st.orphans.skipped_in_use},
                              {"skippedUnsynced", st.orphans.skipped_unsynced},
                              {"failures", st.orphans.failures},
                              {"dryRunReports", st.orphans.dry_run_reports},
                              {"recheckAborts", st.orphans.recheck_aborts}};
  o["events"] = json::object{{"recorded", st.events.recorded},     {"created", st.events.created},
                             {"aggregated", st.events.aggregated}, {"retries", st.events.retries},
                             {"dropped", st.events.dropped},       {"failed", st.events.failed},
                             {"queued", st.events.queued}};
  return json::serialize(o);
}

}  // namespace carina::app
