/* Convolutions of the hashing network on planar batches x[n][c][h][w]. Weights live in one
 * buffer; each kernel gets its node's offset w_off. Layout out_c x (c/groups) x kh x kw,
 * then out_c biases when has_bias. Padding (top, left) given; zeros outside the image.
 * Every kernel sums over (ci, ky, kx) in ascending order and adds the bias last.
 *
 * Guarded inputs: the convolutions that read rows as vectors get their input as the whole
 * slot buffer and x_off, the first float of the tensor; the host keeps at least 128
 * floats of slack before and after every tensor. A row vector that crosses the edge of its
 * row is then loaded whole (the lanes outside read the neighbouring row or the slack) and
 * its outside lanes are zeroed with a select: one load and one blend instead of a scalar
 * load per lane, which made the edge work-items (a third of them on a 90-pixel row) cost
 * more than all the others. */

/* Lane j of a vector of 8 values read along a row at base + j * step, zero outside
 * [0, width): the gather path for strides above 2. */
#define NH_EDGE(row, base, step, width, j)                                                    \
    (((base) + (j) * (step)) >= 0 && ((base) + (j) * (step)) < (width)                       \
         ? (row)[(base) + (j) * (step)]                                                       \
         : 0.0f)
#define NH_EDGE8(row, base, step, width)                                                      \
    (float8)(NH_EDGE(row, base, step, width, 0), NH_EDGE(row, base, step, width, 1),         \
             NH_EDGE(row, base, step, width, 2), NH_EDGE(row, base, step, width, 3),         \
             NH_EDGE(row, base, step, width, 4), NH_EDGE(row, base, step, width, 5),         \
             NH_EDGE(row, base, step, width, 6), NH_EDGE(row, base, step, width, 7))

/* 8 values along a row starting at base with step 1 or 2, zero outside [0, width). Needs a
 * guarded input: reads up to 2 floats before the row and 16 past it. */
NH_INLINE float8 nh_row8(global const float *row, int base, int step, int width)
{
    float8 v = step == 1 ? vload8(0, row + base) : vload16(0, row + base).even;
    if (base >= 0 && base + 8 * step <= width)
        return v;
    int8 idx = (int8)(base) + (int8)(0, 1, 2, 3, 4, 5, 6, 7) * step;
    return select((float8)(0.0f), v, idx >= 0 && idx < (int8)(width));
}

/* Store the first `count` (1..8) lanes of v at p. */
NH_INLINE void nh_store8(float8 v, global float *p, int count)
{
    if (count >= 8) {
        vstore8(v, 0, p);
        return;
    }
    p[0] = v.s0;
    if (count > 1) p[1] = v.s1;
    if (count > 2) p[2] = v.s2;
    if (count > 3) p[3] = v.s3;
    if (count > 4) p[4] = v.s4;
    if (count > 5) p[5] = v.s5;
    if (count > 6) p[6] = v.s6;
}

/* 16 values along a row, as nh_row8 (reads up to 32 floats past the row). */
NH_INLINE float16 nh_row16(global const float *row, int base, int step, int width)
{
    global const float *r = row + base;
    float16 v = step == 1 ? vload16(0, r) : (float16)(vload16(0, r).even, vload16(0, r + 16).even);
    if (base >= 0 && base + 16 * step <= width)
        return v;
    int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int16 idx = (int16)(base) + lane * step;
    return select((float16)(0.0f), v, idx >= 0 && idx < (int16)(width));
}

/* Store the first `count` (1..16) lanes of v at p. */
NH_INLINE void nh_store16(float16 v, global float *p, int count)
{
    if (count >= 16) {
        vstore16(v, 0, p);
        return;
    }
    nh_store8(v.lo, p, min(count, 8));
    if (count > 8)
        nh_store8(v.hi, p + 8, count - 8);
}

/* General conv (the stem): one work-item per 8 consecutive output pixels of a row and up
 * to 8 output channels of one group, so each input vector serves 8 channels. Strides 1 and
 * 2 load vectors; larger strides gather. NH_C2_V (8 or 16) pixels per work-item.
 * Grid: (ceil(ow / NH_C2_V), oh,
 * n * groups * ceil(out_c / groups / 8)). */
#ifndef NH_C2_V
#define NH_C2_V 8
#endif
#if NH_C2_V == 16
#define NH_C2_T float16
#define NH_C2_STORE nh_store16
#define NH_C2_ROW(row, base, step, width)                                                     \
    ((step) <= 2 ? nh_row16(row, base, step, width)                                           \
                 : (float16)(NH_EDGE8(row, base, step, width),                                \
                             NH_EDGE8(row, (base) + 8 * (step), step, width)))
#else
#define NH_C2_T float8
#define NH_C2_STORE nh_store8
#define NH_C2_ROW(row, base, step, width)                                                     \
    ((step) <= 2 ? nh_row8(row, base, step, width) : NH_EDGE8(row, base, step, width))
#endif
kernel void nh_conv2d(global const float *xg, uint x_off, global float *y, global const float *w,
                      uint w_off, uint c, uint h, uint wd, uint out_c, uint oh, uint ow, uint kh,
                      uint kw, uint stride, uint pt, uint pl, uint groups, uint has_bias)
{
    global const float *x = xg + x_off;
    uint ox0 = get_global_id(0) * NH_C2_V, oy = get_global_id(1);
    uint gin = c / groups, gout = out_c / groups, taps = gin * kh * kw;
    uint bpg = (gout + 7) / 8, blk = get_global_id(2) % (groups * bpg);
    uint n = get_global_id(2) / (groups * bpg), g = blk / bpg;
    uint co0 = g * gout + blk % bpg * 8, cnt = min(8u, gout - blk % bpg * 8);
    if (ox0 >= ow || oy >= oh)
        return;
    /* Rows past cnt repeat co0's; their results are not stored. */
    global const float *wb = w + w_off;
    global const float *w0 = wb + (size_t)co0 * taps;
    global const float *w1 = wb + (size_t)(cnt > 1 ? co0 + 1 : co0) * taps;
    global const float *w2 = wb + (size_t)(cnt > 2 ? co0 + 2 : co0) * taps;
    global const float *w3 = wb + (size_t)(cnt > 3 ? co0 + 3 : co0) * taps;
    global const float *w4 = wb + (size_t)(cnt > 4 ? co0 + 4 : co0) * taps;
    global const float *w5 = wb + (size_t)(cnt > 5 ? co0 + 5 : co0) * taps;
    global const float *w6 = wb + (size_t)(cnt > 6 ? co0 + 6 : co0) * taps;
    global const float *w7 = wb + (size_t)(cnt > 7 ? co0 + 7 : co0) * taps;
    NH_C2_T a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
    int x0 = (int)(ox0 * stride) - (int)pl;
    for (uint ci = 0; ci < gin; ci++) {
        global const float *xp = x + ((size_t)n * c + g * gin + ci) * h * wd;
        for (uint ky = 0; ky < kh; ky++) {
            int iy = (int)(oy * stride + ky) - (int)pt;
            if (iy < 0 || iy >= (int)h)
                continue;
            global const float *row = xp + (size_t)iy * wd;
            for (uint kx = 0; kx < kw; kx++) {
                int base = x0 + (int)kx;
                NH_C2_T v = NH_C2_ROW(row, base, (int)stride, (int)wd);
                uint t = (ci * kh + ky) * kw + kx;
                a0 += w0[t] * v;
                a1 += w1[t] * v;
                a2 += w2[t] * v;
                a3 += w3[t] * v;
                a4 += w4[t] * v;
                a5 += w5[t] * v;
                a6 += w6[t] * v;
                a7 += w7[t] * v;
            }
        }
    }
    int count = (int)min((uint)NH_C2_V, ow - ox0);
    global float *yp = y + (((size_t)n * out_c + co0) * oh + oy) * ow + ox0;
    size_t plane = (size_t)oh * ow;
    global const float *bias = wb + (size_t)out_c * taps + co0;
#define NH_CONV_OUT(j, a)                                                                     \
    if (j < cnt)                                                                              \
        NH_C2_STORE(has_bias ? a + bias[j] : a, yp + j * plane, count);
    NH_CONV_OUT(0, a0)
    NH_CONV_OUT(1, a1)
    NH_CONV_OUT(2, a2)
    NH_CONV_OUT(3, a3)
    NH_CONV_OUT(4, a4)
    NH_CONV_OUT(5, a5)
    NH_CONV_OUT(6, a6)
    NH_CONV_OUT(7, a7)
#undef NH_CONV_OUT
}

/* Depthwise conv (groups == c == out_c), KxK with K a compile-time constant so the taps
 * unroll; V (8 or 16) consecutive output pixels of a row per work-item (16 for wide rows,
 * 8 where 16 would waste lanes). Grid: (ceil(ow / V), oh, n * c). */
#define NH_DW(K, V)                                                                           \
    kernel void nh_conv_dw##K##_##V(global const float *xg, uint x_off, global float *y,      \
                                    global const float *w, uint w_off, uint c, uint h,        \
                                    uint wd, uint oh, uint ow, uint stride, uint pt, uint pl, \
                                    uint has_bias)                                            \
    {                                                                                         \
        global const float *x = xg + x_off;                                                   \
        uint ox0 = get_global_id(0) * V, oy = get_global_id(1), nc = get_global_id(2);        \
        if (ox0 >= ow || oy >= oh)                                                            \
            return;                                                                           \
        uint ch = nc % c;                                                                     \
        global const float *xp = x + (size_t)nc * h * wd;                                     \
        global const float *wp = w + w_off + (size_t)ch * K * K;                              \
        int x0 = (int)(ox0 * stride) - (int)pl;                                               \
        float##V s = 0.0f;                                                                    \
        for (int ky = 0; ky < K; ky++) {                                                      \
            int iy = (int)(oy * stride) + ky - (int)pt;                                       \
            if (iy < 0 || iy >= (int)h)                                                       \
                continue;                                                                     \
            global const float *row = xp + (size_t)iy * wd;                                   \
            for (int kx = 0; kx < K; kx++)                                                    \
                s += wp[ky * K + kx] * nh_row##V(row, x0 + kx, (int)stride, (int)wd);         \
        }                                                                                     \
        if (has_bias)                                                                         \
            s += w[w_off + (size_t)c * K * K + ch];                                           \
        nh_store##V(s, y + ((size_t)nc * oh + oy) * ow + ox0, (int)min((uint)V, ow - ox0));   \
    }
NH_DW(3, 8)
NH_DW(5, 8)
NH_DW(3, 16)
NH_DW(5, 16)

/* Any other depthwise kernel size. Grid: (ow, oh, n * c). */
kernel void nh_conv_dw(global const float *x, global float *y, global const float *w, uint w_off,
                       uint c, uint h, uint wd, uint oh, uint ow, uint kh, uint kw, uint stride,
                       uint pt, uint pl, uint has_bias)
{
    uint ox = get_global_id(0), oy = get_global_id(1), nc = get_global_id(2);
    if (ox >= ow || oy >= oh)
        return;
    uint ch = nc % c;
    global const float *xp = x + (size_t)nc * h * wd;
    global const float *wp = w + w_off + (size_t)ch * kh * kw;
    int y0 = (int)(oy * stride) - (int)pt, x0 = (int)(ox * stride) - (int)pl;
    float s = 0.0f;
    for (uint ky = 0; ky < kh; ky++) {
        int iy = y0 + (int)ky;
        for (uint kx = 0; kx < kw; kx++) {
            int ix = x0 + (int)kx;
            int ok = iy >= 0 && iy < (int)h && ix >= 0 && ix < (int)wd;
            float v = xp[ok ? iy * (int)wd + ix : 0];
            s += wp[ky * kw + kx] * (ok ? v : 0.0f);
        }
    }
    if (has_bias)
        s += w[w_off + (size_t)c * kh * kw + ch];
    y[((size_t)nc * oh + oy) * ow + ox] = s;
}

/* Pointwise 1x1 conv as a GEMM per image: y[co][p] = sum_ci W[co][ci] x[ci][p] (+ b[co]).
 * Each work-item computes a register tile of NH_PW_CO (4 or 8) output channels x NH_PW_V
 * consecutive pixels (one vector, 4/8/16): loads along pixels are contiguous (coalesced on
 * GPUs, vector lanes on CPUs, where the device compiler does not vectorize across work-items
 * with a loop inside), and each weight is reused NH_PW_V times. Grid: (ceil(hw / NH_PW_V),
 * ceil(out_c / NH_PW_CO), n). Named accumulators, not a private array: some CPU device
 * compilers keep private arrays in memory. */
#ifndef NH_PW_V
#define NH_PW_V 8
#endif
#define NH_CAT_(a, b) a##b
#define NH_CAT(a, b) NH_CAT_(a, b)
#define NH_VEC NH_CAT(float, NH_PW_V)
#define NH_VLOAD NH_CAT(vload, NH_PW_V)
#define NH_VSTORE NH_CAT(vstore, NH_PW_V)

#ifndef NH_PW_CO
#define NH_PW_CO 4
#endif
kernel void nh_conv1x1(global const float *x, global float *y, global const float *w, uint w_off,
                       uint c, uint hw, uint out_c, uint has_bias)
{
    uint p0 = get_global_id(0) * NH_PW_V, co0 = get_global_id(1) * NH_PW_CO, n = get_global_id(2);
    if (p0 >= hw || co0 >= out_c)
        return;
    global const float *xp = x + (size_t)n * c * hw + p0;
    /* Rows past out_c repeat the last one; their results are not stored. */
#define NH_PW_W(j) global const float *w##j = w + w_off + (size_t)min(co0 + j, out_c - 1) * c;
    NH_PW_W(0) NH_PW_W(1) NH_PW_W(2) NH_PW_W(3)
#if NH_PW_CO == 8
    NH_PW_W(4) NH_PW_W(5) NH_PW_W(6) NH_PW_W(7)
#endif
    NH_VEC a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#if NH_PW_CO == 8
    NH_VEC a4 = 0.0f, a5 = 0.0f, a6 = 0.0f, a7 = 0.0f;
#define NH_PW_ACC8(v) a4 += w4[ci] * v; a5 += w5[ci] * v; a6 += w6[ci] * v; a7 += w7[ci] * v;
#else
#define NH_PW_ACC8(v)
#endif
#define NH_PW_ACC(v)                                                                          \
    a0 += w0[ci] * v;                                                                         \
    a1 += w1[ci] * v;                                                                         \
    a2 += w2[ci] * v;                                                                         \
    a3 += w3[ci] * v;                                                                         \
    NH_PW_ACC8(v)
    if (p0 + NH_PW_V <= hw) {
        for (uint ci = 0; ci < c; ci++) {
            NH_VEC v = NH_VLOAD(0, xp + (size_t)ci * hw);
            NH_PW_ACC(v)
        }
    } else {
        for (uint ci = 0; ci < c; ci++) {
            float t[NH_PW_V];
            for (uint k = 0; k < NH_PW_V; k++)
                t[k] = p0 + k < hw ? xp[(size_t)ci * hw + k] : 0.0f;
            NH_VEC v = NH_VLOAD(0, t);
            NH_PW_ACC(v)
        }
    }
#if NH_PW_CO == 8
    NH_VEC r[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
#else
    NH_VEC r[4] = {a0, a1, a2, a3};
#endif
    for (uint j = 0; j < NH_PW_CO && co0 + j < out_c; j++) {
        NH_VEC o = r[j];
        if (has_bias)
            o += w[w_off + (size_t)out_c * c + co0 + j];
        global float *yr = y + ((size_t)n * out_c + co0 + j) * hw + p0;
        if (p0 + NH_PW_V <= hw) {
            NH_VSTORE(o, 0, yr);
        } else {
            float t[NH_PW_V];
            NH_VSTORE(o, 0, t);
            for (uint k = 0; k < NH_PW_V && p0 + k < hw; k++)
                yr[k] = t[k];
        }
    }
}
