# libnhdb (target nh_db) and the nhdb CLI. LMDB and xxHash stay private: the public header
# exposes only nhash/core.h types.
add_library(nh_db STATIC
  ${CMAKE_CURRENT_LIST_DIR}/db.c
  ${CMAKE_CURRENT_LIST_DIR}/db_query.c
  ${CMAKE_CURRENT_LIST_DIR}/db_mih.c)
target_include_directories(nh_db PUBLIC ${CMAKE_CURRENT_LIST_DIR}/include)
target_link_libraries(nh_db PUBLIC nh_core Threads::Threads PRIVATE nh_flags PkgConfig::LMDB PkgConfig::XXHASH)
# Static consumers need LMDB and xxHash at link time.
target_link_libraries(nh_db INTERFACE PkgConfig::LMDB PkgConfig::XXHASH m)

add_library(nh_db_text STATIC ${CMAKE_CURRENT_LIST_DIR}/text.c)
target_include_directories(nh_db_text PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(nh_db_text PUBLIC nh_db PRIVATE nh_flags)

add_executable(nhdb ${CMAKE_CURRENT_LIST_DIR}/nhdb_main.c)
target_link_libraries(nhdb PRIVATE nh_flags nh_db nh_db_text PkgConfig::XXHASH)
