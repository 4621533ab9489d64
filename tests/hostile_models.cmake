# hostile_models: the libFuzzer reproducers (tests/data/hostile/, copies of fuzz/crashes/)
# through the ONNX importer and the .nhm reader, each refused with its message in a child
# under a time and memory bound.
nh_add_test(hostile_models LIBS nh_net nh_core PkgConfig::XXHASH TIMEOUT 600)
