/*
 * PDQ kernels, bit-exact with host/pdq.c (and so with Meta's C++ reference). See nhash/pdq.h.
 *
 * A batch holds up to N images in fixed slots of slot_px pixels: packed pixels (1 byte per
 * pixel for grey, 3 for RGB) at img * slot_px * 3, float planes at img * slot_px. desc[img]
 * is (width, height, flags, 0) with the flags below. Launch order:
 *   nh_pdq_luma      (pixels -> luma1)        global (>= max w*h, N)
 *   nh_pdq_box_rows  (luma1 -> luma2)         global (>= max h, N)
 *   nh_pdq_box_cols  (luma2 -> luma1)         global (>= max w, N)
 *   nh_pdq_box_rows, nh_pdq_box_cols again    (the two X,Y passes of the Jarosz filter)
 *   nh_pdq_finish    (luma1 -> hashes, quality) global (64 N), local 64: one group per image
 * The box filters run one work-item per row / column because the reference's float running
 * sum is sequential; each work-item repeats its exact sequence of adds and subtracts.
 *
 * Build options set by host/pdq_cl.c: NH_PDQ_KR/KG/KB (the float luma coefficients as hex
 * literals), NH_PDQ_DIV_DOUBLE (divide in double when the device lacks correctly rounded
 * float division; the double quotient rounded to float is the correctly rounded float
 * quotient), or -cl-fp32-correctly-rounded-divide-sqrt.
 */

#define NH_PDQ_GRAY 1   /* 1 byte per pixel, luma = that byte */
#define NH_PDQ_NOBLUR 2 /* 64x64 input of a plain hash: no filter (reference shortcut) */
#define NH_PDQ_TINY 4   /* a side under 5: zero hash, quality 0 */

#ifdef NH_PDQ_DIV_DOUBLE
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#define NH_DIV(a, b) ((float)((double)(a) / (double)(b)))
#else
#define NH_DIV(a, b) ((a) / (b))
#endif

kernel void nh_pdq_luma(global const uchar *pix, global const int4 *desc, global float *luma,
                        uint slot_px)
{
    uint p = get_global_id(0), img = get_global_id(1);
    int4 d = desc[img];
    if (p >= (uint)(d.x * d.y))
        return;
    global const uchar *s = pix + (size_t)img * slot_px * 3;
    float v;
    if (d.z & NH_PDQ_GRAY) {
        v = (float)s[p];
    } else {
        s += (size_t)p * 3;
        v = NH_PDQ_KR * (float)s[0] + NH_PDQ_KG * (float)s[1] + NH_PDQ_KB * (float)s[2];
    }
    luma[(size_t)img * slot_px + p] = v;
}

/* The reference's box1DFloat: window-size running mean with shrunken windows at the ends. */
static void box1d(global const float *in, global float *out, int len, int stride, int window)
{
    int hw = (window + 2) / 2;
    int n1 = hw - 1, n2 = window - hw + 1, n3 = len - window, n4 = hw - 1;
    size_t li = 0, ri = 0, oi = 0;
    int count = 0;
    float sum = 0.0f;
    for (int i = 0; i < n1; i++) {
        sum += in[ri];
        count++;
        ri += stride;
    }
    for (int i = 0; i < n2; i++) {
        sum += in[ri];
        count++;
        out[oi] = NH_DIV(sum, (float)count);
        ri += stride;
        oi += stride;
    }
    for (int i = 0; i < n3; i++) {
        sum += in[ri];
        sum -= in[li];
        out[oi] = NH_DIV(sum, (float)count);
        li += stride;
        ri += stride;
        oi += stride;
    }
    for (int i = 0; i < n4; i++) {
        sum -= in[li];
        count--;
        out[oi] = NH_DIV(sum, (float)count);
        li += stride;
        oi += stride;
    }
}

kernel void nh_pdq_box_rows(global const float *in, global float *out, global const int4 *desc,
                            uint slot_px)
{
    uint r = get_global_id(0), img = get_global_id(1);
    int4 d = desc[img];
    if (r >= (uint)d.y || (d.z & (NH_PDQ_NOBLUR | NH_PDQ_TINY)))
        return;
    size_t base = (size_t)img * slot_px + (size_t)r * d.x;
    box1d(in + base, out + base, d.x, 1, (d.x + 127) / 128);
}

kernel void nh_pdq_box_cols(global const float *in, global float *out, global const int4 *desc,
                            uint slot_px)
{
    uint c = get_global_id(0), img = get_global_id(1);
    int4 d = desc[img];
    if (c >= (uint)d.x || (d.z & (NH_PDQ_NOBLUR | NH_PDQ_TINY)))
        return;
    size_t base = (size_t)img * slot_px + c;
    box1d(in + base, out + base, d.y, d.x, (d.y + 127) / 128);
}

/* Coefficient (p, q) of dihedral variant v from the original's (host: nh_pdq_dct_dihedral). */
static float dih_value(local const float *b, uint v, int p, int q)
{
    float a = b[p * 16 + q], t = b[q * 16 + p];
    switch (v) {
    case 1: /* rotate 90 */
        return (p & 1) ? t : -t;
    case 2: /* rotate 180 */
        return ((p + q) & 1) ? -a : a;
    case 3: /* rotate 270 */
        return (q & 1) ? t : -t;
    case 4: /* flip x */
        return (p & 1) ? a : -a;
    case 5: /* flip y */
        return (q & 1) ? a : -a;
    case 6: /* flip +1 */
        return t;
    case 7: /* flip -1 */
        return ((p + q) & 1) ? -t : t;
    default:
        return a;
    }
}

/* Torben's lower median, as the reference's torben(). */
static float torben(local const float *m, int n)
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
        guess = NH_DIV(min + max, 2.0f);
        less = greater = equal = 0;
        maxltguess = min;
        mingtguess = max;
        for (int i = 0; i < n; i++) {
            float x = m[i];
            if (x < guess) {
                less++;
                if (x > maxltguess)
                    maxltguess = x;
            } else if (x > guess) {
                greater++;
                if (x < mingtguess)
                    mingtguess = x;
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

/* Decimation, quality, DCT, medians and bits of one image per work-group of 64. hashes:
 * N x nvar x 32 bytes, canonical order (bit k = i*16+j in byte 31 - k/8, bit k%8). */
kernel __attribute__((reqd_work_group_size(64, 1, 1))) void
nh_pdq_finish(global const float *luma, global const int4 *desc, constant float *dct,
              global uchar *hashes, global int *quality, uint slot_px, uint nvar)
{
    local float a[64 * 64]; /* the 64x64 downsample, then the variants' coefficients */
    local float t[16 * 64];
    local float c[256];
    local int qsum[64];
    uint lid = get_local_id(0), img = get_group_id(0);
    int4 d = desc[img];
    int w = d.x, h = d.y;
    global uchar *out = hashes + (size_t)img * nvar * 32;

    if (d.z & NH_PDQ_TINY) {
        for (uint k = lid; k < nvar * 32; k += 64)
            out[k] = 0;
        if (lid == 0)
            quality[img] = 0;
        return;
    }

    /* Block centres: (int)(((i + 0.5) * h) / 64) in the reference's double is exactly
     * ((2i + 1) * h) / 128 in integers. */
    global const float *src = luma + (size_t)img * slot_px;
    int j = (int)lid;
    int inj = (int)(((long)(2 * j + 1) * w) / 128);
    for (int i = 0; i < 64; i++) {
        int ini = (int)(((long)(2 * i + 1) * h) / 128);
        a[i * 64 + j] = src[(size_t)ini * w + inj];
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* Quality: integer sums, so any order gives the same total. */
    int g = 0;
    for (int i = 0; i < 63; i++) {
        float u = a[i * 64 + j], v = a[(i + 1) * 64 + j];
        int q = (int)NH_DIV((u - v) * 100.0f, 255.0f);
        g += q < 0 ? -q : q;
    }
    for (int k = 0; k < 63; k++) {
        float u = a[j * 64 + k], v = a[j * 64 + k + 1];
        int q = (int)NH_DIV((u - v) * 100.0f, 255.0f);
        g += q < 0 ? -q : q;
    }
    qsum[lid] = g;

    /* T = D A, each sum in k order. */
    for (int i = 0; i < 16; i++) {
        float sum = 0.0f;
        for (int k = 0; k < 64; k++)
            sum += dct[i * 64 + k] * a[k * 64 + j];
        t[i * 64 + j] = sum;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
        int total = 0;
        for (int k = 0; k < 64; k++)
            total += qsum[k];
        total /= 90;
        quality[img] = total > 100 ? 100 : total;
    }

    /* C = T D^t. */
    for (int m = 0; m < 4; m++) {
        int idx = (int)lid + 64 * m, ci = idx / 16, cj = idx % 16;
        float sum = 0.0f;
        for (int k = 0; k < 64; k++)
            sum += t[ci * 64 + k] * dct[cj * 64 + k];
        c[idx] = sum;
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* One work-item per variant: coefficients, median, bits. */
    if (lid < nvar) {
        local float *vc = a + lid * 256;
        for (int p = 0; p < 16; p++)
            for (int q = 0; q < 16; q++)
                vc[p * 16 + q] = dih_value(c, lid, p, q);
        float median = torben(vc, 256);
        uchar bytes[32];
        for (int k = 0; k < 32; k++)
            bytes[k] = 0;
        for (int k = 0; k < 256; k++)
            if (vc[k] > median)
                bytes[31 - (k >> 3)] |= (uchar)(1u << (k & 7));
        global uchar *o = out + lid * 32;
        for (int k = 0; k < 32; k++)
            o[k] = bytes[k];
    }
}
