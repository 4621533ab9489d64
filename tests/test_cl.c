/* cl: device listing, device choice, a kernel round trip, build failures carry the log. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nhash/cl.h"

static nh_cl *g_cl;

static int setup(void **state)
{
    (void)state;
    nh_error err;
    nh_error_clear(&err);
    if (nh_cl_create(NULL, NULL, &g_cl, &err) != NH_OK) {
        char buf[2048];
        fprintf(stderr, "no OpenCL device: %s\n", nh_error_format(&err, buf, sizeof buf));
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nh_cl_destroy(g_cl);
    return 0;
}

static void test_list(void **state)
{
    (void)state;
    nh_cl_device_info *d = NULL;
    size_t n = 0;
    nh_error err;
    nh_error_clear(&err);
    assert_int_equal(nh_cl_list(&d, &n, &err), NH_OK);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        assert_true(strlen(d[i].device_name) > 0);
        assert_true(d[i].compute_units >= 1);
    }
    free(d);
}

static void test_choice(void **state)
{
    (void)state;
    nh_error err;
    nh_error_clear(&err);
    nh_cl *cl = NULL;
    /* By index. */
    assert_int_equal(nh_cl_create("0", "0", &cl, &err), NH_OK);
    /* By name part, case-insensitive. */
    char part[8] = {0};
    memcpy(part, nh_cl_info(cl)->platform_name, 3);
    nh_cl_destroy(cl);
    cl = NULL;
    assert_int_equal(nh_cl_create(part, NULL, &cl, &err), NH_OK);
    nh_cl_destroy(cl);
    cl = NULL;
    /* No such device: an error naming the choice, not a crash. */
    assert_int_equal(nh_cl_create("99", NULL, &cl, &err), NH_ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "99"));
    assert_null(cl);
    /* The environment is honoured. */
    setenv("NH_CL_DEVICE", "no-such-device-name", 1);
    assert_int_equal(nh_cl_create(NULL, NULL, &cl, &err), NH_ERR_NOT_FOUND);
    unsetenv("NH_CL_DEVICE");
}

/* nh_u8_to_nchw: interleaved bytes -> planar floats through a table, exact. */
static void test_kernel_roundtrip(void **state)
{
    (void)state;
    nh_error err;
    nh_error_clear(&err);
    const char *files[] = {"util.cl"};
    cl_program prog = NULL;
    cl_kernel k = NULL;
    assert_int_equal(nh_cl_program_build(g_cl, files, 1, NULL, &prog, &err), NH_OK);
    assert_int_equal(nh_cl_kernel_create(prog, "nh_u8_to_nchw", &k, &err), NH_OK);
    const unsigned n = 3, hw = 37 * 29, total = n * hw;
    uint8_t *src = malloc(total * 3);
    float *dst = malloc(sizeof(float) * total * 3), lut[256];
    srand(3);
    for (unsigned i = 0; i < total * 3; i++)
        src[i] = (uint8_t)rand();
    for (int i = 0; i < 256; i++)
        lut[i] = (float)(i / 255.0 * 2.0 - 1.0);
    cl_int rc;
    cl_context ctx = nh_cl_context(g_cl);
    cl_mem bs = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, total * 3, src, &rc);
    assert_int_equal(rc, CL_SUCCESS);
    cl_mem bd = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, sizeof(float) * total * 3, NULL, &rc);
    assert_int_equal(rc, CL_SUCCESS);
    cl_mem bl = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof lut, lut, &rc);
    assert_int_equal(rc, CL_SUCCESS);
    clSetKernelArg(k, 0, sizeof bs, &bs);
    clSetKernelArg(k, 1, sizeof bd, &bd);
    clSetKernelArg(k, 2, sizeof bl, &bl);
    clSetKernelArg(k, 3, sizeof hw, &hw);
    clSetKernelArg(k, 4, sizeof total, &total);
    size_t gws = (total + 63) / 64 * 64;
    assert_int_equal(clEnqueueNDRangeKernel(nh_cl_queue(g_cl), k, 1, NULL, &gws, NULL, 0, NULL, NULL),
                     CL_SUCCESS);
    assert_int_equal(clEnqueueReadBuffer(nh_cl_queue(g_cl), bd, CL_TRUE, 0,
                                         sizeof(float) * total * 3, dst, 0, NULL, NULL),
                     CL_SUCCESS);
    for (unsigned i = 0; i < total; i++) {
        unsigned img = i / hw, p = i % hw;
        for (int c = 0; c < 3; c++)
            assert_true(dst[img * 3 * hw + c * hw + p] == lut[src[i * 3 + c]]);
    }
    clReleaseMemObject(bs);
    clReleaseMemObject(bd);
    clReleaseMemObject(bl);
    clReleaseKernel(k);
    clReleaseProgram(prog);
    free(src);
    free(dst);
}

/* A kernel that does not compile returns NH_ERR_CL_BUILD with the compiler's log. */
static void test_build_failure_log(void **state)
{
    (void)state;
    char dir[] = "/tmp/nh_kdir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/broken.cl", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("kernel void nh_broken(global int *x) { x[0] = undeclared_thing; }\n", f);
    fclose(f);
    setenv("NH_KERNEL_DIR", dir, 1);
    nh_error err;
    nh_error_clear(&err);
    const char *files[] = {"broken.cl"};
    cl_program prog = NULL;
    assert_int_equal(nh_cl_program_build(g_cl, files, 1, NULL, &prog, &err), NH_ERR_CL_BUILD);
    assert_null(prog);
    assert_non_null(strstr(err.msg, "undeclared_thing"));
    /* Files not in the override folder still come from the embedded copies. */
    const char *ok[] = {"util.cl"};
    assert_int_equal(nh_cl_program_build(g_cl, ok, 1, NULL, &prog, &err), NH_OK);
    clReleaseProgram(prog);
    const char *missing[] = {"no_such_file.cl"};
    assert_int_equal(nh_cl_program_build(g_cl, missing, 1, NULL, &prog, &err), NH_ERR_NOT_FOUND);
    unsetenv("NH_KERNEL_DIR");
    remove(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_choice),
        cmocka_unit_test(test_kernel_roundtrip),
        cmocka_unit_test(test_build_failure_log),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
