/*
 * PDQ on OpenCL: host side of kernels/pdq.cl. See nhash/pdq.h.
 *
 * The host squashes (nearest neighbour, as the reference) and packs each image into its
 * fixed slot of a staging buffer (grey: 1 byte per pixel, colour: 3), uploads only the used
 * bytes, runs luma, the four box passes and the finishing kernel over the whole batch, and
 * reads back hashes and qualities. All buffers are sized at create time.
 */
#include "nhash/cl.h"
#include "nhash/pdq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLAG_GRAY 1
#define FLAG_NOBLUR 2
#define FLAG_TINY 4

struct nh_pdq_cl {
    nh_cl *cl; /* borrowed */
    cl_program prog;
    cl_kernel k_luma, k_rows, k_cols, k_finish;
    cl_mem d_pix, d_luma1, d_luma2, d_desc, d_dct, d_hash, d_quality;
    size_t max_batch, slot_px;
    int max_w, max_h;
    int exact;
    uint8_t *h_pix;  /* max_batch x slot_px x 3 staging */
    cl_int *h_desc;  /* max_batch x 4 */
    size_t *h_bytes; /* bytes used in each slot */
};

static void release_mem(cl_mem *m)
{
    if (*m)
        clReleaseMemObject(*m);
    *m = NULL;
}

void nh_pdq_cl_destroy(nh_pdq_cl *p)
{
    if (!p)
        return;
    release_mem(&p->d_pix);
    release_mem(&p->d_luma1);
    release_mem(&p->d_luma2);
    release_mem(&p->d_desc);
    release_mem(&p->d_dct);
    release_mem(&p->d_hash);
    release_mem(&p->d_quality);
    if (p->k_luma)
        clReleaseKernel(p->k_luma);
    if (p->k_rows)
        clReleaseKernel(p->k_rows);
    if (p->k_cols)
        clReleaseKernel(p->k_cols);
    if (p->k_finish)
        clReleaseKernel(p->k_finish);
    if (p->prog)
        clReleaseProgram(p->prog);
    free(p->h_pix);
    free(p->h_desc);
    free(p->h_bytes);
    free(p);
}

int nh_pdq_cl_exact(const nh_pdq_cl *p)
{
    return p->exact;
}

static nh_status make_buffer(nh_pdq_cl *p, cl_mem_flags flags, size_t bytes, void *host,
                             cl_mem *out, nh_error *err)
{
    cl_int rc;
    *out = clCreateBuffer(nh_cl_context(p->cl), flags, bytes, host, &rc);
    if (!*out)
        return nh_cl_fail(err, rc, "clCreateBuffer (pdq)");
    return NH_OK;
}

nh_status nh_pdq_cl_create(nh_cl *cl, size_t max_batch, int max_width, int max_height,
                           nh_pdq_cl **out, nh_error *err)
{
    nh_status st = NH_OK;
    if (!cl || max_batch == 0 || !out)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL,
                            "nh_pdq_cl_create: bad arguments");
    if (max_width <= 0 || max_height <= 0)
        max_width = max_height = NH_PDQ_REF_DIM;
    nh_pdq_cl *p = calloc(1, sizeof *p);
    if (!p)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    p->cl = cl;
    p->max_batch = max_batch;
    p->max_w = max_width;
    p->max_h = max_height;
    p->slot_px = (size_t)max_width * (size_t)max_height;
    if (p->slot_px * 3 * max_batch / max_batch / 3 != p->slot_px ||
        p->slot_px * max_batch > 0x7fffffffu) {
        st =
            nh_error_set(err, NH_ERR_TOO_LARGE, NH_FOREIGN_NONE, 0, NULL,
                         "pdq batch of %zu x %dx%d is too large", max_batch, max_width, max_height);
        goto cleanup;
    }

    cl_device_id dev = nh_cl_device(cl);
    cl_device_fp_config single = 0, dbl = 0;
    clGetDeviceInfo(dev, CL_DEVICE_SINGLE_FP_CONFIG, sizeof single, &single, NULL);
    if (clGetDeviceInfo(dev, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof dbl, &dbl, NULL) != CL_SUCCESS)
        dbl = 0;
    const float kr = 0.299, kg = 0.587, kb = 0.114; /* as host/pdq.c and the reference */
    char opts[512];
    const char *div = "";
    p->exact = 1;
    if (single & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT)
        div = "-cl-fp32-correctly-rounded-divide-sqrt";
    else if (dbl)
        div = "-DNH_PDQ_DIV_DOUBLE";
    else
        p->exact = 0;
    snprintf(opts, sizeof opts, "-DNH_PDQ_KR=%af -DNH_PDQ_KG=%af -DNH_PDQ_KB=%af %s", (double)kr,
             (double)kg, (double)kb, div);
    const char *files[] = {"pdq.cl"};
    st = nh_cl_program_build(cl, files, 1, opts, &p->prog, err);
    if (st != NH_OK)
        goto cleanup;
    if ((st = nh_cl_kernel_create(p->prog, "nh_pdq_luma", &p->k_luma, err)) != NH_OK ||
        (st = nh_cl_kernel_create(p->prog, "nh_pdq_box_rows", &p->k_rows, err)) != NH_OK ||
        (st = nh_cl_kernel_create(p->prog, "nh_pdq_box_cols", &p->k_cols, err)) != NH_OK ||
        (st = nh_cl_kernel_create(p->prog, "nh_pdq_finish", &p->k_finish, err)) != NH_OK)
        goto cleanup;

    p->h_pix = malloc(p->slot_px * 3 * max_batch);
    p->h_desc = calloc(max_batch * 4, sizeof *p->h_desc);
    p->h_bytes = calloc(max_batch, sizeof *p->h_bytes);
    if (!p->h_pix || !p->h_desc || !p->h_bytes) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        goto cleanup;
    }
    float dct[16 * 64];
    memcpy(dct, nh_pdq_dct_matrix(), sizeof dct);
    if ((st = make_buffer(p, CL_MEM_READ_ONLY, p->slot_px * 3 * max_batch, NULL, &p->d_pix, err)) !=
            NH_OK ||
        (st = make_buffer(p, CL_MEM_READ_WRITE, p->slot_px * sizeof(float) * max_batch, NULL,
                          &p->d_luma1, err)) != NH_OK ||
        (st = make_buffer(p, CL_MEM_READ_WRITE, p->slot_px * sizeof(float) * max_batch, NULL,
                          &p->d_luma2, err)) != NH_OK ||
        (st = make_buffer(p, CL_MEM_READ_ONLY, max_batch * 4 * sizeof(cl_int), NULL, &p->d_desc,
                          err)) != NH_OK ||
        (st = make_buffer(p, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof dct, dct, &p->d_dct,
                          err)) != NH_OK ||
        (st = make_buffer(p, CL_MEM_WRITE_ONLY, max_batch * NH_PDQ_NUM_DIHEDRAL * 32, NULL,
                          &p->d_hash, err)) != NH_OK ||
        (st = make_buffer(p, CL_MEM_WRITE_ONLY, max_batch * sizeof(cl_int), NULL, &p->d_quality,
                          err)) != NH_OK)
        goto cleanup;
    *out = p;
    p = NULL;
cleanup:
    nh_pdq_cl_destroy(p);
    return st;
}

/* Squash (unless full-res) and pack one image into its slot; returns bytes used. */
static size_t pack(const nh_pdq_image *img, unsigned flags, int w, int h, int gray, uint8_t *dst)
{
    size_t stride = img->stride ? img->stride : (size_t)img->width * (size_t)img->channels;
    int ch = img->channels;
    for (int y = 0; y < h; y++) {
        int sy = (int)((long long)y * img->height / h);
        const uint8_t *row = img->pixels + (size_t)sy * stride;
        if (w == img->width && ch == 3 && !gray) {
            memcpy(dst + (size_t)y * w * 3, row, (size_t)w * 3);
            continue;
        }
        for (int x = 0; x < w; x++) {
            int sx = (int)((long long)x * img->width / w);
            const uint8_t *s = row + (size_t)sx * ch;
            if (gray) {
                dst[(size_t)y * w + x] = s[0];
            } else {
                uint8_t *d = dst + ((size_t)y * w + x) * 3;
                d[0] = s[0];
                d[1] = s[1];
                d[2] = s[2];
            }
        }
    }
    (void)flags;
    return (size_t)w * h * (gray ? 1 : 3);
}

static size_t round_up(size_t v, size_t m)
{
    return (v + m - 1) / m * m;
}

static nh_status run_chunk(nh_pdq_cl *p, const nh_pdq_image *imgs, size_t n, unsigned flags,
                           uint8_t *hashes, int *quality, nh_error *err)
{
    cl_command_queue q = nh_cl_queue(p->cl);
    cl_uint nvar = (flags & NH_PDQ_DIHEDRAL) ? NH_PDQ_NUM_DIHEDRAL : 1;
    size_t max_px = 1, max_w = 1, max_h = 1;
    cl_int rc;
    for (size_t i = 0; i < n; i++) {
        int w, h;
        nh_pdq_work_size(&imgs[i], flags, &w, &h);
        int gray = imgs[i].gray || imgs[i].channels < 3;
        int f = gray ? FLAG_GRAY : 0;
        if (w < NH_PDQ_MIN_DIM || h < NH_PDQ_MIN_DIM)
            f |= FLAG_TINY;
        else if (w == 64 && h == 64 && nvar == 1)
            f |= FLAG_NOBLUR;
        cl_int *d = p->h_desc + i * 4;
        d[0] = w;
        d[1] = h;
        d[2] = f;
        d[3] = 0;
        p->h_bytes[i] = 0;
        if (f & FLAG_TINY)
            continue;
        uint8_t *slot = p->h_pix + i * p->slot_px * 3;
        p->h_bytes[i] = pack(&imgs[i], flags, w, h, gray, slot);
        if ((size_t)w * h > max_px)
            max_px = (size_t)w * h;
        if ((size_t)w > max_w)
            max_w = (size_t)w;
        if ((size_t)h > max_h)
            max_h = (size_t)h;
    }
    rc = clEnqueueWriteBuffer(q, p->d_desc, CL_FALSE, 0, n * 4 * sizeof(cl_int), p->h_desc, 0, NULL,
                              NULL);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clEnqueueWriteBuffer (pdq desc)");
    for (size_t i = 0; i < n; i++) {
        if (!p->h_bytes[i])
            continue;
        size_t off = i * p->slot_px * 3;
        rc = clEnqueueWriteBuffer(q, p->d_pix, CL_FALSE, off, p->h_bytes[i], p->h_pix + off, 0,
                                  NULL, NULL);
        if (rc != CL_SUCCESS)
            return nh_cl_fail(err, rc, "clEnqueueWriteBuffer (pdq pixels)");
    }
    cl_uint slot = (cl_uint)p->slot_px;
    size_t g_luma[2] = {round_up(max_px, 64), n};
    size_t g_rows[2] = {round_up(max_h, 16), n};
    size_t g_cols[2] = {round_up(max_w, 16), n};
    size_t g_fin = 64 * n, l_fin = 64;

    rc = clSetKernelArg(p->k_luma, 0, sizeof(cl_mem), &p->d_pix);
    rc |= clSetKernelArg(p->k_luma, 1, sizeof(cl_mem), &p->d_desc);
    rc |= clSetKernelArg(p->k_luma, 2, sizeof(cl_mem), &p->d_luma1);
    rc |= clSetKernelArg(p->k_luma, 3, sizeof(cl_uint), &slot);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clSetKernelArg (nh_pdq_luma)");
    rc = clEnqueueNDRangeKernel(q, p->k_luma, 2, NULL, g_luma, NULL, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clEnqueueNDRangeKernel (nh_pdq_luma)");
    for (int pass = 0; pass < 2; pass++) {
        rc = clSetKernelArg(p->k_rows, 0, sizeof(cl_mem), &p->d_luma1);
        rc |= clSetKernelArg(p->k_rows, 1, sizeof(cl_mem), &p->d_luma2);
        rc |= clSetKernelArg(p->k_rows, 2, sizeof(cl_mem), &p->d_desc);
        rc |= clSetKernelArg(p->k_rows, 3, sizeof(cl_uint), &slot);
        rc |= clSetKernelArg(p->k_cols, 0, sizeof(cl_mem), &p->d_luma2);
        rc |= clSetKernelArg(p->k_cols, 1, sizeof(cl_mem), &p->d_luma1);
        rc |= clSetKernelArg(p->k_cols, 2, sizeof(cl_mem), &p->d_desc);
        rc |= clSetKernelArg(p->k_cols, 3, sizeof(cl_uint), &slot);
        if (rc != CL_SUCCESS)
            return nh_cl_fail(err, rc, "clSetKernelArg (nh_pdq_box_*)");
        rc = clEnqueueNDRangeKernel(q, p->k_rows, 2, NULL, g_rows, NULL, 0, NULL, NULL);
        if (rc == CL_SUCCESS)
            rc = clEnqueueNDRangeKernel(q, p->k_cols, 2, NULL, g_cols, NULL, 0, NULL, NULL);
        if (rc != CL_SUCCESS)
            return nh_cl_fail(err, rc, "clEnqueueNDRangeKernel (nh_pdq_box_*)");
    }
    rc = clSetKernelArg(p->k_finish, 0, sizeof(cl_mem), &p->d_luma1);
    rc |= clSetKernelArg(p->k_finish, 1, sizeof(cl_mem), &p->d_desc);
    rc |= clSetKernelArg(p->k_finish, 2, sizeof(cl_mem), &p->d_dct);
    rc |= clSetKernelArg(p->k_finish, 3, sizeof(cl_mem), &p->d_hash);
    rc |= clSetKernelArg(p->k_finish, 4, sizeof(cl_mem), &p->d_quality);
    rc |= clSetKernelArg(p->k_finish, 5, sizeof(cl_uint), &slot);
    rc |= clSetKernelArg(p->k_finish, 6, sizeof(cl_uint), &nvar);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clSetKernelArg (nh_pdq_finish)");
    rc = clEnqueueNDRangeKernel(q, p->k_finish, 1, NULL, &g_fin, &l_fin, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clEnqueueNDRangeKernel (nh_pdq_finish)");
    rc = clEnqueueReadBuffer(q, p->d_hash, CL_FALSE, 0, n * nvar * 32, hashes, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clEnqueueReadBuffer (pdq hashes)");
    cl_int qv[256];
    for (size_t done = 0; done < n; done += 256) {
        size_t k = n - done < 256 ? n - done : 256;
        rc = clEnqueueReadBuffer(q, p->d_quality, CL_TRUE, done * sizeof(cl_int),
                                 k * sizeof(cl_int), qv, 0, NULL, NULL);
        if (rc != CL_SUCCESS)
            return nh_cl_fail(err, rc, "clEnqueueReadBuffer (pdq quality)");
        for (size_t i = 0; i < k; i++)
            quality[done + i] = qv[i];
    }
    rc = clFinish(q);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clFinish (pdq)");
    return NH_OK;
}

nh_status nh_pdq_cl_hash(nh_pdq_cl *p, const nh_pdq_image *imgs, size_t n, unsigned flags,
                         uint8_t *hashes, int *quality, nh_error *err)
{
    if (!p || (n && (!imgs || !hashes || !quality)))
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL,
                            "nh_pdq_cl_hash: bad arguments");
    for (size_t i = 0; i < n; i++) {
        const nh_pdq_image *img = &imgs[i];
        if (!img->pixels || img->width <= 0 || img->height <= 0 || img->channels < 1 ||
            img->channels > 4 ||
            (img->stride && img->stride < (size_t)img->width * (size_t)img->channels))
            return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL,
                                "nh_pdq_cl_hash: image %zu is malformed", i);
        int w, h;
        nh_pdq_work_size(img, flags, &w, &h);
        if (w > p->max_w || h > p->max_h)
            return nh_error_set(err, NH_ERR_TOO_LARGE, NH_FOREIGN_NONE, 0, NULL,
                                "image %zu of %dx%d exceeds the pdq batch slots (%dx%d)", i, w, h,
                                p->max_w, p->max_h);
    }
    size_t nvar = (flags & NH_PDQ_DIHEDRAL) ? NH_PDQ_NUM_DIHEDRAL : 1;
    for (size_t done = 0; done < n; done += p->max_batch) {
        size_t k = n - done < p->max_batch ? n - done : p->max_batch;
        nh_status st =
            run_chunk(p, imgs + done, k, flags, hashes + done * nvar * 32, quality + done, err);
        if (st != NH_OK)
            return st;
    }
    return NH_OK;
}
