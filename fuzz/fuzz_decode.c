/*
 * libFuzzer harness: decoding an image from a buffer (host/decode.c), as the pipeline does
 * with each file's bytes: nh_decode_full (the one full decode behind COMPAT, NEAREST and
 * NATIVE) with a 4-megapixel cap, then nh_decode_buffer in FAST mode (shrink-on-load) to
 * 64 x 64. Untrusted libvips loaders stay blocked, as by default. Corpus:
 * fuzz/corpus/decode (small images in the formats nhash reads).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nhash/decode.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static nh_decode_opts g_opts;
static uint8_t *g_out;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    nh_error err = {0};
    if (nh_decode_init(argc && *argc ? (*argv)[0] : NULL, &err)) {
        fprintf(stderr, "fuzz_decode: %s\n", err.msg);
        exit(1);
    }
    nh_decode_opts_default(&g_opts);
    g_opts.max_pixels = 4000000;
    g_opts.max_file_bytes = (size_t)16 << 20;
    g_opts.mode = NH_DECODE_FAST;
    g_opts.width = g_opts.height = 64;
    g_out = malloc(nh_decode_out_bytes(&g_opts));
    if (!g_out)
        exit(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nh_error err = {0};
    nh_decode_info info;
    uint8_t *rgb = NULL;
    if (nh_decode_full(data, size, -1, "fuzz", &g_opts, &rgb, &info, &err) == NH_OK)
        nh_decode_free(rgb);
    nh_error_clear(&err);
    (void)nh_decode_buffer(data, size, "fuzz", &g_opts, g_out, &info, &err);
    return 0;
}
