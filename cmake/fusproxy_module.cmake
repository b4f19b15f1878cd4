# One folder = one module = one CMake target. A module's headers are visible only to the
# targets that link it: each module's include directory is a folder of its own in the
# build tree (build/module-include/<target>/<folder> -> the source folder), so
# `#include "http/routes.hpp"` from a target that does not link fusproxy_http fails to
# compile. scripts/check-deps.py checks the same rule from the includes (docs/architecture.md).
function(fusproxy_module_includes target folder)
  set(dir ${CMAKE_BINARY_DIR}/module-include/${target})
  if(NOT EXISTS ${dir}/${folder})
    get_filename_component(parent ${dir}/${folder} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${FUSPROXY_ROOT}/${folder} ${dir}/${folder} SYMBOLIC)
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${dir})
  else()
    target_include_directories(${target} PUBLIC ${dir})
  endif()
endfunction()
