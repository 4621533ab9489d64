/*
 * nhash OpenCL runtime: device discovery and choice, one context + in-order queue per
 * nh_cl, and programs built from the kernels embedded at build time.
 *
 * Kernel files live in kernels/ and are embedded as byte arrays by CMake. When the
 * environment variable NH_KERNEL_DIR is set, files are read from that folder instead
 * (development override; an embedded copy is used for any file missing there).
 * kernels/nh_common.h, when present, is prepended to every program.
 *
 * Device choice: nh_cl_create(platform, device) with -1 meaning "not given". Not given
 * falls back to NH_CL_PLATFORM / NH_CL_DEVICE (indices, or a case-insensitive substring
 * of the platform / device name), then to the first GPU of any platform, then to the first
 * device of any type. Nothing here assumes a CPU or a GPU.
 */
#ifndef NHASH_CL_H
#define NHASH_CL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#include "nhash/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nh_cl_device_info {
    int platform;            /* platform index */
    int device;              /* device index within its platform */
    char platform_name[128];
    char platform_version[128];
    char device_name[128];
    char device_version[128];
    char driver_version[64];
    cl_device_type type;
    unsigned compute_units;
    unsigned long long global_mem;  /* bytes */
    unsigned long long local_mem;   /* bytes */
    size_t max_work_group;
} nh_cl_device_info;

/*
 * List every device of every platform. *out is returned-owned (free() it), *n its length.
 * Zero platforms is not an error: *n = 0.
 */
nh_status nh_cl_list(nh_cl_device_info **out, size_t *n, nh_error *err);

/* Human-readable name of a device type ("GPU", "CPU", "ACCELERATOR", ...). */
const char *nh_cl_type_name(cl_device_type type);

typedef struct nh_cl nh_cl;

/*
 * Open a context and an in-order command queue on the chosen device (see the top of this
 * file for the choice rules). platform_sel / device_sel: index or name substring, NULL for
 * "not given".
 */
nh_status nh_cl_create(const char *platform_sel, const char *device_sel, nh_cl **out,
                       nh_error *err);
void nh_cl_destroy(nh_cl *cl);

/* Borrowed handles, valid until nh_cl_destroy. */
cl_context nh_cl_context(const nh_cl *cl);
cl_device_id nh_cl_device(const nh_cl *cl);
cl_command_queue nh_cl_queue(const nh_cl *cl);
const nh_cl_device_info *nh_cl_info(const nh_cl *cl);

/*
 * Source text of a kernel file by name ("pdq.cl"). *out is returned-owned (free()),
 * NUL-terminated. NH_ERR_NOT_FOUND if no such file is embedded or in NH_KERNEL_DIR.
 */
nh_status nh_cl_kernel_source(const char *name, char **out, size_t *len, nh_error *err);

/*
 * Build one program from kernel files (nh_common.h first, then files in order) with
 * options appended to nhash's defaults. Never passes fast-math flags. On a compile
 * failure returns NH_ERR_CL_BUILD with the compiler's log in err->msg.
 * *out is returned-owned (clReleaseProgram).
 */
nh_status nh_cl_program_build(nh_cl *cl, const char *const *files, size_t nfiles,
                              const char *options, cl_program *out, nh_error *err);

/* Create a kernel by name from a built program; *out returned-owned (clReleaseKernel). */
nh_status nh_cl_kernel_create(cl_program prog, const char *name, cl_kernel *out, nh_error *err);

/* Shorthand for reporting a failed OpenCL call: returns NH_ERR_CL. */
nh_status nh_cl_fail(nh_error *err, cl_int rc, const char *what);

#ifdef __cplusplus
}
#endif
#endif
