# Disk discovery (libudev enumeration + kernel uevents, libblkid signatures) and the inotify
# config-file watcher.
target_sources(carina_os_linux PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/udev_block_devices.cc
  ${CMAKE_CURRENT_LIST_DIR}/blkid_probe.cc
  ${CMAKE_CURRENT_LIST_DIR}/inotify_file_watcher.cc)
