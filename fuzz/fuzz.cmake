# Included by the top-level CMakeLists.txt. The fuzz targets need clang and libFuzzer, so
# they live in a build directory of their own (${CMAKE_BINARY_DIR}/fuzz, configured by
# fuzz/run.sh with CC=clang CXX=clang++): the main build keeps its compiler.
#   -DFUSPROXY_FUZZ=ON   the `fuzzers` target (part of `all`) builds them
#   ctest -L fuzz        runs each for 10 s (skipped, 77, without clang's libFuzzer runtime)
option(FUSPROXY_FUZZ "build the libFuzzer targets (clang, in ${CMAKE_BINARY_DIR}/fuzz)" OFF)
if(FUSPROXY_FUZZ)
  add_custom_target(fuzzers ALL
    COMMAND ${CMAKE_COMMAND} -E env FUZZ_SECONDS=0 FUZZ_BUILD_DIR=${CMAKE_BINARY_DIR}/fuzz
      FUZZ_BUILD_ONLY=1 bash ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run.sh
    COMMENT "clang libFuzzer targets in ${CMAKE_BINARY_DIR}/fuzz" VERBATIM)
endif()
foreach(t http_request upstream_xml zip_directory tar_reader lz4_frame)
  add_test(NAME fuzz_${t}
    COMMAND ${CMAKE_COMMAND} -E env FUZZ_SECONDS=10 FUZZ_BUILD_DIR=${CMAKE_BINARY_DIR}/fuzz
      FUZZ_SHARED_DIR=${FUSPROXY_SHARED_DIR} bash ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run.sh ${t})
  set_tests_properties(fuzz_${t} PROPERTIES LABELS fuzz SKIP_RETURN_CODE 77 TIMEOUT 900)
endforeach()
