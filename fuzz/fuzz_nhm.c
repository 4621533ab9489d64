/*
 * libFuzzer harness: the .nhm reader (host/nhm.c, nh_model_load_buffer, which
 * nh_model_load calls on the file's bytes). Every input is loaded twice: as it is, and with
 * its file_size (offset 16) and fingerprint (offset 24, XXH64 of the file with those 8 bytes
 * zero; docs/nhm.md) rewritten to match, so that mutations get past the checksum into the
 * header, node and weight checks. A model that loads is serialized and loaded again (the
 * round trip must succeed) and its execution plan built, as a runner would.
 * Corpus: fuzz/corpus/nhm.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "nhash/net.h"
#include "nhash/nhm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void load(const uint8_t *data, size_t size)
{
    nh_error err = {0};
    nh_model *m = NULL;
    if (nh_model_load_buffer(data, size, "fuzz", &m, &err) != NH_OK)
        return;
    (void)nh_model_macs(m);
    nh_net_plan plan = {0};
    if (nh_net_plan_build(m, &plan, &err) == NH_OK)
        nh_net_plan_free(&plan);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (nh_model_serialize(m, &buf, &len, &err) == NH_OK) {
        nh_model *again = NULL;
        /* A model the reader accepted must survive its own writer. */
        if (nh_model_load_buffer(buf, len, "fuzz-again", &again, &err) != NH_OK) {
            fprintf(stderr, "fuzz_nhm: the serialized model is refused: %s\n", err.msg);
            abort();
        }
        nh_model_destroy(again);
    }
    free(buf);
    nh_model_destroy(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load(data, size);
    if (size < 32)
        return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed)
        return 0;
    memcpy(fixed, data, size);
    put_u64(fixed + 16, size);
    put_u64(fixed + 24, 0);
    put_u64(fixed + 24, XXH64(fixed, size, 0));
    load(fixed, size);
    free(fixed);
    return 0;
}
