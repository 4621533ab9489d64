/* Pooling and fully connected layers (SE and the head), on batches (needs act.cl). */

/* y[n][c] = mean over hw of x[n][c][.]. One work-item per (c, n). Grid: (c, n). */
kernel void nh_gap(global const float *x, global float *y, uint c, uint hw)
{
    uint ch = get_global_id(0), n = get_global_id(1);
    if (ch >= c)
        return;
    global const float *xp = x + ((size_t)n * c + ch) * hw;
    float s = 0.0f;
    for (uint p = 0; p < hw; p++)
        s += xp[p];
    y[(size_t)n * c + ch] = s / (float)hw;
}

/* y[n][o] = act(sum_i W[o][i] x[n][i] + b[o]): a 1x1 conv on C x 1 x 1 (GEMV per image).
 * W at w + w_off (out x in, row-major), bias after it when has_bias. Grid: (out, n). */
kernel void nh_fc(global const float *x, global float *y, global const float *w, uint w_off,
                  uint in, uint out, uint has_bias, uint act)
{
    uint o = get_global_id(0), n = get_global_id(1);
    if (o >= out)
        return;
    global const float *wr = w + w_off + (size_t)o * in;
    global const float *xr = x + (size_t)n * in;
    float s = 0.0f;
    uint i = 0;
    for (; i + 4 <= in; i += 4) {
        float4 a = vload4(0, wr + i), b = vload4(0, xr + i);
        s += a.x * b.x;
        s += a.y * b.y;
        s += a.z * b.z;
        s += a.w * b.w;
    }
    for (; i < in; i++)
        s += wr[i] * xr[i];
    if (has_bias)
        s += w[w_off + (size_t)out * in + o];
    y[(size_t)n * out + o] = nh_act1(s, act);
}
