# Fuzz targets (libFuzzer) that every build also replays as unit tests.
#
#   duet_fuzz_target(NAME <name> SOURCES <fuzz.cc...> LIBS <lib...> CORPUS <dir>
#                    [DICT <file>] [SECONDS <n>])
#
# SOURCES define `extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t)`;
# LIBS are the duet libraries they exercise; CORPUS is the seed directory
# (relative paths are taken from the calling CMakeLists.txt). One call gives:
#
#  * in every build, `<name>_fuzz_replay`: SOURCES plus a main that feeds each
#    CORPUS file once, compiled by the project's compiler (g++ in CI) and
#    registered as ctest `fuzz_replay.<name>` (LABEL unit). Add an input that
#    once crashed to CORPUS and it stays a regression test.
#  * when libFuzzer is available (DUET_FUZZ=AUTO finds clang++ that links
#    -fsanitize=fuzzer; ON requires it; OFF never), `<name>_fuzzer`, built with
#    clang and -fsanitize=fuzzer,address,undefined, registered as ctest
#    `fuzz.<name>` (LABEL fuzz): it fuzzes a fresh copy of CORPUS for SECONDS
#    (default 20) and fails on any crash, leak, sanitizer report or timeout;
#    crash inputs are left in <build>/fuzz-runs/<name>/. Without libFuzzer
#    `fuzz.<name>` is reported as skipped.
#
# How: the main build configures this same source tree a second time in
# <build>/fuzz with clang (ExternalProject `duet_fuzzers_build`, -DDUET_CUDA=OFF,
# -DDUET_FUZZ_NESTED=ON) and builds there only the `<name>_fuzzer` targets,
# i.e. the fuzzers and the libraries they link. In that nested build all code
# is compiled with coverage and sanitizer instrumentation; duet_fuzz_target
# makes only the real fuzzers and registers no tests. Each fuzzer is built
# separately: with AUTO, code that g++ accepts but this clang rejects fails
# only its `fuzz.<name>` test (with the compiler output), never the main
# build; with ON it fails the build.
#
# This file is also the script (cmake -P) that does the nested build
# (MODE=build) and runs one fuzzer for ctest (otherwise).

if(CMAKE_SCRIPT_MODE_FILE)
  if(MODE STREQUAL "build")
    # Configures the nested build when needed, then builds each fuzzer on its
    # own so one that clang cannot compile leaves the others usable. Failures
    # leave the compiler output in <build>/configure.failed or
    # <binary>.failed (and remove stale binaries) for `fuzz.<name>` to report;
    # they fail this step only when REQUIRED (DUET_FUZZ=ON).
    set(configure_marker "${BUILD_DIR}/configure.failed")
    set(result 0)
    if(NOT EXISTS "${BUILD_DIR}/CMakeCache.txt" OR EXISTS "${configure_marker}")
      execute_process(
        COMMAND "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${BUILD_DIR}" -G "${GENERATOR}"
                -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_C_COMPILER=${CC}
                -DCMAKE_BUILD_TYPE=Fuzz -DDUET_CUDA=OFF -DDUET_FUZZ_NESTED=ON
                -DDUET_PYTHON=${PYTHON}
        RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
    endif()
    if(result EQUAL 0)
      # Re-runs the nested configure when a CMakeLists.txt changed, which
      # rewrites fuzzers.txt.
      execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BUILD_DIR}" --target duet_fuzz_configured
                      RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
    endif()
    if(NOT result EQUAL 0)
      file(WRITE "${configure_marker}" "${output}")
      file(REMOVE_RECURSE "${BUILD_DIR}/fuzzers")
      set(problem "configuring the nested clang build in ${BUILD_DIR} failed:\n${output}")
      if(REQUIRED)
        message(FATAL_ERROR "${problem}")
      endif()
      message(WARNING "duet: ${problem}")
      return()
    endif()
    file(REMOVE "${configure_marker}")

    file(STRINGS "${BUILD_DIR}/fuzzers.txt" names)
    set(failed_names "")
    foreach(name IN LISTS names)
      set(binary "${BUILD_DIR}/fuzzers/${name}_fuzzer")
      message(STATUS "duet: building ${name}_fuzzer with clang in ${BUILD_DIR}")
      execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BUILD_DIR}" --target ${name}_fuzzer
                      RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
      if(result EQUAL 0)
        file(REMOVE "${binary}.failed")
      else()
        file(WRITE "${binary}.failed" "${output}")
        file(REMOVE "${binary}")
        list(APPEND failed_names ${name})
        message(WARNING "duet: the clang build of ${name}_fuzzer failed; fuzz.${name} will fail. "
                        "Output in ${binary}.failed:\n${output}")
      endif()
    endforeach()
    if(failed_names AND REQUIRED)
      message(FATAL_ERROR "DUET_FUZZ=ON and these fuzzers failed to build: ${failed_names}")
    endif()
    return()
  endif()

  # MODE run: runs FUZZER over a fresh copy of CORPUS in WORK_DIR for SECONDS.
  foreach(var BUILD_DIR FUZZER CORPUS WORK_DIR SECONDS)
    if(NOT DEFINED ${var})
      message(FATAL_ERROR "DuetFuzz.cmake -P needs -D${var}=...")
    endif()
  endforeach()
  if(EXISTS "${BUILD_DIR}/configure.failed")
    file(READ "${BUILD_DIR}/configure.failed" configure_output)
    message(FATAL_ERROR "the nested clang build did not configure:\n${configure_output}")
  endif()
  if(EXISTS "${FUZZER}.failed")
    file(READ "${FUZZER}.failed" build_output)
    message(FATAL_ERROR "${FUZZER} failed to build with clang:\n${build_output}")
  endif()
  if(NOT EXISTS "${FUZZER}")
    message(FATAL_ERROR "${FUZZER} is not built (the main build makes it through duet_fuzzers_build)")
  endif()
  file(REMOVE_RECURSE "${WORK_DIR}")
  file(MAKE_DIRECTORY "${WORK_DIR}/corpus")
  file(GLOB seeds "${CORPUS}/*")
  file(COPY ${seeds} DESTINATION "${WORK_DIR}/corpus")
  set(args -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
           -artifact_prefix=${WORK_DIR}/)
  if(DICT)
    list(APPEND args -dict=${DICT})
  endif()
  execute_process(COMMAND "${FUZZER}" ${args} "${WORK_DIR}/corpus" RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "${FUZZER} failed (${result}); crash inputs are in ${WORK_DIR}")
  endif()
  return()
endif()

set(DUET_FUZZ AUTO CACHE STRING "Build libFuzzer targets with clang: AUTO, ON or OFF")
set_property(CACHE DUET_FUZZ PROPERTY STRINGS AUTO ON OFF)
# Set only by the main build for the nested clang build.
set(DUET_FUZZ_NESTED OFF CACHE BOOL "Internal: this is the nested libFuzzer build")
mark_as_advanced(DUET_FUZZ_NESTED)

set(_duet_fuzz_module "${CMAKE_CURRENT_LIST_FILE}")
set(_duet_fuzz_replay_main "${CMAKE_CURRENT_LIST_DIR}/../tests/fuzz/fuzz_replay_main.cc")
set(DUET_WITH_FUZZERS OFF)

if(DUET_FUZZ_NESTED)
  # Everything here is built for the fuzzers: coverage feedback and sanitizers
  # in the libraries too, not just in the entry points. Build type "Fuzz":
  # -O1 with line tables compiles much faster than -O2 -g and still symbolises
  # crash stacks; no NDEBUG, so assert() and DCHECK stay armed.
  set(CMAKE_BUILD_TYPE Fuzz CACHE STRING "Build type" FORCE)
  set(CMAKE_C_FLAGS_FUZZ "-O1 -gline-tables-only")
  set(CMAKE_CXX_FLAGS_FUZZ "-O1 -gline-tables-only")
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
                      -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_custom_target(duet_fuzzers)
  add_custom_target(duet_fuzz_configured)  # builds nothing; see MODE build
  # The fuzzer names, for the main build's build step (MODE build above).
  set(DUET_FUZZ_LIST_FILE "${CMAKE_BINARY_DIR}/fuzzers.txt")
  file(WRITE "${DUET_FUZZ_LIST_FILE}" "")
else()
  string(TOUPPER "${DUET_FUZZ}" _duet_fuzz)
  if(NOT _duet_fuzz MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "DUET_FUZZ must be AUTO, ON or OFF (got '${DUET_FUZZ}')")
  endif()
  if(NOT _duet_fuzz STREQUAL "OFF")
    find_program(DUET_FUZZ_CXX_COMPILER NAMES clang++ clang++-14 clang++-15 clang++-16)
    find_program(DUET_FUZZ_C_COMPILER NAMES clang clang-14 clang-15 clang-16)
    if(DUET_FUZZ_CXX_COMPILER AND DUET_FUZZ_C_COMPILER)
      # clang without the compiler-rt fuzzer library cannot link fuzzers.
      set(_probe_dir "${CMAKE_BINARY_DIR}/CMakeFiles/duet_fuzz_probe")
      file(WRITE "${_probe_dir}/probe.cc"
           "#include <cstddef>\n#include <cstdint>\n"
           "extern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n")
      execute_process(
        COMMAND "${DUET_FUZZ_CXX_COMPILER}" -fsanitize=fuzzer,address,undefined
                "${_probe_dir}/probe.cc" -o "${_probe_dir}/probe"
        RESULT_VARIABLE _probe_result OUTPUT_QUIET ERROR_QUIET)
      if(_probe_result EQUAL 0)
        set(DUET_WITH_FUZZERS ON)
      endif()
    endif()
    if(NOT DUET_WITH_FUZZERS AND _duet_fuzz STREQUAL "ON")
      message(FATAL_ERROR "DUET_FUZZ=ON but no clang++ that links -fsanitize=fuzzer was found")
    endif()
  endif()
  message(STATUS "duet: libFuzzer targets ${DUET_WITH_FUZZERS}")

  if(DUET_WITH_FUZZERS)
    include(ExternalProject)
    set(_duet_fuzz_required OFF)
    if(_duet_fuzz STREQUAL "ON")
      set(_duet_fuzz_required ON)
    endif()
    set(DUET_FUZZ_BINARY_DIR "${CMAKE_BINARY_DIR}/fuzz")
    ExternalProject_Add(duet_fuzzers_build
      SOURCE_DIR "${CMAKE_SOURCE_DIR}"
      BINARY_DIR "${DUET_FUZZ_BINARY_DIR}"
      PREFIX "${CMAKE_BINARY_DIR}/fuzz-prefix"
      # Configuring is part of the build step, so that a failure there can be
      # reported by the fuzz tests instead of failing the main build.
      CONFIGURE_COMMAND ""
      BUILD_COMMAND ${CMAKE_COMMAND} -DMODE=build
                    -DSOURCE_DIR=${CMAKE_SOURCE_DIR} -DBUILD_DIR=${DUET_FUZZ_BINARY_DIR}
                    -DGENERATOR=${CMAKE_GENERATOR}
                    -DCXX=${DUET_FUZZ_CXX_COMPILER} -DCC=${DUET_FUZZ_C_COMPILER}
                    -DPYTHON=${DUET_PYTHON} -DREQUIRED=${_duet_fuzz_required}
                    -P "${_duet_fuzz_module}"
      INSTALL_COMMAND ""
      BUILD_ALWAYS TRUE)
  endif()
endif()

# Fuzz targets that load fixtures or assets find them as the tests do
# (tests/test_paths.h).
function(_duet_fuzz_test_paths target)
  target_compile_definitions(${target} PRIVATE
    DUET_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}" DUET_TEST_BUILD_DIR="${CMAKE_BINARY_DIR}")
endfunction()

function(duet_fuzz_target)
  cmake_parse_arguments(ARG "" "NAME;CORPUS;DICT;SECONDS" "SOURCES;LIBS" ${ARGN})
  foreach(required NAME SOURCES CORPUS)
    if(NOT ARG_${required})
      message(FATAL_ERROR "duet_fuzz_target needs ${required}")
    endif()
  endforeach()
  if(NOT ARG_SECONDS)
    set(ARG_SECONDS 20)
  endif()
  get_filename_component(corpus "${ARG_CORPUS}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  set(dict "")
  if(ARG_DICT)
    get_filename_component(dict "${ARG_DICT}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  endif()

  if(DUET_FUZZ_NESTED)
    add_executable(${ARG_NAME}_fuzzer ${ARG_SOURCES})
    target_link_libraries(${ARG_NAME}_fuzzer PRIVATE ${ARG_LIBS})
    _duet_fuzz_test_paths(${ARG_NAME}_fuzzer)
    target_link_options(${ARG_NAME}_fuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
    set_target_properties(${ARG_NAME}_fuzzer PROPERTIES
      RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/fuzzers")
    add_dependencies(duet_fuzzers ${ARG_NAME}_fuzzer)
    file(APPEND "${DUET_FUZZ_LIST_FILE}" "${ARG_NAME}\n")
    return()
  endif()

  add_executable(${ARG_NAME}_fuzz_replay ${ARG_SOURCES} "${_duet_fuzz_replay_main}")
  target_link_libraries(${ARG_NAME}_fuzz_replay PRIVATE ${ARG_LIBS})
  _duet_fuzz_test_paths(${ARG_NAME}_fuzz_replay)
  add_test(NAME fuzz_replay.${ARG_NAME} COMMAND ${ARG_NAME}_fuzz_replay "${corpus}")
  set_tests_properties(fuzz_replay.${ARG_NAME} PROPERTIES LABELS unit TIMEOUT 120)

  if(DUET_WITH_FUZZERS)
    add_test(NAME fuzz.${ARG_NAME}
      COMMAND ${CMAKE_COMMAND}
        -DBUILD_DIR=${DUET_FUZZ_BINARY_DIR}
        -DFUZZER=${DUET_FUZZ_BINARY_DIR}/fuzzers/${ARG_NAME}_fuzzer
        -DCORPUS=${corpus}
        -DDICT=${dict}
        -DWORK_DIR=${CMAKE_BINARY_DIR}/fuzz-runs/${ARG_NAME}
        -DSECONDS=${ARG_SECONDS}
        -P "${_duet_fuzz_module}")
    math(EXPR timeout "${ARG_SECONDS} + 60")
    set_tests_properties(fuzz.${ARG_NAME} PROPERTIES LABELS fuzz TIMEOUT ${timeout})
  else()
    add_test(NAME fuzz.${ARG_NAME}
      COMMAND sh -c "echo 'libFuzzer is unavailable (DUET_FUZZ=${DUET_FUZZ}, needs clang++ with compiler-rt)'; exit 77")
    set_tests_properties(fuzz.${ARG_NAME} PROPERTIES LABELS fuzz SKIP_RETURN_CODE 77)
  endif()
endfunction()
