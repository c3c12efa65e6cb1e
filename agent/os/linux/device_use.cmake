# Is a block device in use (holders, mounts, exclusive claim, open fds)? For the orphan reconciler.
target_sources(carina_os_linux PRIVATE ${CMAKE_CURRENT_LIST_DIR}/device_use.cc)
