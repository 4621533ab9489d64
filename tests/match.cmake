# nh_match on hand-made records against a set built through libnhdb.
nh_add_test(match LIBS nh_match nh_db TIMEOUT 120)
