/*
 * libFuzzer harness: the nnhash.py seed reader (nh_onnx_read_seed): a 128-byte header, then
 * rows x out_dim little-endian float32. Read as the 128-wide seed `nhash model import`
 * expects for NeuralHash and as a 1-wide one (every length past the header that is a whole
 * number of floats). Corpus: fuzz/corpus/seed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "nhash/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t dims[] = {128, 1};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        nh_error err = {0};
        float *seed = NULL;
        uint32_t rows = 0;
        if (nh_onnx_read_seed(data, size, dims[i], &seed, &rows, &err) == NH_OK) {
            volatile float sink = rows ? seed[(size_t)rows * dims[i] - 1] : 0.0f;
            (void)sink;
            free(seed);
        }
    }
    return 0;
}
