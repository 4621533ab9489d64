/*
 * libFuzzer harness: the ONNX importer (host/onnx_import.c). The input is the ONNX file's
 * bytes. An import that succeeds is repeated with a small seed of out_dim columns (8 rows,
 * a fixed pattern) so the projection path runs too, then serialized and loaded back, as
 * `nhash model import` does. Corpus: fuzz/corpus/onnx.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "nhash/net.h"
#include "nhash/nhm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small input keeps validation and planning cheap whatever the graph. */
static const nh_onnx_opts g_opts = {32, 32, "fuzz", "1"};

static void with_seed(const uint8_t *data, size_t size, uint32_t out_dim)
{
    const uint32_t rows = 8;
    if (out_dim == 0 || out_dim > (1u << 16))
        return;
    float *seed = malloc((size_t)rows * out_dim * sizeof(float));
    if (!seed)
        return;
    for (size_t i = 0; i < (size_t)rows * out_dim; i++)
        seed[i] = (i % 3 == 0) ? 0.5f : -0.25f;
    nh_error err = {0};
    nh_model *m = NULL;
    if (nh_onnx_import(data, size, seed, rows, &g_opts, &m, &err) == NH_OK) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (nh_model_serialize(m, &buf, &len, &err) == NH_OK) {
            nh_model *again = NULL;
            if (nh_model_load_buffer(buf, len, "fuzz", &again, &err) == NH_OK)
                nh_model_destroy(again);
        }
        free(buf);
    }
    nh_model_destroy(m);
    free(seed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nh_error err = {0};
    nh_model *m = NULL;
    if (nh_onnx_import(data, size, NULL, 0, &g_opts, &m, &err) == NH_OK) {
        uint32_t out_dim = m->out_dim;
        nh_model_destroy(m);
        with_seed(data, size, out_dim);
    }
    return 0;
}
