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

#include "agent/storage/disk_types.h"

namespace carina::app {

std::string inventoryToJson(const storage::InventorySnapshot& snapshot, const std::string& node);

}  // namespace carina::app
