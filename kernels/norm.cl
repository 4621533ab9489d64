/* Instance normalization with run-time statistics (needs act.cl for nh_act1, util.cl for
 * the sums).
 * One work-group of NH_IN_WG work-items per (image, channel) plane: mean, then the biased
 * variance of the centred values (two passes, so no cancellation), then
 * y = act((x - mean) * (gamma / sqrt(var + eps)) + beta). y may be x: every value of a plane
 * is read before any is written, and planes do not overlap. Grid: (NH_IN_WG, c, n). */
#ifndef NH_IN_WG
#define NH_IN_WG 64
#endif

inline float nh_wg_sum(local float *red, float v)
{
#if NH_IN_WG == 1
    (void)red;
    return v;
#else
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
#endif
}

kernel __attribute__((reqd_work_group_size(NH_IN_WG, 1, 1)))
void nh_inorm(global const float *x, global float *y, global const float *w, uint w_off,
              uint c, uint hw, float eps, uint act)
{
    local float red[NH_IN_WG];
    uint l = get_local_id(0), ch = get_global_id(1), n = get_global_id(2);
    size_t base = ((size_t)n * c + ch) * hw;
    global const float *xp = x + base;
#if NH_IN_WG == 1
    /* One work-item per plane (CPU devices): 16 partial sums in a vector, so the loops
     * vectorise and each partial sum stays short. */
    (void)l;
    (void)red;
    float mean = nh_sum16(xp, hw) / (float)hw;
    float16 a = 0.0f;
    uint p = 0;
    for (; p + 16 <= hw; p += 16) {
        float16 d = vload16(0, xp + p) - mean;
        a += d * d;
    }
    float q = nh_hsum16(a);
    for (; p < hw; p++) {
        float d = xp[p] - mean;
        q += d * d;
    }
    float var = q / (float)hw;
    float scale = w[w_off + ch] / sqrt(var + eps);
    float beta = w[w_off + c + ch];
    global float *yp = y + base;
    for (p = 0; p + 16 <= hw; p += 16) {
        float16 v = (vload16(0, xp + p) - mean) * scale + beta;
        vstore16(NH_ACT_V(v, act), 0, yp + p);
    }
    for (; p < hw; p++)
        yp[p] = nh_act1((xp[p] - mean) * scale + beta, act);
#else
    /* Sums in blocks of 256 terms per work-item, so a long plane on a small work-group
     * (NH_IN_WG = 1 on CPUs) keeps float rounding small. */
    float s = 0.0f;
    for (uint b = l; b < hw; b += 256 * NH_IN_WG) {
        float t = 0.0f;
        for (uint p = b; p < min(hw, b + 256 * NH_IN_WG); p += NH_IN_WG)
            t += xp[p];
        s += t;
    }
    float mean = nh_wg_sum(red, s) / (float)hw;
    float q = 0.0f;
    for (uint b = l; b < hw; b += 256 * NH_IN_WG) {
        float t = 0.0f;
        for (uint p = b; p < min(hw, b + 256 * NH_IN_WG); p += NH_IN_WG) {
            float d = xp[p] - mean;
            t += d * d;
        }
        q += t;
    }
    float var = nh_wg_sum(red, q) / (float)hw;
    float scale = w[w_off + ch] / sqrt(var + eps);
    float beta = w[w_off + c + ch];
    global float *yp = y + base;
    for (uint p = l; p < hw; p += NH_IN_WG)
        yp[p] = nh_act1((xp[p] - mean) * scale + beta, act);
#endif
}
