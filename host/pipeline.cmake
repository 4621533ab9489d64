# nh_pipeline: the bulk hashing job (decode workers, batches, network, PDQ, digests).
add_library(nh_pipeline STATIC ${CMAKE_CURRENT_SOURCE_DIR}/pipeline.c
                               ${CMAKE_CURRENT_SOURCE_DIR}/pipeline_input.c)
target_link_libraries(nh_pipeline PUBLIC nh_core nh_decode PRIVATE nh_flags PkgConfig::XXHASH
                      Threads::Threads)
target_compile_definitions(nh_pipeline PRIVATE NH_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                           NH_SHARE_DIR="${CMAKE_INSTALL_PREFIX}/share/nhash")
if(TARGET nh_net)
  target_link_libraries(nh_pipeline PUBLIC nh_net nh_cl)
  target_compile_definitions(nh_pipeline PUBLIC NH_HAVE_NET=1)
endif()
if(TARGET nh_pdq)
  target_link_libraries(nh_pipeline PUBLIC nh_pdq)
  target_compile_definitions(nh_pipeline PUBLIC NH_HAVE_PDQ=1)
endif()
list(APPEND NH_CLI_LIBS nh_pipeline)
