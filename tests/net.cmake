# net: model format, ONNX import, reference and OpenCL runners against onnxruntime fixtures.
nh_add_test(net LIBS nh_net nh_decode nh_core PkgConfig::XXHASH m SOURCES sha256.c TIMEOUT 600)
# End to end through the CLI in a temporary directory.
add_test(NAME net_cli COMMAND sh ${CMAKE_SOURCE_DIR}/scripts/net/cli_test.sh $<TARGET_FILE:nhash>
         ${CMAKE_SOURCE_DIR})
set_tests_properties(net_cli PROPERTIES TIMEOUT 300)
