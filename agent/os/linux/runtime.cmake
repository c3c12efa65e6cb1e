# Commands and mounts: posix_spawn runner, mount(2) mounter.
target_sources(carina_os_linux PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/spawn_command_runner.cc
  ${CMAKE_CURRENT_LIST_DIR}/linux_mounter.cc)
