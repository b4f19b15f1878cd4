# fus-sim server tests (sim/simulator, server, session, faults, stats): included from
# tests/sim/CMakeLists.txt.

# Pure pieces: fault SPEC, Range, Authorization, sessions, IMEI, the sans-I/O core.
fusproxy_unit_test(sim_server_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/server_core_tests.cpp ${CMAKE_CURRENT_LIST_DIR}/simulator_tests.cpp
    ${CMAKE_CURRENT_LIST_DIR}/strict_faults_tests.cpp
  LIBS fusproxy_sim)

# The acceptance test: an independent Python client (stdlib + Debian's python3-cryptography,
# no project code) drives each dialect end to end against a real fus-sim.
find_program(FUSPROXY_PYTHON3 python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT FUSPROXY_PYTHON3)
  find_program(FUSPROXY_PYTHON3 python3 REQUIRED)
endif()
foreach(dialect smart2 legacy)
  add_test(NAME sim_independent_client_${dialect}
    COMMAND ${FUSPROXY_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/independent_client.py
      --fus-sim $<TARGET_FILE:fus-sim> --dialect ${dialect})
  set_tests_properties(sim_independent_client_${dialect} PROPERTIES TIMEOUT 120)
endforeach()

# Refusals, every fault mode, throttle, stats, loopback-only bind: one CTest test per case.
foreach(name stale_nonce encoded_file_param init_for_mass_required bad_logic_check
    imei_required ranges bind_refused fault_drop_after fault_status fault_auth401
    fault_firewall fault_slow_first_byte fault_truncate fault_bad_crc fault_no_name fault_max_conns
    throttle stats multi_csc_and_catalogue_file content_md5 fault_reset fault_metadata_answers
    fault_ranges fault_trickle fault_stall strict_session)
  add_test(NAME sim_${name}
    COMMAND ${FUSPROXY_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/sim_behaviour.py
      --fus-sim $<TARGET_FILE:fus-sim> ${name})
  set_tests_properties(sim_${name} PROPERTIES TIMEOUT 60)
endforeach()

# /_sim/builds/{name}/members (issue 14's truth) against zipfile, GNU tar, md5sum and lz4 -d of
# small builds downloaded over FUS with the independent client's code.
add_test(NAME sim_members_endpoint
  COMMAND ${FUSPROXY_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/members_endpoint.py
    --fus-sim $<TARGET_FILE:fus-sim>)
set_tests_properties(sim_members_endpoint PROPERTIES TIMEOUT 180)
