add_executable(nhbench-quality ${CMAKE_CURRENT_SOURCE_DIR}/bench_quality.c)
target_link_libraries(nhbench-quality PRIVATE nh_flags nh_pipeline nh_core PkgConfig::VIPS m)
