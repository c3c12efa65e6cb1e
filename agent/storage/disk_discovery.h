#pragma once

// The disk watcher: enumerates block devices, probes the matched ones, evaluates eligibility
// (disk_inventory.h) and reports the full list whenever it changes. Triggers: kernel uevents
// (debounced, ~200 ms), a periodic rescan every diskScanInterval seconds (the safety net: mounts
// and holders change without uevents), an explicit rescan() and updateConfig().
//
// Threading: everything runs on a strand of the given executor; enumeration and libblkid
// probing run on the given thread pool through carina::runBlocking, never on io threads.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <absl/status/statusor.h>

#include "agent/core/async.h"
#include "agent/os/block_devices.h"
#include "agent/storage/disk_inventory.h"
#include "agent/storage/disk_types.h"

namespace boost::asio {
class thread_pool;
}  // namespace boost::asio

namespace carina::storage {

/**
 * One full discovery cycle, synchronously: enumerate, probe every matched whole disk (and only
 * those: other devices are never opened), evaluate. Blocking; read-only on every device.
 * @return the error of enumerate(); probe errors make the disk ineligible instead.
 */
absl::StatusOr<std::vector<DiskInfo>> scanDisks(os::BlockDeviceSource& source,
                                                os::SignatureProber& prober,
                                                const DiskSelectorSet& selectors,
                                                uint64_t min_disk_size_bytes);

struct DiskDiscoveryOptions {
  std::chrono::milliseconds debounce{200};  // quiet time after the first event of a burst
};

class DiskDiscovery {
public:
  /** Receives every matched disk, eligible or not, sorted by name (see evaluateDisks()). */
  using Callback = std::function<void(const std::vector<DiskInfo>&)>;

  /**
   * @param executor where the callback runs (through an internal strand).
   * @param pool runs enumeration and probing; must outlive the last pending scan (join it after
   *        stop()).
   * @param on_change called after the first scan and whenever the list changes afterwards.
   */
  DiskDiscovery(Executor executor, boost::asio::thread_pool& pool, os::BlockDeviceSourcePtr source,
                os::SignatureProberPtr prober, DiscoveryConfig config, Callback on_change,
                DiskDiscoveryOptions options = {});
  ~DiskDiscovery();
  DiskDiscovery(const DiskDiscovery&) = delete;
  DiskDiscovery& operator=(const DiskDiscovery&) = delete;

  /**
   * Validates the config, opens the event monitor (before the first enumeration, so nothing is
   * missed) and schedules the first scan. A monitor that cannot be opened is logged, not an
   * error: the periodic rescan still works.
   * @return InvalidArgument for a bad selector regex; FailedPrecondition if already started.
   */
  absl::Status start();

  /** Stops watching: no callback starts after stop() returns. Idempotent; the destructor calls
   *  it. A scan already running on the pool finishes there and is discarded. */
  void stop();

  /** Schedules a scan now (for config changes, after the partition engine wrote a table).
   *  Thread-safe. Scans never overlap: a request during a scan runs one more scan after it. */
  void rescan();

  /**
   * Replaces selectors, minimum size, scan interval and node labels, then rescans.
   * Thread-safe. @return InvalidArgument for a bad regex (the old config stays in effect).
   */
  absl::Status updateConfig(DiscoveryConfig config);

  /** The latest result (empty before the first scan). Thread-safe. */
  std::vector<DiskInfo> current() const;

  /** Number of completed scans (for tests of the debounce). Thread-safe. */
  uint64_t scanCountForTest() const;

  struct State;

private:
  std::shared_ptr<State> state_;
};
using DiskDiscoveryPtr = std::unique_ptr<DiskDiscovery>;

}  // namespace carina::storage
