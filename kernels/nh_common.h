/* Prepended to every nhash OpenCL program (see host/cl.c). Reproducibility first:
 * no contraction of a*b+c into fma unless a kernel asks for it explicitly. */
#pragma OPENCL FP_CONTRACT OFF
