/* nhash OpenCL runtime. See nhash/cl.h. */
#include "nhash/cl.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nh_kernel_file {
    const char *name;
    const char *text;
    size_t len;
};
extern const struct nh_kernel_file nh_kernel_files[];

struct nh_cl {
    cl_context ctx;
    cl_command_queue queue;
    cl_device_id dev;
    nh_cl_device_info info;
};

nh_status nh_cl_fail(nh_error *err, cl_int rc, const char *what)
{
    return nh_error_set(err, NH_ERR_CL, NH_FOREIGN_CL, rc, NULL, "OpenCL %s failed", what);
}

const char *nh_cl_type_name(cl_device_type type)
{
    if (type & CL_DEVICE_TYPE_GPU)
        return "GPU";
    if (type & CL_DEVICE_TYPE_CPU)
        return "CPU";
    if (type & CL_DEVICE_TYPE_ACCELERATOR)
        return "ACCELERATOR";
    return "OTHER";
}

static void get_platform_str(cl_platform_id p, cl_platform_info what, char *buf, size_t n)
{
    buf[0] = '\0';
    if (clGetPlatformInfo(p, what, n, buf, NULL) != CL_SUCCESS)
        buf[0] = '\0';
    buf[n - 1] = '\0';
}

static void get_device_str(cl_device_id d, cl_device_info what, char *buf, size_t n)
{
    buf[0] = '\0';
    if (clGetDeviceInfo(d, what, n, buf, NULL) != CL_SUCCESS)
        buf[0] = '\0';
    buf[n - 1] = '\0';
}

static void fill_info(cl_platform_id p, cl_device_id d, int pi, int di, nh_cl_device_info *info)
{
    memset(info, 0, sizeof *info);
    info->platform = pi;
    info->device = di;
    get_platform_str(p, CL_PLATFORM_NAME, info->platform_name, sizeof info->platform_name);
    get_platform_str(p, CL_PLATFORM_VERSION, info->platform_version, sizeof info->platform_version);
    get_device_str(d, CL_DEVICE_NAME, info->device_name, sizeof info->device_name);
    get_device_str(d, CL_DEVICE_VERSION, info->device_version, sizeof info->device_version);
    get_device_str(d, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
    cl_uint cu = 0;
    cl_ulong gm = 0, lm = 0;
    size_t wg = 0;
    clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof info->type, &info->type, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
    clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof gm, &gm, NULL);
    clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lm, &lm, NULL);
    clGetDeviceInfo(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof wg, &wg, NULL);
    info->compute_units = cu;
    info->global_mem = gm;
    info->local_mem = lm;
    info->max_work_group = wg;
}

/* Enumerate (platform, device) pairs; arrays returned-owned. */
static nh_status enumerate(cl_platform_id **plats_out, cl_uint *np_out, cl_device_id **devs_out,
                           int **dev_plat_out, int **dev_idx_out, size_t *nd_out, nh_error *err)
{
    nh_status st = NH_OK;
    cl_uint np = 0;
    cl_platform_id *plats = NULL;
    cl_device_id *devs = NULL;
    int *dev_plat = NULL, *dev_idx = NULL;
    size_t nd = 0, cap = 0;

    cl_int rc = clGetPlatformIDs(0, NULL, &np);
    if (rc == -1001 /* CL_PLATFORM_NOT_FOUND_KHR: ICD loader found no platform */ || np == 0) {
        np = 0;
        goto done;
    }
    if (rc != CL_SUCCESS) {
        st = nh_cl_fail(err, rc, "clGetPlatformIDs");
        goto cleanup;
    }
    plats = calloc(np, sizeof *plats);
    if (!plats) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        goto cleanup;
    }
    rc = clGetPlatformIDs(np, plats, NULL);
    if (rc != CL_SUCCESS) {
        st = nh_cl_fail(err, rc, "clGetPlatformIDs");
        goto cleanup;
    }
    for (cl_uint p = 0; p < np; p++) {
        cl_uint n = 0;
        rc = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &n);
        if (rc == CL_DEVICE_NOT_FOUND || n == 0)
            continue;
        if (rc != CL_SUCCESS)
            continue; /* a broken platform must not hide the working ones */
        if (nd + n > cap) {
            cap = (nd + n) * 2;
            cl_device_id *d2 = realloc(devs, cap * sizeof *devs);
            if (d2)
                devs = d2;
            int *p2 = realloc(dev_plat, cap * sizeof *dev_plat);
            if (p2)
                dev_plat = p2;
            int *i2 = realloc(dev_idx, cap * sizeof *dev_idx);
            if (i2)
                dev_idx = i2;
            if (!d2 || !p2 || !i2) {
                st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
                goto cleanup;
            }
        }
        rc = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, n, devs + nd, NULL);
        if (rc != CL_SUCCESS)
            continue;
        for (cl_uint k = 0; k < n; k++) {
            dev_plat[nd + k] = (int)p;
            dev_idx[nd + k] = (int)k;
        }
        nd += n;
    }
done:
    *plats_out = plats;
    *np_out = np;
    *devs_out = devs;
    *dev_plat_out = dev_plat;
    *dev_idx_out = dev_idx;
    *nd_out = nd;
    return NH_OK;
cleanup:
    free(plats);
    free(devs);
    free(dev_plat);
    free(dev_idx);
    return st;
}

nh_status nh_cl_list(nh_cl_device_info **out, size_t *n, nh_error *err)
{
    cl_platform_id *plats = NULL;
    cl_uint np = 0;
    cl_device_id *devs = NULL;
    int *dp = NULL, *di = NULL;
    size_t nd = 0;
    nh_status st = enumerate(&plats, &np, &devs, &dp, &di, &nd, err);
    if (st != NH_OK)
        return st;
    nh_cl_device_info *infos = calloc(nd ? nd : 1, sizeof *infos);
    if (!infos) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < nd; i++)
        fill_info(plats[dp[i]], devs[i], dp[i], di[i], &infos[i]);
    *out = infos;
    *n = nd;
cleanup:
    free(plats);
    free(devs);
    free(dp);
    free(di);
    return st;
}

/* Does sel pick this index/name? sel is a decimal index or a case-insensitive substring. */
static int selector_matches(const char *sel, int index, const char *name)
{
    if (!sel || !*sel)
        return 1;
    char *end = NULL;
    long v = strtol(sel, &end, 10);
    if (end && *end == '\0')
        return v == index;
    size_t ls = strlen(sel), ln = strlen(name);
    for (size_t i = 0; i + ls <= ln; i++) {
        size_t k = 0;
        while (k < ls && tolower((unsigned char)name[i + k]) == tolower((unsigned char)sel[k]))
            k++;
        if (k == ls)
            return 1;
    }
    return 0;
}

nh_status nh_cl_create(const char *platform_sel, const char *device_sel, nh_cl **out,
                       nh_error *err)
{
    nh_status st = NH_OK;
    cl_platform_id *plats = NULL;
    cl_uint np = 0;
    cl_device_id *devs = NULL;
    int *dp = NULL, *di = NULL;
    size_t nd = 0;
    nh_cl *cl = NULL;

    if (!platform_sel)
        platform_sel = getenv("NH_CL_PLATFORM");
    if (!device_sel)
        device_sel = getenv("NH_CL_DEVICE");
    int explicit_sel = (platform_sel && *platform_sel) || (device_sel && *device_sel);

    st = enumerate(&plats, &np, &devs, &dp, &di, &nd, err);
    if (st != NH_OK)
        return st;
    if (nd == 0) {
        st = nh_error_set(err, NH_ERR_NOT_FOUND, NH_FOREIGN_NONE, 0, NULL,
                          "no OpenCL device found (is an ICD installed? try "
                          "apt-get install pocl-opencl-icd, or check /etc/OpenCL/vendors)");
        goto cleanup;
    }
    long pick = -1;
    nh_cl_device_info info;
    for (int pass = 0; pass < 2 && pick < 0; pass++) {
        for (size_t i = 0; i < nd && pick < 0; i++) {
            fill_info(plats[dp[i]], devs[i], dp[i], di[i], &info);
            if (!selector_matches(platform_sel, dp[i], info.platform_name) ||
                !selector_matches(device_sel, di[i], info.device_name))
                continue;
            /* Without an explicit choice prefer a GPU on the first pass. */
            if (!explicit_sel && pass == 0 && !(info.type & CL_DEVICE_TYPE_GPU))
                continue;
            pick = (long)i;
        }
    }
    if (pick < 0) {
        st = nh_error_set(err, NH_ERR_NOT_FOUND, NH_FOREIGN_NONE, 0, NULL,
                          "no OpenCL device matches platform '%s' device '%s' "
                          "(see `nhash devices`)",
                          platform_sel ? platform_sel : "*", device_sel ? device_sel : "*");
        goto cleanup;
    }
    cl = calloc(1, sizeof *cl);
    if (!cl) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        goto cleanup;
    }
    cl->dev = devs[pick];
    fill_info(plats[dp[pick]], cl->dev, dp[pick], di[pick], &cl->info);
    cl_int rc;
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                     (cl_context_properties)plats[dp[pick]], 0};
    cl->ctx = clCreateContext(props, 1, &cl->dev, NULL, NULL, &rc);
    if (!cl->ctx) {
        st = nh_cl_fail(err, rc, "clCreateContext");
        goto cleanup;
    }
    cl->queue = clCreateCommandQueue(cl->ctx, cl->dev, 0, &rc);
    if (!cl->queue) {
        st = nh_cl_fail(err, rc, "clCreateCommandQueue");
        goto cleanup;
    }
    *out = cl;
    cl = NULL;
cleanup:
    nh_cl_destroy(cl);
    free(plats);
    free(devs);
    free(dp);
    free(di);
    return st;
}

void nh_cl_destroy(nh_cl *cl)
{
    if (!cl)
        return;
    if (cl->queue) {
        clFinish(cl->queue);
        clReleaseCommandQueue(cl->queue);
    }
    if (cl->ctx)
        clReleaseContext(cl->ctx);
    free(cl);
}

cl_context nh_cl_context(const nh_cl *cl)
{
    return cl->ctx;
}
cl_device_id nh_cl_device(const nh_cl *cl)
{
    return cl->dev;
}
cl_command_queue nh_cl_queue(const nh_cl *cl)
{
    return cl->queue;
}
const nh_cl_device_info *nh_cl_info(const nh_cl *cl)
{
    return &cl->info;
}

static nh_status read_file(const char *path, char **out, size_t *len, nh_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return nh_error_set(err, errno == ENOENT ? NH_ERR_NOT_FOUND : NH_ERR_IO,
                            NH_FOREIGN_ERRNO, errno, path, "cannot open kernel file");
    nh_status st = NH_OK;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = (cap + 4096) * 2;
            char *b2 = realloc(buf, cap);
            if (!b2) {
                st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, path, "out of memory");
                goto cleanup;
            }
            buf = b2;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got < 4096) {
            if (ferror(f)) {
                st = nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path,
                                  "cannot read kernel file");
                goto cleanup;
            }
            break;
        }
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
cleanup:
    free(buf);
    fclose(f);
    return st;
}

nh_status nh_cl_kernel_source(const char *name, char **out, size_t *len, nh_error *err)
{
    const char *dir = getenv("NH_KERNEL_DIR");
    if (dir && *dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        nh_status st = read_file(path, out, len, err);
        if (st != NH_ERR_NOT_FOUND)
            return st;
        nh_error_clear(err);
    }
    for (const struct nh_kernel_file *k = nh_kernel_files; k->name; k++) {
        if (strcmp(k->name, name) == 0) {
            char *copy = malloc(k->len + 1);
            if (!copy)
                return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
            memcpy(copy, k->text, k->len + 1);
            *out = copy;
            *len = k->len;
            return NH_OK;
        }
    }
    return nh_error_set(err, NH_ERR_NOT_FOUND, NH_FOREIGN_NONE, 0, name,
                        "no such kernel file (embedded or in NH_KERNEL_DIR)");
}

nh_status nh_cl_program_build(nh_cl *cl, const char *const *files, size_t nfiles,
                              const char *options, cl_program *out, nh_error *err)
{
    nh_status st = NH_OK;
    size_t total = nfiles + 1, count = 0;
    char **srcs = calloc(total, sizeof *srcs);
    size_t *lens = calloc(total, sizeof *lens);
    cl_program prog = NULL;
    char *log = NULL;
    if (!srcs || !lens) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        goto cleanup;
    }
    if (nh_cl_kernel_source("nh_common.h", &srcs[count], &lens[count], NULL) == NH_OK)
        count++;
    for (size_t i = 0; i < nfiles; i++) {
        st = nh_cl_kernel_source(files[i], &srcs[count], &lens[count], err);
        if (st != NH_OK)
            goto cleanup;
        count++;
    }
    cl_int rc;
    prog = clCreateProgramWithSource(cl->ctx, (cl_uint)count, (const char **)srcs, lens, &rc);
    if (!prog) {
        st = nh_cl_fail(err, rc, "clCreateProgramWithSource");
        goto cleanup;
    }
    char opts[2048];
    snprintf(opts, sizeof opts, "-cl-std=CL1.2 %s", options ? options : "");
    rc = clBuildProgram(prog, 1, &cl->dev, opts, NULL, NULL);
    if (rc != CL_SUCCESS) {
        size_t log_len = 0;
        clGetProgramBuildInfo(prog, cl->dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_len);
        log = calloc(log_len + 1, 1);
        if (log && log_len)
            clGetProgramBuildInfo(prog, cl->dev, CL_PROGRAM_BUILD_LOG, log_len, log, NULL);
        st = nh_error_set(err, rc == CL_BUILD_PROGRAM_FAILURE ? NH_ERR_CL_BUILD : NH_ERR_CL,
                          NH_FOREIGN_CL, rc, files && nfiles ? files[0] : NULL,
                          "kernel build failed:\n%s", log ? log : "(no log)");
        goto cleanup;
    }
    *out = prog;
    prog = NULL;
cleanup:
    free(log);
    if (prog)
        clReleaseProgram(prog);
    for (size_t i = 0; srcs && i < count; i++)
        free(srcs[i]);
    free(srcs);
    free(lens);
    return st;
}

nh_status nh_cl_kernel_create(cl_program prog, const char *name, cl_kernel *out, nh_error *err)
{
    cl_int rc;
    cl_kernel k = clCreateKernel(prog, name, &rc);
    if (!k)
        return nh_error_set(err, NH_ERR_CL, NH_FOREIGN_CL, rc, name, "clCreateKernel failed");
    *out = k;
    return NH_OK;
}
