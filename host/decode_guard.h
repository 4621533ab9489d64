/* nhash decode guard: container sanity before libvips (decode_guard.c). Internal. */
#ifndef NHASH_DECODE_GUARD_H
#define NHASH_DECODE_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "nhash/core.h"

/* NH_OK, or NH_ERR_DECODE naming the chunk whose declared length exceeds the file. */
nh_status nh_decode_guard(const void *data, size_t len, const char *path, nh_error *err);

#endif
