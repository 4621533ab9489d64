# width: neural hashes of models of two widths (96 and 128 bits) through nhash hash --db,
# nhash audit and nhdb stats/export/import, end to end through the CLIs.
nh_add_test(width LIBS nh_net nh_core SOURCES cli_run.c TIMEOUT 600)
add_dependencies(test_width nhash)
if(TARGET nhdb)
  add_dependencies(test_width nhdb)
endif()
