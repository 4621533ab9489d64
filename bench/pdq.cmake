add_executable(nhbench-pdq ${CMAKE_CURRENT_LIST_DIR}/bench_pdq.c)
target_link_libraries(nhbench-pdq PRIVATE nh_flags nh_pdq nh_decode nh_cl nh_core)
