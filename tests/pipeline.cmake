nh_add_test(pipeline LIBS nh_core TIMEOUT 900)
add_dependencies(test_pipeline nhash)
