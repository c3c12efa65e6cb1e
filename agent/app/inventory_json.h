#pragma once

// JSON rendering of the node's disk inventory, served by the agent at GET /debug/inventory and
// read by `carinactl disks`. The same field names as the NodeStorageResource status
// (manifests/10-crds.yaml), all sizes in bytes:
//
// {
//   "node": "worker-1", "generation": 7,
//   "groups": [
//     { "name": "raw-ssd", "policy": "RAW", "totalBytes": N, "freeBytes": N,
//       "largestAllocatableBytes": N, "emptyDisks": N,
//       "disks": [ { "name": "loop3", "devnode": "/dev/loop3", "sizeBytes": N,
//                    "partitions": N, "exclusive": false, "largestFreeBytes": N,
//                    "freeSegments": [ { "start": N, "length": N } ] } ] } ],
//   "unassigned": [ { "name": "loop4", "devnode": "/dev/loop4", "group": "raw-ssd",
//                     "sizeBytes": N, "reason": "has xfs filesystem signature" } ]
// }

#include <string>

#include "agent/cluster/cluster_agent.h"
#include "agent/storage/disk_types.h"

namespace carina::app {

std::string inventoryToJson(const storage::InventorySnapshot& snapshot, const std::string& node);

/** Cluster mode counters, served at GET /debug/cluster:
 *  {"apiLive": true, "cachesSynced": true, "nodeStorageResourceWrites": N,
 *   "logicVolumes": {"created": N, "updated": N, "deleted": N}, "writeFailures": N,
 *   "syncs": N, "orphans": {"runs": N, "volumesDeleted": N, ...},
 *   "events": {"recorded": N, "created": N, ...}} */
std::string clusterStatsToJson(const cluster::ClusterAgentStats& stats);

}  // namespace carina::app
