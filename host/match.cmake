# nh_match: records against a hash set and archives against a threshold (nhash audit's
# policy as a library; reads sets through libnhdb's API).
add_library(nh_match STATIC ${CMAKE_CURRENT_LIST_DIR}/match.c)
target_link_libraries(nh_match PUBLIC nh_pipeline nh_db PRIVATE nh_flags)
list(APPEND NH_CLI_LIBS nh_match)
