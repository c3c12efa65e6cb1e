#pragma once

// The storage interface the CSI services see: one implementation per engine (GPT partitions on
// RAW groups; LVM later). Implementations are thread-safe and BLOCKING (they write partition
// tables and talk to the kernel): async callers run them through runBlocking() on the blocking
// pool. Operations on one disk are serialized inside the implementation; different disks
// proceed in parallel.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <absl/status/statusor.h>

#include "agent/storage/disk_types.h"

namespace carina::storage {

struct VolumeSpec {
  std::string name;             // CSI CreateVolume name; the volume's identity
  uint64_t required_bytes = 0;  // rounded up to 1 MiB
  uint64_t limit_bytes = 0;     // 0 = no limit; the result must not exceed it
  std::string group;            // diskSelector name; "" = the node's only group of this kind
  bool exclusive = false;       // a whole disk for this volume (expandable up to the disk)
};

struct Volume {
  std::string id;  // stable volume id, derived from the name (see volumeIdForName)
  std::string group;
  std::string disk;    // kernel name of the disk, "sdb"
  std::string device;  // block device node of the volume, "/dev/sdb3"
  uint64_t size_bytes = 0;
  uint64_t max_bytes = 0;  // how far it can grow in place right now
  bool exclusive = false;
  friend bool operator==(const Volume&, const Volume&) = default;
};

/** The volume id for a CSI volume name: "carina-" + 29 hex digits of SHA-256(name). It is also
 *  the GPT partition name (36 UTF-16 code units at most), so volumes are found from the disks
 *  alone after a restart. */
std::string volumeIdForName(const std::string& name);

class VolumeBackend {
public:
  virtual ~VolumeBackend() = default;

  /** Creates the volume, or returns the existing one with the same name when it is compatible
   *  (same group and exclusivity, size within [required, limit]). Blocking; thread-safe.
   *  @return InvalidArgument (bad spec, unknown group, no group named and not exactly one),
   *          AlreadyExists (same name, incompatible), ResourceExhausted (no space),
   *          OutOfRange (required > limit, or larger than any disk), Aborted (disk busy),
   *          Internal/NotFound (device errors, with context). */
  virtual absl::StatusOr<Volume> createVolume(const VolumeSpec& spec) = 0;

  /** Deletes the volume. OK when it does not exist (idempotent). FailedPrecondition when its
   *  device is in use (mounted/open). Blocking; thread-safe. */
  virtual absl::Status deleteVolume(const std::string& id) = 0;

  /** Grows the volume in place to at least @p new_bytes (1 MiB aligned). OK and unchanged when
   *  already that large. NotFound; OutOfRange/ResourceExhausted when the space after it is not
   *  free (shared) or beyond the disk (exclusive). Works while the volume is mounted. */
  virtual absl::StatusOr<Volume> expandVolume(const std::string& id, uint64_t new_bytes) = 0;

  virtual std::optional<Volume> findVolume(const std::string& id) = 0;
  virtual std::vector<Volume> listVolumes() = 0;
  virtual InventorySnapshot snapshot() = 0;
};

using VolumeBackendPtr = std::unique_ptr<VolumeBackend>;

}  // namespace carina::storage
