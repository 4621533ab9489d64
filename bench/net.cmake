# nhbench-net: network-only throughput of the OpenCL and C reference runners beside
# onnxruntime-node (scripts/net/bench_ort.js) on the same ONNX model and thread count.
add_executable(nhbench-net ${CMAKE_CURRENT_SOURCE_DIR}/bench_net.c)
target_link_libraries(nhbench-net PRIVATE nh_flags nh_net nh_cl nh_core)
target_compile_definitions(nhbench-net PRIVATE NH_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
