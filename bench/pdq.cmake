add_executable(nhbench-pdq ${CMAKE_CURRENT_LIST_DIR}/bench_pdq.c ${CMAKE_CURRENT_LIST_DIR}/bench_files.c)
target_link_libraries(nhbench-pdq PRIVATE nh_flags nh_pipeline nh_pdq nh_decode nh_cl nh_core)
