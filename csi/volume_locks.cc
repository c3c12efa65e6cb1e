#include "csi/volume_locks.h"

namespace carina::csi {

VolumeLocks::Guard::~Guard() {
  if (locks_ != nullptr) {
    locks_->release(id_);
  }
}

std::optional<VolumeLocks::Guard> VolumeLocks::tryLock(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!busy_.insert(id).second) {
    return std::nullopt;
  }
  return std::optional<Guard>(std::in_place, this, id);
}

bool VolumeLocks::isLocked(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_.count(id) != 0;
}

void VolumeLocks::release(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  busy_.erase(id);
}

}  // namespace carina::csi
