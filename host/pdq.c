/*
 * PDQ in plain C: the reference for the OpenCL kernels and the CPU backend. See nhash/pdq.h.
 *
 * Every float operation below mirrors Meta's C++ (pdq/cpp/downscaling/downscaling.cpp,
 * pdq/cpp/hashing/pdqhashing.cpp, torben.cpp) operation for operation: float running sums
 * in the box filter divided by an int window count, double arithmetic only where the
 * reference has it (decimation indices, the DCT matrix), float DCT accumulations in k
 * order. Built with -ffp-contract=off so no a*b+c becomes an fma. Change nothing here
 * without rerunning tests/test_pdq.c against tests/data/pdq.
 */
#include "nhash/pdq.h"
#include "nhash/kind.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct nh_pdq_scratch {
    int max_w, max_h;
    float *buf1, *buf2; /* max_h x max_w each */
    float *colsum;      /* max_w running sums of the column pass */
    float a64[64 * 64];
    float t16x64[16 * 64];
    float c16[256];
    float aux16[256];
};

/* The reference's coefficients: double literals narrowed to float. */
static const float luma_r = 0.299;
static const float luma_g = 0.587;
static const float luma_b = 0.114;

void nh_pdq_image_rgb(nh_pdq_image *img, const uint8_t *rgb, int width, int height)
{
    img->pixels = rgb;
    img->width = width;
    img->height = height;
    img->channels = 3;
    img->gray = 0;
    img->stride = 0;
}

static size_t img_stride(const nh_pdq_image *img)
{
    return img->stride ? img->stride : (size_t)img->width * (size_t)img->channels;
}

int nh_pdq_image_is_gray(const nh_pdq_image *img)
{
    if (img->channels < 3 || img->gray)
        return 1;
    size_t stride = img_stride(img);
    for (int y = 0; y < img->height; y++) {
        const uint8_t *p = img->pixels + (size_t)y * stride;
        for (int x = 0; x < img->width; x++, p += img->channels)
            if (p[0] != p[1] || p[0] != p[2])
                return 0;
    }
    return 1;
}

static int img_valid(const nh_pdq_image *img)
{
    return img && img->pixels && img->width > 0 && img->height > 0 && img->channels >= 1 &&
           img->channels <= 4 &&
           (img->stride == 0 || img->stride >= (size_t)img->width * (size_t)img->channels);
}

void nh_pdq_work_size(const nh_pdq_image *img, unsigned flags, int *width, int *height)
{
    if (!(flags & NH_PDQ_FULL_RES) &&
        (img->width > NH_PDQ_REF_DIM || img->height > NH_PDQ_REF_DIM)) {
        *width = NH_PDQ_REF_DIM;
        *height = NH_PDQ_REF_DIM;
    } else {
        *width = img->width;
        *height = img->height;
    }
}

void nh_pdq_luma(const nh_pdq_image *img, unsigned flags, float *luma)
{
    int w, h;
    nh_pdq_work_size(img, flags, &w, &h);
    size_t stride = img_stride(img);
    int gray = img->gray || img->channels < 3;
    for (int y = 0; y < h; y++) {
        /* Nearest-neighbour squash: CImg resize(512, 512), interpolation 1. */
        int sy = (int)((long long)y * img->height / h);
        const uint8_t *row = img->pixels + (size_t)sy * stride;
        float *out = luma + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            int sx = (int)((long long)x * img->width / w);
            const uint8_t *p = row + (size_t)sx * img->channels;
            if (gray)
                out[x] = (float)p[0];
            else
                out[x] = luma_r * p[0] + luma_g * p[1] + luma_b * p[2];
        }
    }
}

/* The reference's box1DFloat along one row (stride 1). */
static void box_row(const float *in, float *out, int len, int window)
{
    int half = (window + 2) / 2;
    int n1 = half - 1, n2 = window - half + 1, n3 = len - window, n4 = half - 1;
    int li = 0, ri = 0, oi = 0, count = 0;
    float sum = 0.0f;
    for (int i = 0; i < n1; i++) {
        sum += in[ri++];
        count++;
    }
    for (int i = 0; i < n2; i++) {
        sum += in[ri++];
        count++;
        out[oi++] = sum / count;
    }
    for (int i = 0; i < n3; i++) {
        sum += in[ri++];
        sum -= in[li++];
        out[oi++] = sum / count;
    }
    for (int i = 0; i < n4; i++) {
        sum -= in[li++];
        count--;
        out[oi++] = sum / count;
    }
}

/*
 * box1DFloat down every column at once: each column keeps its own running sum and sees
 * exactly the reference's sequence of operations, but memory is walked row by row.
 */
static void box_cols(const float *in, float *out, int w, int h, int window, float *sum)
{
    int half = (window + 2) / 2;
    int n1 = half - 1, n2 = window - half + 1, n3 = h - window, n4 = half - 1;
    int li = 0, ri = 0, oi = 0, count = 0;
    for (int c = 0; c < w; c++)
        sum[c] = 0.0f;
    for (int i = 0; i < n1; i++, ri++) {
        const float *r = in + (size_t)ri * w;
        for (int c = 0; c < w; c++)
            sum[c] += r[c];
        count++;
    }
    for (int i = 0; i < n2; i++, ri++, oi++) {
        const float *r = in + (size_t)ri * w;
        float *o = out + (size_t)oi * w;
        count++;
        for (int c = 0; c < w; c++) {
            sum[c] += r[c];
            o[c] = sum[c] / count;
        }
    }
    for (int i = 0; i < n3; i++, ri++, li++, oi++) {
        const float *r = in + (size_t)ri * w;
        const float *l = in + (size_t)li * w;
        float *o = out + (size_t)oi * w;
        for (int c = 0; c < w; c++) {
            sum[c] += r[c];
            sum[c] -= l[c];
            o[c] = sum[c] / count;
        }
    }
    for (int i = 0; i < n4; i++, li++, oi++) {
        const float *l = in + (size_t)li * w;
        float *o = out + (size_t)oi * w;
        count--;
        for (int c = 0; c < w; c++) {
            sum[c] -= l[c];
            o[c] = sum[c] / count;
        }
    }
}

static void blur_decimate(float *buf1, float *buf2, int w, int h, float *out64, float *colsum)
{
    int win_rows = (w + 127) / 128; /* computeJaroszFilterWindowSize(w, 64) */
    int win_cols = (h + 127) / 128;
    for (int pass = 0; pass < 2; pass++) {
        for (int y = 0; y < h; y++)
            box_row(buf1 + (size_t)y * w, buf2 + (size_t)y * w, w, win_rows);
        box_cols(buf2, buf1, w, h, win_cols, colsum);
    }
    for (int i = 0; i < 64; i++) {
        int ini = (int)(((i + 0.5) * h) / 64);
        for (int j = 0; j < 64; j++) {
            int inj = (int)(((j + 0.5) * w) / 64);
            out64[i * 64 + j] = buf1[(size_t)ini * w + inj];
        }
    }
}

void nh_pdq_blur_decimate(float *buf1, float *buf2, int width, int height, float *out64)
{
    float *colsum = malloc((size_t)width * sizeof *colsum);
    if (!colsum)
        return; /* test helper only: out64 left as is */
    blur_decimate(buf1, buf2, width, height, out64, colsum);
    free(colsum);
}

int nh_pdq_quality(const float *a)
{
    int gradient_sum = 0;
    for (int i = 0; i < 63; i++) {
        for (int j = 0; j < 64; j++) {
            float u = a[i * 64 + j], v = a[(i + 1) * 64 + j];
            int d = ((u - v) * 100) / 255;
            gradient_sum += abs(d);
        }
    }
    for (int i = 0; i < 64; i++) {
        for (int j = 0; j < 63; j++) {
            float u = a[i * 64 + j], v = a[i * 64 + j + 1];
            int d = ((u - v) * 100) / 255;
            gradient_sum += abs(d);
        }
    }
    int quality = gradient_sum / 90;
    return quality > 100 ? 100 : quality;
}

static float dct_matrix[16 * 64];
static int dct_ready;

static void dct_matrix_fill(void)
{
    /* As the reference: float scale factor, double cosine argument and product. */
    const double pi = 3.14159265358979323846;
    const float scale = sqrt(2.0 / 64.0);
    for (size_t i = 0; i < 16; i++)
        for (size_t j = 0; j < 64; j++)
            dct_matrix[i * 64 + j] =
                (float)(scale * cos((pi / 2.0 / 64.0) * (double)(i + 1) * (double)(2 * j + 1)));
}

const float *nh_pdq_dct_matrix(void)
{
    /* Filling twice from two threads writes the same bytes, so a plain flag is enough
     * in practice; callers that care call this once before starting threads. */
    if (!__atomic_load_n(&dct_ready, __ATOMIC_ACQUIRE)) {
        dct_matrix_fill();
        __atomic_store_n(&dct_ready, 1, __ATOMIC_RELEASE);
    }
    return dct_matrix;
}

void nh_pdq_dct(const float *a, float *t, float *out)
{
    const float *d = nh_pdq_dct_matrix();
    for (int i = 0; i < 16; i++) {
        for (int j = 0; j < 64; j++) {
            float sum = 0.0f;
            for (int k = 0; k < 64; k++)
                sum += d[i * 64 + k] * a[k * 64 + j];
            t[i * 64 + j] = sum;
        }
    }
    for (int i = 0; i < 16; i++) {
        for (int j = 0; j < 16; j++) {
            float sum = 0.0f;
            for (int k = 0; k < 64; k++)
                sum += t[i * 64 + k] * d[j * 64 + k];
            out[i * 16 + j] = sum;
        }
    }
}

void nh_pdq_dct_dihedral(const float *a, nh_pdq_dihedral which, float *b)
{
    /* The reference's dct16OriginalTo* loops: odd frequencies (even index) change sign
     * under a reflection, rotations and diagonal flips transpose. */
    for (int i = 0; i < 16; i++) {
        for (int j = 0; j < 16; j++) {
            float v = a[i * 16 + j];
            switch (which) {
            case NH_PDQ_ROTATE_90:
                b[j * 16 + i] = (j & 1) ? v : -v;
                break;
            case NH_PDQ_ROTATE_180:
                b[i * 16 + j] = ((i + j) & 1) ? -v : v;
                break;
            case NH_PDQ_ROTATE_270:
                b[j * 16 + i] = (i & 1) ? v : -v;
                break;
            case NH_PDQ_FLIP_X:
                b[i * 16 + j] = (i & 1) ? v : -v;
                break;
            case NH_PDQ_FLIP_Y:
                b[i * 16 + j] = (j & 1) ? v : -v;
                break;
            case NH_PDQ_FLIP_PLUS_1:
                b[j * 16 + i] = v;
                break;
            case NH_PDQ_FLIP_MINUS_1:
                b[j * 16 + i] = ((i + j) & 1) ? -v : v;
                break;
            case NH_PDQ_ORIGINAL:
            default:
                b[i * 16 + j] = v;
                break;
            }
        }
    }
}

float nh_pdq_median(const float *m, int n)
{
    int less, greater, equal;
    float min, max, guess, maxltguess, mingtguess;
    min = max = m[0];
    for (int i = 1; i < n; i++) {
        if (m[i] < min)
            min = m[i];
        if (m[i] > max)
            max = m[i];
    }
    for (;;) {
        guess = (min + max) / 2;
        less = greater = equal = 0;
        maxltguess = min;
        mingtguess = max;
        for (int i = 0; i < n; i++) {
            if (m[i] < guess) {
                less++;
                if (m[i] > maxltguess)
                    maxltguess = m[i];
            } else if (m[i] > guess) {
                greater++;
                if (m[i] < mingtguess)
                    mingtguess = m[i];
            } else {
                equal++;
            }
        }
        if (less <= (n + 1) / 2 && greater <= (n + 1) / 2)
            break;
        else if (less > greater)
            max = maxltguess;
        else
            min = mingtguess;
    }
    if (less >= (n + 1) / 2)
        return maxltguess;
    else if (less + equal >= (n + 1) / 2)
        return guess;
    return mingtguess;
}

void nh_pdq_bits(const float *c, uint8_t *hash)
{
    float median = nh_pdq_median(c, 256);
    memset(hash, 0, NH_PDQ_HASH_BYTES);
    for (int k = 0; k < 256; k++)
        if (c[k] > median)
            hash[31 - (k >> 3)] |= (uint8_t)(1u << (k & 7));
}

nh_status nh_pdq_scratch_create(int max_width, int max_height, nh_pdq_scratch **out, nh_error *err)
{
    if (max_width <= 0 || max_height <= 0) {
        max_width = NH_PDQ_REF_DIM;
        max_height = NH_PDQ_REF_DIM;
    }
    if ((unsigned long long)max_width * (unsigned long long)max_height > (1ull << 31))
        return nh_error_set(err, NH_ERR_TOO_LARGE, NH_FOREIGN_NONE, 0, NULL,
                            "pdq scratch of %dx%d is too large", max_width, max_height);
    nh_pdq_scratch *s = calloc(1, sizeof *s);
    if (!s)
        goto nomem;
    size_t n = (size_t)max_width * (size_t)max_height;
    s->max_w = max_width;
    s->max_h = max_height;
    s->buf1 = malloc(n * sizeof *s->buf1);
    s->buf2 = malloc(n * sizeof *s->buf2);
    s->colsum = malloc((size_t)max_width * sizeof *s->colsum);
    if (!s->buf1 || !s->buf2 || !s->colsum)
        goto nomem;
    nh_pdq_dct_matrix();
    *out = s;
    return NH_OK;
nomem:
    nh_pdq_scratch_destroy(s);
    return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
}

void nh_pdq_scratch_destroy(nh_pdq_scratch *s)
{
    if (!s)
        return;
    free(s->buf1);
    free(s->buf2);
    free(s->colsum);
    free(s);
}

nh_pdq_scratch *nh_pdq_scratch_new(void)
{
    nh_pdq_scratch *s = NULL;
    return nh_pdq_scratch_create(0, 0, &s, NULL) == NH_OK ? s : NULL;
}

void nh_pdq_scratch_free(nh_pdq_scratch *s)
{
    nh_pdq_scratch_destroy(s);
}

nh_status nh_pdq_hash(nh_pdq_scratch *s, const nh_pdq_image *img, unsigned flags, uint8_t *hashes,
                      int *quality, nh_error *err)
{
    if (!s || !img_valid(img) || !hashes || !quality)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL,
                            "nh_pdq_hash: bad arguments");
    int w, h;
    nh_pdq_work_size(img, flags, &w, &h);
    int nvar = (flags & NH_PDQ_DIHEDRAL) ? NH_PDQ_NUM_DIHEDRAL : 1;
    if (w < NH_PDQ_MIN_DIM || h < NH_PDQ_MIN_DIM) {
        memset(hashes, 0, (size_t)nvar * NH_PDQ_HASH_BYTES);
        *quality = 0;
        return NH_OK;
    }
    if (w > s->max_w || h > s->max_h)
        return nh_error_set(err, NH_ERR_TOO_LARGE, NH_FOREIGN_NONE, 0, NULL,
                            "image of %dx%d exceeds the pdq scratch (%dx%d)", w, h, s->max_w,
                            s->max_h);
    nh_pdq_luma(img, flags, s->buf1);
    if (w == 64 && h == 64 && nvar == 1) {
        /* pdqFloat256FromFloatLuma takes a 64x64 input as the downsample, unfiltered;
         * pdqDihedralHash256esFromFloatLuma has no such shortcut. */
        memcpy(s->a64, s->buf1, sizeof s->a64);
    } else {
        blur_decimate(s->buf1, s->buf2, w, h, s->a64, s->colsum);
    }
    int q = nh_pdq_quality(s->a64);
    nh_pdq_dct(s->a64, s->t16x64, s->c16);
    for (int v = 0; v < nvar; v++) {
        if (v == NH_PDQ_ORIGINAL) {
            nh_pdq_bits(s->c16, hashes);
        } else {
            nh_pdq_dct_dihedral(s->c16, (nh_pdq_dihedral)v, s->aux16);
            nh_pdq_bits(s->aux16, hashes + (size_t)v * NH_PDQ_HASH_BYTES);
        }
    }
    *quality = q;
    return NH_OK;
}

unsigned nh_pdq_distance(const uint8_t *a, const uint8_t *b)
{
    return nh_hamming(a, b, NH_PDQ_HASH_BYTES);
}

int nh_pdq_reliable(int quality)
{
    return quality >= NH_PDQ_QUALITY_MIN;
}

int nh_pdq_match(const uint8_t *a, const uint8_t *b, unsigned max_distance)
{
    return nh_pdq_distance(a, b) <= max_distance;
}

int nh_pdq_match_dihedral(const uint8_t *variants, const uint8_t *other, unsigned max_distance,
                          unsigned *best_distance, nh_pdq_dihedral *best_variant)
{
    unsigned best = 257;
    int best_v = 0;
    for (int v = 0; v < NH_PDQ_NUM_DIHEDRAL; v++) {
        unsigned d = nh_pdq_distance(variants + (size_t)v * NH_PDQ_HASH_BYTES, other);
        if (d < best) {
            best = d;
            best_v = v;
        }
    }
    if (best_distance)
        *best_distance = best;
    if (best_variant)
        *best_variant = (nh_pdq_dihedral)best_v;
    return best <= max_distance;
}

const char *nh_pdq_dihedral_name(nh_pdq_dihedral which)
{
    /* nh_pdq_dihedral and nh_variant share one order (nhash/kind.h holds the names). */
    const char *name = nh_variant_pdq_name((nh_variant)which);
    return name ? name : "?";
}

void nh_pdq_hex(const uint8_t *hash, char *out)
{
    nh_hex_encode(hash, NH_PDQ_HASH_BYTES, out);
}

nh_status nh_pdq_hex_parse(const char *text, uint8_t *hash)
{
    if (!text)
        return NH_ERR_INVALID;
    return nh_hex_decode(text, strlen(text), hash, NH_PDQ_HASH_BYTES);
}
