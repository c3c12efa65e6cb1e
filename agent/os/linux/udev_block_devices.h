#pragma once

// BlockDeviceSource on libudev. Works without udevd: devices come from udev_enumerate (sysfs),
// events from the "kernel" netlink source (plus the "udev" source when /run/udev/control shows
// that udevd runs). Properties are read from sysfs, never from ID_* (absent without udevd).

#include <memory>

#include "agent/os/block_devices.h"

namespace carina::os {

/** The libudev-backed BlockDeviceSource (see agent/os/block_devices.h for the contract). */
BlockDeviceSourcePtr makeUdevBlockDeviceSource();

}  // namespace carina::os
