/* Small utility kernels and helpers: tensor conversion from decoded pixels; sums in vector
 * lanes (first in the network's program, so the other files can use them). */

/* The 16 lanes of a added pairwise (a fixed order, the same on every device). */
NH_INLINE float nh_hsum16(float16 a)
{
    float8 a8 = a.lo + a.hi;
    float4 a4 = a8.lo + a8.hi;
    return (a4.x + a4.y) + (a4.z + a4.w);
}

/* Sum of p[0..n): 16 partial sums in a vector (lane k sums the terms i = k mod 16, so the
 * loop vectorises and is not one long add chain), then nh_hsum16, then the tail in order. */
NH_INLINE float nh_sum16(global const float *p, uint n)
{
    float16 a = 0.0f;
    uint i = 0;
    for (; i + 16 <= n; i += 16)
        a += vload16(0, p + i);
    float s = nh_hsum16(a);
    for (; i < n; i++)
        s += p[i];
    return s;
}

/* Interleaved RGB uint8 (n images x h x w x 3) -> planar float NCHW through a 256-entry
 * table, so the value of each byte is exactly what the host computed in double.
 * One work-item per pixel. */
kernel void nh_u8_to_nchw(global const uchar *src, global float *dst, constant float *lut,
                          uint hw, uint total)
{
    uint i = get_global_id(0);
    if (i >= total)
        return;
    uint img = i / hw, p = i % hw;
    global const uchar *s = src + (size_t)i * 3;
    global float *d = dst + (size_t)img * 3 * hw + p;
    d[0] = lut[s[0]];
    d[hw] = lut[s[1]];
    d[2 * hw] = lut[s[2]];
}
