# PDQ against Meta's reference hashes (tests/data/pdq, /work/shared/pdq-reference or
# NH_PDQ_REFERENCE_DIR for the large pixel files), C and OpenCL.
set(NH_PDQ_REFERENCE_DIR "/work/shared/pdq-reference" CACHE PATH
    "Meta PDQ reference data (pixels/, images/, expected*.csv); tests skip what is missing")
nh_add_test(pdq LIBS nh_pdq nh_decode nh_cl nh_core TIMEOUT 900)
set_property(TEST pdq APPEND PROPERTY ENVIRONMENT "NH_PDQ_REFERENCE_DIR=${NH_PDQ_REFERENCE_DIR}")
