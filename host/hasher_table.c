/* The hasher table. See hasher.h. */
#include "hasher.h"

const nh_hasher_ops *const nh_hasher_table[] = {
    &nh_hasher_digest,     /* digest: always (the resume hook needs digests) */
    &nh_hasher_neural_cl,  /* neural: on the OpenCL device, unless --backend ref */
    &nh_hasher_neural_ref, /*         the plain-C reference with --backend ref */
    &nh_hasher_pdq_cl,     /* pdq: on the device when asked, or (auto) on a GPU with exact
                              division */
    &nh_hasher_pdq_c,      /*      else in C on the decode workers */
};
const size_t nh_hasher_table_len = sizeof nh_hasher_table / sizeof *nh_hasher_table;
