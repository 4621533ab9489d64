/* Pooling and fully connected layers (SE and the head), on batches (needs util.cl, act.cl). */

/* y[n][c] = mean over hw of x[n][c][.]. One work-item per (c, n). Grid: (c, n). */
kernel void nh_gap(global const float *x, global float *y, uint c, uint hw)
{
    uint ch = get_global_id(0), n = get_global_id(1);
    if (ch >= c)
        return;
    global const float *xp = x + ((size_t)n * c + ch) * hw;
    y[(size_t)n * c + ch] = nh_sum16(xp, hw) / (float)hw;
}

/* y[n][o] = act(sum_i W[o][i] x[n][i] + b[o]): a 1x1 conv on C x 1 x 1 (GEMV per image).
 * W at w + w_off (out x in, row-major), bias after it when has_bias. 16 partial sums in a
 * vector (lane k sums the terms i = k mod 16), then added pairwise: one scalar chain was
 * bound by the adder's latency and cost 7% of the network for 0.6% of its work.
 * Grid: (out, n). */
kernel void nh_fc(global const float *x, global float *y, global const float *w, uint w_off,
                  uint in, uint out, uint has_bias, uint act)
{
    uint o = get_global_id(0), n = get_global_id(1);
    if (o >= out)
        return;
    global const float *wr = w + w_off + (size_t)o * in;
    global const float *xr = x + (size_t)n * in;
    float16 a = 0.0f;
    uint i = 0;
    for (; i + 16 <= in; i += 16)
        a += vload16(0, wr + i) * vload16(0, xr + i);
    float s = nh_hsum16(a);
    for (; i < in; i++)
        s += wr[i] * xr[i];
    if (has_bias)
        s += w[w_off + (size_t)out * in + o];
    y[(size_t)n * out + o] = nh_act1(s, act);
}
