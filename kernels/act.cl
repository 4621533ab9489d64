/* Activations and elementwise ops of the hashing network (nhash/nhm.h op semantics).
 * act codes: 0 none, 1 ReLU, 2 HardSwish x*clip(x+3,0,6)/6, 3 HardSigmoid clip(x+3,0,6)/6. */

NH_INLINE float nh_act1(float v, uint act)
{
    float t;
    switch (act) {
    case 1:
        return v > 0.0f ? v : 0.0f;
    case 2:
        t = fmin(fmax(v + 3.0f, 0.0f), 6.0f);
        return v * t / 6.0f;
    case 3:
        t = fmin(fmax(v + 3.0f, 0.0f), 6.0f);
        return t / 6.0f;
    default:
        return v;
    }
}

/* The same on any float vector type (a macro: OpenCL C has no overloading). */
#define NH_ACT_V(v, act)                                                                      \
    ((act) == 1   ? fmax((v), 0.0f)                                                           \
     : (act) == 2 ? (v) * fmin(fmax((v) + 3.0f, 0.0f), 6.0f) / 6.0f                           \
     : (act) == 3 ? fmin(fmax((v) + 3.0f, 0.0f), 6.0f) / 6.0f                                 \
                  : (v))

/* y = act(x), count floats; y may be x. One work-item per value. */
kernel void nh_act(global const float *x, global float *y, uint count, uint act)
{
    uint i = get_global_id(0);
    if (i < count)
        y[i] = nh_act1(x[i], act);
}

/* y = act(a + b), count floats (residual add); y may be a or b. */
kernel void nh_add(global const float *a, global const float *b, global float *y, uint count,
                   uint act)
{
    uint i = get_global_id(0);
    if (i < count)
        y[i] = nh_act1(a[i] + b[i], act);
}

/* y[n][c][p] = act(a[n][c][p] * s[n][c][p or 0]): squeeze-excitation scaling (bcast = 1)
 * or an elementwise product (bcast = 0). y may be a. 16 values of one channel's plane per
 * work-item (vectors; one work-item per value left PoCL's code scalar). Grid: (ceil(hw /
 * 16), c, n). */
kernel void nh_mul(global const float *a, global const float *s, global float *y, uint c,
                   uint hw, uint bcast, uint act)
{
    uint p = get_global_id(0) * 16, ch = get_global_id(1), n = get_global_id(2);
    if (p >= hw)
        return;
    size_t i = ((size_t)n * c + ch) * hw + p;
    if (p + 16 <= hw) {
        float16 g = bcast ? (float16)(s[(size_t)n * c + ch]) : vload16(0, s + i);
        float16 v = vload16(0, a + i) * g;
        vstore16(NH_ACT_V(v, act), 0, y + i);
        return;
    }
    for (uint k = 0; p + k < hw; k++) {
        float g = bcast ? s[(size_t)n * c + ch] : s[i + k];
        y[i + k] = nh_act1(a[i + k] * g, act);
    }
}
