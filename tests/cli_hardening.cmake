nh_add_test(cli_hardening LIBS nh_core SOURCES cli_run.c TIMEOUT 600)
add_dependencies(test_cli_hardening nhash)
if(TARGET nhdb)
  add_dependencies(test_cli_hardening nhdb)
endif()
if(NH_BUILD_BENCH)
  add_dependencies(test_cli_hardening nhbench nhbench-decode nhbench-net nhbench-pdq nhbench-db
                   nhbench-quality)
endif()
