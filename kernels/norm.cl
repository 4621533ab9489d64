/* Instance normalization with run-time statistics (needs act.cl for nh_act1).
 * One work-group of NH_IN_WG work-items per (image, channel) plane: mean, then the biased
 * variance of the centred values (two passes, so no cancellation), then
 * y = act((x - mean) * (gamma / sqrt(var + eps)) + beta). y may be x: every value of a plane
 * is read before any is written, and planes do not overlap. Grid: (NH_IN_WG, c, n). */
#ifndef NH_IN_WG
#define NH_IN_WG 64
#endif

inline float nh_wg_sum(local float *red, float v)
{
    uint l = get_local_id(0);
    red[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = NH_IN_WG / 2; s > 0; s >>= 1) {
        if (l < s)
            red[l] += red[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

kernel __attribute__((reqd_work_group_size(NH_IN_WG, 1, 1)))
void nh_inorm(global const float *x, global float *y, global const float *w, uint w_off,
              uint c, uint hw, float eps, uint act)
{
    local float red[NH_IN_WG];
    uint l = get_local_id(0), ch = get_global_id(1), n = get_global_id(2);
    size_t base = ((size_t)n * c + ch) * hw;
    global const float *xp = x + base;
    float s = 0.0f;
    for (uint p = l; p < hw; p += NH_IN_WG)
        s += xp[p];
    float mean = nh_wg_sum(red, s) / (float)hw;
    float q = 0.0f;
    for (uint p = l; p < hw; p += NH_IN_WG) {
        float d = xp[p] - mean;
        q += d * d;
    }
    float var = nh_wg_sum(red, q) / (float)hw;
    float scale = w[w_off + ch] / sqrt(var + eps);
    float beta = w[w_off + c + ch];
    global float *yp = y + base;
    for (uint p = l; p < hw; p += NH_IN_WG)
        yp[p] = nh_act1((xp[p] - mean) * scale + beta, act);
}
