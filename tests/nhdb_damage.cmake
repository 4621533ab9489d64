# nhdb damage campaign: seeded byte damage to a small set's data.mdb, the nhdb CLI forked on
# each copy, then nhash audit and nhash hash --db (needs mdb_dump from lmdb-utils as the independent view of what changed).
nh_add_test(nhdb_damage LIBS nh_db TIMEOUT 600)
target_compile_definitions(test_nhdb_damage PRIVATE NHDB_EXE="$<TARGET_FILE:nhdb>"
                                                   NHASH_EXE="$<TARGET_FILE:nhash>")
add_dependencies(test_nhdb_damage nhdb nhash)
