# nh_pipeline: the bulk hashing job (decode workers, batches, the hasher table: digest,
# neural on OpenCL or in C, PDQ in C or on OpenCL).
add_library(nh_pipeline STATIC ${CMAKE_CURRENT_SOURCE_DIR}/pipeline.c
                               ${CMAKE_CURRENT_SOURCE_DIR}/pipeline_input.c
                               ${CMAKE_CURRENT_SOURCE_DIR}/hasher_table.c
                               ${CMAKE_CURRENT_SOURCE_DIR}/hasher_digest.c
                               ${CMAKE_CURRENT_SOURCE_DIR}/hasher_neural.c
                               ${CMAKE_CURRENT_SOURCE_DIR}/hasher_pdq.c)
target_link_libraries(nh_pipeline PUBLIC nh_core nh_decode nh_net nh_pdq nh_cl
                      PRIVATE nh_flags PkgConfig::XXHASH Threads::Threads)
target_compile_definitions(nh_pipeline PRIVATE NH_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                           NH_SHARE_DIR="${CMAKE_INSTALL_PREFIX}/share/nhash")
list(APPEND NH_CLI_LIBS nh_pipeline)
