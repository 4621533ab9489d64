add_executable(nhbench-decode ${CMAKE_CURRENT_SOURCE_DIR}/bench_decode.c
                              ${CMAKE_CURRENT_SOURCE_DIR}/bench_files.c)
target_link_libraries(nhbench-decode PRIVATE nh_flags nh_pipeline nh_decode nh_core)
