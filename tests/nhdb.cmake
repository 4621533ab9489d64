# nhdb: libnhdb and the nhdb CLI (forked by the crash and round-trip tests).
nh_add_test(nhdb LIBS nh_db TIMEOUT 600)
target_compile_definitions(test_nhdb PRIVATE NHDB_EXE="$<TARGET_FILE:nhdb>")
add_dependencies(test_nhdb nhdb)
