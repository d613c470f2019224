# Test helpers. Every test carries one of the labels unit, golden, e2e, cuda,
# fuzz; `ctest -L unit` runs one kind. GPU tests skip themselves (GTEST_SKIP) on
# machines without a GPU and are reported by ctest as skipped, not passed.
include(GoogleTest)

set(DUET_ASSETS_DIR "${CMAKE_SOURCE_DIR}/../shared/assets" CACHE PATH
    "Real tokenizers and chat templates used by tests (skipped when absent)")
if(EXISTS "${CMAKE_SOURCE_DIR}/.venv/bin/python")
  set(DUET_PYTHON "${CMAKE_SOURCE_DIR}/.venv/bin/python")
else()
  find_program(DUET_PYTHON python3 REQUIRED)
endif()

# duet_gtest(<name> LABEL <label> SOURCES <src...> LIBS <lib...>)
function(duet_gtest name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_LABEL)
    message(FATAL_ERROR "duet_gtest(${name}) needs a LABEL")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    DUET_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}" DUET_TEST_BUILD_DIR="${CMAKE_BINARY_DIR}")
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    DISCOVERY_TIMEOUT 60
    PROPERTIES
      LABELS "${ARG_LABEL}"
      TIMEOUT ${ARG_TIMEOUT}
      SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
      # One variable only: discovered tests receive the property list
      # flattened, so further variables would be lost. The source and build
      # directories come as compile definitions instead (tests/test_paths.h).
      ENVIRONMENT "DUET_ASSETS=${DUET_ASSETS_DIR}")
endfunction()

# duet_pytest(<name> LABEL <label> FILE <test_file.py> [TIMEOUT s])
# tests/conftest.py turns "everything skipped" into exit code 77.
function(duet_pytest name)
  cmake_parse_arguments(ARG "" "LABEL;FILE;TIMEOUT" "" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_test(NAME ${name}
    COMMAND ${DUET_PYTHON} -m pytest -q -p no:cacheprovider
            --rootdir=${CMAKE_SOURCE_DIR}/tests ${CMAKE_CURRENT_SOURCE_DIR}/${ARG_FILE})
  set_tests_properties(${name} PROPERTIES
    LABELS "${ARG_LABEL}"
    TIMEOUT ${ARG_TIMEOUT}
    SKIP_RETURN_CODE 77
    ENVIRONMENT "DUET_ASSETS=${DUET_ASSETS_DIR};DUET_SOURCE_DIR=${CMAKE_SOURCE_DIR};DUET_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")
endfunction()
