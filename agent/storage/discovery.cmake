# Disk inventory (pure eligibility) and the async disk watcher.
target_sources(carina_storage PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/disk_inventory.cc
  ${CMAKE_CURRENT_LIST_DIR}/disk_discovery.cc)
