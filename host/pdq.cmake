# PDQ (issue #6): nh_pdq = the hashing core in C and its OpenCL batch path (pixels in,
# hashes out); nh_pdq_file = the file front end, the only part that links nh_decode.
add_library(nh_pdq STATIC ${CMAKE_CURRENT_LIST_DIR}/pdq.c ${CMAKE_CURRENT_LIST_DIR}/pdq_cl.c)
target_link_libraries(nh_pdq PUBLIC nh_core nh_cl PRIVATE nh_flags m)

add_library(nh_pdq_file STATIC ${CMAKE_CURRENT_LIST_DIR}/pdq_file.c)
target_link_libraries(nh_pdq_file PUBLIC nh_pdq nh_decode PRIVATE nh_flags)
