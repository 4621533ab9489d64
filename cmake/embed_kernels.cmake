# Embed every kernels/*.cl file into the binary as a NUL-terminated byte array.
# The generated nh_kernels_embedded.c defines nh_kernel_files[] (see host/include/nhash/cl.h).
file(GLOB NH_KERNEL_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/kernels/*.cl ${CMAKE_SOURCE_DIR}/kernels/*.h)
set(NH_KERNELS_C ${CMAKE_BINARY_DIR}/generated/nh_kernels_embedded.c)
add_custom_command(
  OUTPUT ${NH_KERNELS_C}
  COMMAND ${CMAKE_COMMAND} -DOUT=${NH_KERNELS_C} "-DFILES=${NH_KERNEL_FILES}"
          -P ${CMAKE_SOURCE_DIR}/cmake/embed_kernels_run.cmake
  DEPENDS ${NH_KERNEL_FILES} ${CMAKE_SOURCE_DIR}/cmake/embed_kernels_run.cmake
  COMMENT "Embedding OpenCL kernels"
  VERBATIM)
