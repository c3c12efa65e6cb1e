# libfdisk partition table (agent/os/partition_table.h).
target_sources(carina_os_linux PRIVATE ${CMAKE_CURRENT_LIST_DIR}/fdisk_partition_table.cc)
