#pragma once

// SignatureProber on libblkid: superblocks (filesystems, RAID, LVM2_member, crypto_LUKS, swap)
// and the partition table with each partition's type and name. Read-only.

#include "agent/os/block_devices.h"

namespace carina::os {

/** The libblkid-backed SignatureProber (see agent/os/block_devices.h for the contract). */
SignatureProberPtr makeBlkidSignatureProber();

}  // namespace carina::os
