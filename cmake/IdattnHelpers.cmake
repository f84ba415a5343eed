# Helpers shared by tests/ and bench/.

# idattn_add_boost_test(<target> SOURCES ... [LIBS ...] [LABELS ...] [NEEDS_CUDA] [DEPENDS ...])
#
# Builds a Boost.Test executable with the project's main (tests/common/test_main.cpp)
# and registers one CTest entry per test case. The list of cases is read from
# `<exe> --list_content` right after each build (a POST_BUILD step writes
# <target>_tests.cmake, which CTest includes when it runs), so a fresh build
# needs no second configure. NEEDS_CUDA executables exit 77 with the reason
# when there is no device, which CTest shows as "Skipped".
function(idattn_add_boost_test target)
  cmake_parse_arguments(T "NEEDS_CUDA" "" "SOURCES;LIBS;LABELS;DEPENDS" ${ARGN})
  add_executable(${target} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/common/test_main.cpp)
  target_link_libraries(${target} PRIVATE idattn_testutil ${T_LIBS} Boost::unit_test_framework)
  target_compile_options(${target} PRIVATE ${IDATTN_WARNINGS})
  target_compile_definitions(${target} PRIVATE
    IDATTN_TEST_MODULE="${target}" IDATTN_TEST_NEEDS_CUDA=$<BOOL:${T_NEEDS_CUDA}>
    IDATTN_CLI_PATH="$<TARGET_FILE:idattn>" IDATTN_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  if(T_DEPENDS)
    add_dependencies(${target} ${T_DEPENDS})
  endif()
  set(list_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_tests.cmake)
  set(labels ${T_LABELS})
  if(T_NEEDS_CUDA)
    list(APPEND labels cuda)
  else()
    list(APPEND labels cpu)
  endif()
  string(REPLACE ";" "," labels_csv "${labels}")
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -D EXE=$<TARGET_FILE:${target}> -D TARGET=${target} -D OUT=${list_file}
            -D LABELS=${labels_csv} -P ${PROJECT_SOURCE_DIR}/cmake/BoostTestList.cmake
    VERBATIM)
  set(include_file ${CMAKE_CURRENT_BINARY_DIR}/${target}_include.cmake)
  file(WRITE ${include_file}
    "if(EXISTS \"${list_file}\")\n  include(\"${list_file}\")\nelse()\n"
    "  add_test(${target}_NOT_BUILT ${CMAKE_COMMAND} -E echo \"${target} was not built\")\n"
    "  set_tests_properties(${target}_NOT_BUILT PROPERTIES WILL_FAIL TRUE)\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${include_file})
endfunction()
