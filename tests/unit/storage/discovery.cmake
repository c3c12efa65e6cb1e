# Disk eligibility and the async disk watcher (with tests/fakes/fake_block_devices.h).
list(APPEND UNIT_STORAGE_SOURCES disk_inventory_test.cc disk_discovery_test.cc)
