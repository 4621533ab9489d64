# nh_net: model format (.nhm), ONNX import, the C reference and OpenCL runners.
nh_require_pkg(PROTOBUFC libprotobuf-c libprotobuf-c-dev)
find_program(NH_PROTOC_C protoc-c)
if(NOT NH_PROTOC_C)
  message(FATAL_ERROR "nhash needs protoc-c: apt-get install protobuf-c-compiler")
endif()
set(NH_ONNX_PB ${CMAKE_BINARY_DIR}/generated/onnx_min.pb-c.c)
add_custom_command(
  OUTPUT ${NH_ONNX_PB} ${CMAKE_BINARY_DIR}/generated/onnx_min.pb-c.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/generated
  COMMAND ${NH_PROTOC_C} --c_out=${CMAKE_BINARY_DIR}/generated
          --proto_path=${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/onnx_min.proto
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/onnx_min.proto
  COMMENT "protoc-c onnx_min.proto"
  VERBATIM)
# Generated code is built without nhash's warning set (it is not ours to fix).
add_library(nh_onnx_pb STATIC ${NH_ONNX_PB})
target_include_directories(nh_onnx_pb PUBLIC ${CMAKE_BINARY_DIR}/generated)
target_link_libraries(nh_onnx_pb PUBLIC PkgConfig::PROTOBUFC)
if(NH_SANITIZE)
  target_compile_options(nh_onnx_pb PRIVATE -fsanitize=${NH_SANITIZE})
endif()

add_library(nh_net STATIC nhm.c net.c net_ref.c net_cl.c onnx_import.c)
target_link_libraries(nh_net PUBLIC nh_core nh_cl PRIVATE nh_flags nh_onnx_pb PkgConfig::XXHASH m)
list(APPEND NH_CLI_LIBS nh_net)
