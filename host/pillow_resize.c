/*
 * Pillow 9.4's BICUBIC resample (libImaging/Resample.c), reproduced from its documented
 * algorithm so that nh_decode's compat mode gives the bytes nnhash.py gets:
 *   - Keys cubic, a = -0.5, support 2, widened by filterscale = max(1, in/out);
 *   - per output pixel: window [center - support + .5, center + support + .5) truncated,
 *     weights f((x + xmin - center + .5) / filterscale), normalised in double, then
 *     rounded half away from zero to 22-bit fixed point (PRECISION_BITS = 32 - 8 - 2);
 *   - horizontal pass first, only over the rows the vertical pass will read, into an 8-bit
 *     intermediate (rounded by adding 1 << 21, clipped), then the vertical pass.
 */
#include "nhash/decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

static double bicubic_filter(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Fixed-point coefficients for one axis; returns ksize or 0 on allocation failure. */
static int precompute(int in_size, int out_size, int **bounds_out, int32_t **kk_out)
{
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *pre = malloc((size_t)out_size * (size_t)ksize * sizeof *pre);
    int *bounds = malloc((size_t)out_size * 2 * sizeof *bounds);
    int32_t *kk = malloc((size_t)out_size * (size_t)ksize * sizeof *kk);
    if (!pre || !bounds || !kk) {
        free(pre);
        free(bounds);
        free(kk);
        return 0;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        double *k = &pre[(size_t)xx * ksize];
        int x;
        for (x = 0; x < xmax; x++) {
            double w = bicubic_filter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0)
                k[x] /= ww;
        for (; x < ksize; x++)
            k[x] = 0;
        bounds[xx * 2] = xmin;
        bounds[xx * 2 + 1] = xmax;
    }
    for (size_t i = 0; i < (size_t)out_size * (size_t)ksize; i++)
        kk[i] = pre[i] < 0 ? (int32_t)(-0.5 + pre[i] * (1 << PRECISION_BITS))
                           : (int32_t)(0.5 + pre[i] * (1 << PRECISION_BITS));
    free(pre);
    *bounds_out = bounds;
    *kk_out = kk;
    return ksize;
}

static inline uint8_t clip8(int32_t in)
{
    if (in >= (1 << PRECISION_BITS << 8))
        return 255;
    if (in <= 0)
        return 0;
    return (uint8_t)(in >> PRECISION_BITS);
}

nh_status nh_resize_pillow_bicubic(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw,
                                   int dh)
{
    if (!src || !dst || sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0)
        return NH_ERR_INVALID;
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * sh * 3);
        return NH_OK;
    }
    nh_status st = NH_OK;
    int *bh = NULL, *bv = NULL;
    int32_t *kh = NULL, *kv = NULL;
    uint8_t *tmp = NULL;
    int ksh = precompute(sw, dw, &bh, &kh);
    int ksv = precompute(sh, dh, &bv, &kv);
    if (!ksh || !ksv) {
        st = NH_ERR_NOMEM;
        goto cleanup;
    }
    int need_h = sw != dw, need_v = sh != dh;
    int ybox_first = bv[0];
    int ybox_last = bv[dh * 2 - 2] + bv[dh * 2 - 1];
    const uint8_t *vsrc = src;
    int vsrc_w = sw;
    if (need_h) {
        int rows = ybox_last - ybox_first;
        for (int i = 0; i < dh; i++)
            bv[i * 2] -= ybox_first;
        tmp = malloc((size_t)dw * rows * 3);
        if (!tmp) {
            st = NH_ERR_NOMEM;
            goto cleanup;
        }
        for (int y = 0; y < rows; y++) {
            const uint8_t *row = src + (size_t)(y + ybox_first) * sw * 3;
            uint8_t *o = tmp + (size_t)y * dw * 3;
            for (int xx = 0; xx < dw; xx++) {
                int xmin = bh[xx * 2], xmax = bh[xx * 2 + 1];
                const int32_t *k = &kh[(size_t)xx * ksh];
                int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
                for (int x = 0; x < xmax; x++) {
                    const uint8_t *p = row + (size_t)(x + xmin) * 3;
                    s0 += p[0] * k[x];
                    s1 += p[1] * k[x];
                    s2 += p[2] * k[x];
                }
                o[xx * 3] = clip8(s0);
                o[xx * 3 + 1] = clip8(s1);
                o[xx * 3 + 2] = clip8(s2);
            }
        }
        vsrc = tmp;
        vsrc_w = dw;
    }
    if (need_v) {
        for (int yy = 0; yy < dh; yy++) {
            int ymin = bv[yy * 2], ymax = bv[yy * 2 + 1];
            const int32_t *k = &kv[(size_t)yy * ksv];
            uint8_t *o = dst + (size_t)yy * dw * 3;
            for (int xx = 0; xx < dw * 3; xx++) {
                int32_t s = 1 << (PRECISION_BITS - 1);
                for (int y = 0; y < ymax; y++)
                    s += vsrc[(size_t)(y + ymin) * vsrc_w * 3 + xx] * k[y];
                o[xx] = clip8(s);
            }
        }
    } else {
        memcpy(dst, vsrc, (size_t)dw * dh * 3);
    }
cleanup:
    free(tmp);
    free(bh);
    free(bv);
    free(kh);
    free(kv);
    return st;
}
