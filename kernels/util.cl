/* Small utility kernels: tensor conversion from decoded pixels. */

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
