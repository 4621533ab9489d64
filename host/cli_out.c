/* nhash CLI helpers. See cli_out.h. */
#include "cli_out.h"

#include <string.h>

int nh_cli_pdq_backend(const char *s, nh_pdq_backend *out)
{
    if (!strcmp(s, "auto"))
        *out = NH_PDQ_BACKEND_AUTO;
    else if (!strcmp(s, "c"))
        *out = NH_PDQ_BACKEND_C;
    else if (!strcmp(s, "cl"))
        *out = NH_PDQ_BACKEND_CL;
    else
        return 1;
    return 0;
}
