#include "agent/os/linux/blkid_probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <blkid/blkid.h>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <memory>

#include "agent/core/status.h"

namespace carina::os {
namespace {

struct ProbeDeleter {
  void operator()(blkid_probe pr) const { blkid_free_probe(pr); }
};
using ProbePtr = std::unique_ptr<std::remove_pointer_t<blkid_probe>, ProbeDeleter>;

std::string lookup(blkid_probe pr, const char* name) {
  const char* value = nullptr;
  size_t len = 0;
  if (blkid_probe_lookup_value(pr, name, &value, &len) != 0 || value == nullptr) {
    return "";
  }
  std::string s(value, len);
  while (!s.empty() && s.back() == '\0') {
    s.pop_back();
  }
  return s;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

class BlkidSignatureProber final : public SignatureProber {
public:
  // SignatureProber
  absl::StatusOr<DeviceSignatures> probe(const std::string& devnode) override {
    // Our own read-only fd (blkid_new_probe_from_filename would do the same); never O_EXCL, so
    // that probing never disturbs users of the device.
    int fd = open(devnode.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      return errnoStatus("open " + devnode, errno);
    }
    struct FdCloser {
      int fd;
      ~FdCloser() { close(fd); }
    } closer{fd};
    ProbePtr pr(blkid_new_probe());
    if (!pr) {
      return absl::InternalError("blkid_new_probe failed");
    }
    if (blkid_probe_set_device(pr.get(), fd, 0, 0) != 0) {
      return absl::InternalError("blkid_probe_set_device " + devnode + " failed");
    }
    blkid_probe_enable_superblocks(pr.get(), 1);
    blkid_probe_set_superblocks_flags(pr.get(), BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE);
    blkid_probe_enable_partitions(pr.get(), 1);
    blkid_probe_set_partitions_flags(pr.get(), BLKID_PARTS_ENTRY_DETAILS);

    DeviceSignatures sig;
    int rc = blkid_do_safeprobe(pr.get());
    if (rc == -2) {
      sig.ambivalent = true;  // several signatures: certainly not empty
    } else if (rc < 0) {
      return absl::InternalError("blkid_do_safeprobe " + devnode + " failed");
    } else if (rc == 0) {
      sig.type = lookup(pr.get(), "TYPE");
      sig.usage = lookup(pr.get(), "USAGE");
      sig.pttype = lookup(pr.get(), "PTTYPE");
    }

    // The partition list: blkid_probe_get_partitions() probes the partitions chain on its own.
    blkid_partlist list = blkid_probe_get_partitions(pr.get());
    if (list != nullptr) {
      if (blkid_parttable table = blkid_partlist_get_table(list); table != nullptr) {
        if (sig.pttype.empty()) {
          const char* t = blkid_parttable_get_type(table);
          sig.pttype = t == nullptr ? "unknown" : t;
        }
      }
      int n = blkid_partlist_numof_partitions(list);
      for (int i = 0; i < n; ++i) {
        blkid_partition par = blkid_partlist_get_partition(list, i);
        if (par == nullptr) {
          continue;
        }
        TablePartition tp;
        tp.number = static_cast<uint32_t>(std::max(0, blkid_partition_get_partno(par)));
        if (const char* t = blkid_partition_get_type_string(par); t != nullptr) {
          tp.type = upper(t);
        } else {
          char buf[16];
          snprintf(buf, sizeof(buf), "0x%x", blkid_partition_get_type(par));
          tp.type = buf;
        }
        if (const char* name = blkid_partition_get_name(par); name != nullptr) {
          tp.name = name;
        }
        tp.start_bytes = static_cast<uint64_t>(blkid_partition_get_start(par)) * 512;
        tp.size_bytes = static_cast<uint64_t>(blkid_partition_get_size(par)) * 512;
        sig.partitions.push_back(std::move(tp));
      }
    }
    return sig;
  }
};

}  // namespace

SignatureProberPtr makeBlkidSignatureProber() { return std::make_unique<BlkidSignatureProber>(); }

}  // namespace carina::os
