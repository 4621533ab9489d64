# PDQ (issue #6): the hashing core in C (pdq.c), its OpenCL batch path (pdq_cl.c) and the
# file front end (pdq_file.c, the module's only decoder-aware file, hence nh_decode).
add_library(nh_pdq STATIC ${CMAKE_CURRENT_LIST_DIR}/pdq.c ${CMAKE_CURRENT_LIST_DIR}/pdq_cl.c
                          ${CMAKE_CURRENT_LIST_DIR}/pdq_file.c)
target_link_libraries(nh_pdq PUBLIC nh_core nh_cl nh_decode PRIVATE nh_flags m)
