# The pipeline and its hasher table as a library: one open and one decode per file, PDQ
# from the one decode equal to the file-level reference path.
nh_add_test(hashers LIBS nh_pipeline nh_pdq nh_decode nh_core TIMEOUT 300)
