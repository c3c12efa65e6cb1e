# Warnings for our own targets. Generated and third-party code is exempt (SYSTEM includes,
# separate targets). -Wconversion is added for storage and extender, where sizes are arithmetic.
set(CARINA_WARNING_FLAGS
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual -Wold-style-cast
    -Wcast-align -Wimplicit-fallthrough)
# -Wnull-dereference is left out: it is flow-based and fires on inlined Boost.Asio and gRPC code
# at -O2 (scheduler.ipp), where we cannot fix it.

function(carina_warnings target)
  cmake_parse_arguments(ARG "CONVERSION" "" "" ${ARGN})
  target_compile_options(${target} PRIVATE ${CARINA_WARNING_FLAGS})
  if(ARG_CONVERSION)
    target_compile_options(${target} PRIVATE -Wconversion -Wsign-conversion)
  endif()
  if(CARINA_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# carina_library(<name> [CONVERSION] SOURCES ... ) -> target carina_<name>, alias carina::<name>
function(carina_library name)
  cmake_parse_arguments(ARG "CONVERSION;INTERFACE" "" "SOURCES" ${ARGN})
  if(ARG_INTERFACE)
    add_library(carina_${name} INTERFACE)
  else()
    add_library(carina_${name} STATIC ${ARG_SOURCES})
    target_include_directories(carina_${name} PUBLIC ${PROJECT_SOURCE_DIR})
    if(ARG_CONVERSION)
      carina_warnings(carina_${name} CONVERSION)
    else()
      carina_warnings(carina_${name})
    endif()
  endif()
  add_library(carina::${name} ALIAS carina_${name})
endfunction()
