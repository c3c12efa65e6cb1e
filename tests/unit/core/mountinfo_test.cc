#include "agent/core/mountinfo.h"

#include <catch2/catch.hpp>

TEST_CASE("parseMountInfo reads fields, optional tags and escapes", "[unit][core]") {
  // Captured from /proc/self/mountinfo on Debian 12 (kernel 6.x), one line edited for a space.
  const char* text =
      "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,errors=remount-ro\n"
      "130 22 259:3 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pvc\\0401/mount "
      "rw,relatime shared:70 master:3 - xfs /dev/loop3p1 rw,attr2,inode64\n"
      "garbage line\n"
      "131 22 0:45 /sub /mnt/bind ro - tmpfs tmpfs rw\n";
  auto entries = carina::core::parseMountInfo(text);
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].mount_point == "/");
  CHECK(entries[0].fs_type == "ext4");
  CHECK(entries[0].major == 254);
  CHECK(entries[1].mount_point == "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/pvc 1/mount");
  CHECK(entries[1].source == "/dev/loop3p1");
  CHECK(entries[1].major == 259);
  CHECK(entries[1].minor == 3);
  CHECK(entries[1].fs_type == "xfs");
  CHECK(entries[2].root == "/sub");
  CHECK(entries[2].options == "ro");
  CHECK(carina::core::unescapeMountField("a\\134b\\011") == "a\\b\t");
  CHECK(carina::core::unescapeMountField("tail\\04") == "tail\\04");
}
