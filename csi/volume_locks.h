#pragma once

// Per-volume serialization for the CSI handlers: a second operation on a busy volume id gets
// ABORTED at once (CSI spec: "operation pending for volume"), it is never queued. TopoLVM's
// LockByID made non-blocking. Thread-safe (a mutex around a set), so it does not depend on
// which executor the handlers run on.

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace carina::csi {

class VolumeLocks {
public:
  /** Holds one volume id; releases it when destroyed. Movable. */
  class Guard {
  public:
    Guard(VolumeLocks* locks, std::string id) : locks_(locks), id_(std::move(id)) {}
    Guard(Guard&& other) noexcept
        : locks_(std::exchange(other.locks_, nullptr)), id_(std::move(other.id_)) {}
    Guard& operator=(Guard&&) = delete;
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard();

  private:
    VolumeLocks* locks_;
    std::string id_;
  };

  /** The guard for @p id, or nullopt when another operation holds it. */
  std::optional<Guard> tryLock(const std::string& id);
  bool isLocked(const std::string& id) const;

private:
  void release(const std::string& id);

  mutable std::mutex mu_;
  std::set<std::string> busy_;
};

}  // namespace carina::csi
