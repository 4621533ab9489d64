# net: model format, ONNX import, reference and OpenCL runners against onnxruntime fixtures.
nh_add_test(net LIBS nh_net nh_decode nh_core PkgConfig::XXHASH m SOURCES sha256.c TIMEOUT 600)
