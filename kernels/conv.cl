/* Convolutions of the hashing network on planar batches x[n][c][h][w]. Weights live in one
 * buffer; each kernel gets its node's offset w_off. Layout out_c x (c/groups) x kh x kw,
 * then out_c biases when has_bias. Padding (top, left) given; zeros outside the image.
 * Every kernel sums over (ci, ky, kx) in ascending order and adds the bias last. */

/* General conv (the stem): one work-item per output value. Grid: (oh*ow, out_c, n). */
kernel void nh_conv2d(global const float *x, global float *y, global const float *w, uint w_off,
                      uint c, uint h, uint wd, uint out_c, uint oh, uint ow, uint kh, uint kw,
                      uint stride, uint pt, uint pl, uint groups, uint has_bias)
{
    uint p = get_global_id(0), co = get_global_id(1), n = get_global_id(2);
    if (p >= oh * ow)
        return;
    uint oy = p / ow, ox = p % ow;
    uint gin = c / groups, g = co / (out_c / groups);
    global const float *wp = w + w_off + (size_t)co * gin * kh * kw;
    float s = 0.0f;
    for (uint ci = 0; ci < gin; ci++) {
        global const float *xp = x + ((size_t)n * c + g * gin + ci) * h * wd;
        for (uint ky = 0; ky < kh; ky++) {
            int iy = (int)(oy * stride + ky) - (int)pt;
            for (uint kx = 0; kx < kw; kx++) {
                int ix = (int)(ox * stride + kx) - (int)pl;
                float wv = wp[(ci * kh + ky) * kw + kx];
                if (iy >= 0 && iy < (int)h && ix >= 0 && ix < (int)wd)
                    s += wv * xp[iy * wd + ix];
            }
        }
    }
    if (has_bias)
        s += w[w_off + (size_t)out_c * gin * kh * kw + co];
    y[((size_t)n * out_c + co) * oh * ow + p] = s;
}

/* Depthwise conv (groups == c == out_c), 3x3 or 5x5 SAME in the network. One work-item per
 * output value. Grid: (oh*ow, c, n). */
kernel void nh_conv_dw(global const float *x, global float *y, global const float *w, uint w_off,
                       uint c, uint h, uint wd, uint oh, uint ow, uint kh, uint kw, uint stride,
                       uint pt, uint pl, uint has_bias)
{
    uint p = get_global_id(0), ch = get_global_id(1), n = get_global_id(2);
    if (p >= oh * ow)
        return;
    uint oy = p / ow, ox = p % ow;
    global const float *xp = x + ((size_t)n * c + ch) * h * wd;
    global const float *wp = w + w_off + (size_t)ch * kh * kw;
    int y0 = (int)(oy * stride) - (int)pt, x0 = (int)(ox * stride) - (int)pl;
    float s = 0.0f;
    for (uint ky = 0; ky < kh; ky++) {
        int iy = y0 + (int)ky;
        if (iy < 0 || iy >= (int)h)
            continue;
        for (uint kx = 0; kx < kw; kx++) {
            int ix = x0 + (int)kx;
            if (ix >= 0 && ix < (int)wd)
                s += wp[ky * kw + kx] * xp[iy * wd + ix];
        }
    }
    if (has_bias)
        s += w[w_off + (size_t)c * kh * kw + ch];
    y[((size_t)n * c + ch) * oh * ow + p] = s;
}

/* Pointwise 1x1 conv as a GEMM per image: y[co][p] = sum_ci W[co][ci] x[ci][p] (+ b[co]).
 * Each work-item computes a 4 (channels) x 4 (pixels) register tile; loads along pixels
 * are contiguous, weights are shared by the whole work-group. Grid: (ceil(hw/4),
 * ceil(out_c/4), n). */
kernel void nh_conv1x1(global const float *x, global float *y, global const float *w, uint w_off,
                       uint c, uint hw, uint out_c, uint has_bias)
{
    uint p0 = get_global_id(0) * 4, co0 = get_global_id(1) * 4, n = get_global_id(2);
    if (p0 >= hw || co0 >= out_c)
        return;
    global const float *xp = x + (size_t)n * c * hw;
    global const float *wp = w + w_off;
    float4 acc0 = 0.0f, acc1 = 0.0f, acc2 = 0.0f, acc3 = 0.0f;
    uint co1 = min(co0 + 1, out_c - 1), co2 = min(co0 + 2, out_c - 1), co3 = min(co0 + 3, out_c - 1);
    int full = p0 + 4 <= hw;
    for (uint ci = 0; ci < c; ci++) {
        global const float *xr = xp + (size_t)ci * hw + p0;
        float4 v;
        if (full) {
            v = vload4(0, xr);
        } else {
            v.x = xr[0];
            v.y = p0 + 1 < hw ? xr[1] : 0.0f;
            v.z = p0 + 2 < hw ? xr[2] : 0.0f;
            v.w = 0.0f;
        }
        acc0 += wp[(size_t)co0 * c + ci] * v;
        acc1 += wp[(size_t)co1 * c + ci] * v;
        acc2 += wp[(size_t)co2 * c + ci] * v;
        acc3 += wp[(size_t)co3 * c + ci] * v;
    }
    if (has_bias) {
        global const float *b = wp + (size_t)out_c * c;
        acc0 += b[co0];
        acc1 += b[co1];
        acc2 += b[co2];
        acc3 += b[co3];
    }
    float4 accs[4] = {acc0, acc1, acc2, acc3};
    for (uint k = 0; k < 4 && co0 + k < out_c; k++) {
        global float *yr = y + ((size_t)n * out_c + co0 + k) * hw + p0;
        if (full) {
            vstore4(accs[k], 0, yr);
        } else {
            yr[0] = accs[k].x;
            if (p0 + 1 < hw)
                yr[1] = accs[k].y;
            if (p0 + 2 < hw)
                yr[2] = accs[k].z;
        }
    }
}
