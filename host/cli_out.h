/* nhash CLI helpers (the text writers both CLIs share are nhash/out.h). */
#ifndef NHASH_CLI_OUT_H
#define NHASH_CLI_OUT_H

#include "nhash/out.h"
#include "nhash/pipeline.h"

/* Parse a --pdq-backend value (auto, c, cl); nonzero when unknown. */
int nh_cli_pdq_backend(const char *s, nh_pdq_backend *out);

#endif
