add_executable(nhbench-quality ${CMAKE_CURRENT_SOURCE_DIR}/bench_quality.c
                               ${CMAKE_CURRENT_SOURCE_DIR}/bench_files.c)
target_link_libraries(nhbench-quality PRIVATE nh_flags nh_pipeline nh_core PkgConfig::VIPS m)
if(NH_BUILD_TESTS)
  # Smoke test: the benchmark runs, writes its results, and leaves the user's photos alone.
  # Run through the front door, `nhbench quality`, which must find nhbench-quality beside it.
  add_test(NAME bench_quality COMMAND sh ${CMAKE_SOURCE_DIR}/tests/bench_quality_test.sh
           $<TARGET_FILE:nhbench> ${CMAKE_SOURCE_DIR})
  set_tests_properties(bench_quality PROPERTIES TIMEOUT 600)
endif()
