# Partition engine: fake-table tests, fault matrix, and libfdisk on plain image files (no root).
list(APPEND UNIT_STORAGE_SOURCES
  partition_engine_test.cc
  partition_fault_test.cc
  partition_fdisk_image_test.cc)
list(APPEND UNIT_STORAGE_LIBS carina::os_linux)
