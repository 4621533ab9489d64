/* Prepended to every nhash OpenCL program (see host/cl.c). Reproducibility first:
 * no contraction of a*b+c into fma unless a kernel asks for it explicitly. */
#pragma OPENCL FP_CONTRACT OFF

/* Helpers are forced inline: PoCL 3.1 kept nh_row16 as a call (vectors passed through
 * memory), which cost 7% of the network's time on a CPU device. */
#define NH_INLINE inline __attribute__((always_inline))
