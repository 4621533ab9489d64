/*
 * The neural hashers: the network on the OpenCL device (neural-cl) or the plain-C reference
 * (neural-ref), one batch per call, on the pipeline's thread. The input is the model's size
 * in RGB: Pillow-exact from the file's one full decode (compat, nnhash.py's input), or a
 * shrink-on-load decode of its own (fast). With neural_mirror a second pass hashes each image
 * mirrored left-right (variant flipx).
 */
#include <stdlib.h>
#include <string.h>

#include "hasher.h"
#include "nhash/cl.h"
#include "nhash/net.h"

struct neural {
    const nh_runner_backend *backend;
    nh_cl *cl;                 /* borrowed from the pipeline (neural-cl) */
    nh_model *model;
    nh_runner *runner;
    nh_kind kind;
    nh_decode_opts in;         /* the job's decode options at the model's size */
    int mirror;
    size_t batch_cap, slot;    /* slot: bytes per image */
    int nbatches;
    uint8_t *rgb[2];           /* per batch: batch_cap x slot, the upload buffer */
    cl_mem pinned[2];          /* when set, rgb[b] is this buffer mapped (page-locked memory
                                  the driver can DMA from without a staging copy) */
    float *net_out;
    double *min_abs;
    uint8_t *hashes;
    size_t *idx;               /* batch position of each packed image */
};

static void neural_destroy(void *self)
{
    struct neural *n = self;
    if (!n)
        return;
    for (int b = 0; b < 2; b++) {
        if (n->pinned[b]) {
            clEnqueueUnmapMemObject(nh_cl_queue(n->cl), n->pinned[b], n->rgb[b], 0, NULL, NULL);
            clFinish(nh_cl_queue(n->cl));
            clReleaseMemObject(n->pinned[b]);
        } else {
            free(n->rgb[b]);
        }
    }
    nh_runner_destroy(n->runner);
    nh_model_destroy(n->model);
    free(n->net_out);
    free(n->min_abs);
    free(n->hashes);
    free(n->idx);
    free(n);
}

static nh_status neural_create(const nh_hasher_env *env, const nh_runner_backend *backend,
                               void **self, nh_hasher_info *info, nh_error *err)
{
    const nh_pipeline_opts *o = env->opts;
    struct neural *n = calloc(1, sizeof *n);
    if (!n)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    n->backend = backend;
    n->cl = env->cl;
    n->batch_cap = env->batch_cap;
    n->nbatches = env->nbatches;
    n->mirror = o->neural_mirror;
    const char *path = o->model_path ? o->model_path : nh_pipeline_default_model();
    nh_status st = nh_model_load(path, &n->model, err);
    if (st != NH_OK)
        goto fail;
    const nh_model *m = n->model;
    if (!nh_kind_bits_valid(NH_KIND_NEURAL, m->hash_bits)) {
        st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, path,
                          "model has no usable hash projection (%u bits)", m->hash_bits);
        goto fail;
    }
    n->kind = nh_kind_neural(m->fingerprint, m->hash_bits);
    n->in = *env->decode;
    n->in.width = (int)m->in_w;
    n->in.height = (int)m->in_h;
    n->slot = (size_t)m->in_w * m->in_h * 3;
    nh_runner_opts ro = {.max_batch = n->batch_cap, .cl = n->cl};
    st = nh_runner_create(backend, m, &ro, &n->runner, err);
    if (st != NH_OK)
        goto fail;
    for (int b = 0; b < n->nbatches && b < 2; b++) {
        size_t bytes = n->slot * n->batch_cap;
        if (n->cl) {
            /* Pinned staging for uploads (CL_MEM_ALLOC_HOST_PTR, mapped once for the life of
             * the job); plain memory when the device will not give it. */
            cl_int rc;
            n->pinned[b] = clCreateBuffer(nh_cl_context(n->cl), CL_MEM_ALLOC_HOST_PTR, bytes, NULL,
                                          &rc);
            if (n->pinned[b]) {
                n->rgb[b] = clEnqueueMapBuffer(nh_cl_queue(n->cl), n->pinned[b], CL_TRUE,
                                               CL_MAP_READ | CL_MAP_WRITE, 0, bytes, 0, NULL, NULL,
                                               &rc);
                if (!n->rgb[b]) {
                    clReleaseMemObject(n->pinned[b]);
                    n->pinned[b] = NULL;
                }
            }
        }
        if (!n->rgb[b])
            n->rgb[b] = malloc(bytes);
        if (!n->rgb[b]) {
            st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
            goto fail;
        }
    }
    size_t hb = m->hash_bits / 8;
    n->net_out = malloc(sizeof(float) * n->batch_cap * m->out_dim);
    n->min_abs = malloc(sizeof(double) * n->batch_cap);
    n->hashes = malloc(n->batch_cap * hb);
    n->idx = malloc(n->batch_cap * sizeof *n->idx);
    if (!n->net_out || !n->min_abs || !n->hashes || !n->idx) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        goto fail;
    }
    info->kind = n->kind;
    snprintf(info->model_name, sizeof info->model_name, "%s %s", m->name, m->version);
    info->placeholder = strstr(m->name, "placeholder") != NULL;
    *self = n;
    return NH_OK;
fail:
    neural_destroy(n);
    return st;
}

static nh_status neural_cl_create(const nh_hasher_env *env, void **self, nh_hasher_info *info,
                                  nh_error *err)
{
    return neural_create(env, &nh_runner_cl, self, info, err);
}

static nh_status neural_ref_create(const nh_hasher_env *env, void **self, nh_hasher_info *info,
                                   nh_error *err)
{
    return neural_create(env, &nh_runner_ref, self, info, err);
}

static unsigned neural_needs(const void *self)
{
    const struct neural *n = self;
    return n->in.mode == NH_DECODE_FAST ? NH_NEED_SHRINK : NH_NEED_FULL;
}

static nh_status neural_prepare(void *self, int w, int b, size_t i, nh_source *src, nh_record *r,
                                nh_error *err)
{
    (void)w;
    struct neural *n = self;
    uint8_t *out = n->rgb[b] + i * n->slot;
    nh_decode_info info;
    nh_status st;
    if (n->in.mode == NH_DECODE_FAST) {
        st = nh_decode_source(src->data, src->len, src->fd, src->path, &n->in, out, &info, err);
    } else {
        const uint8_t *rgb;
        const nh_decode_info *full;
        st = nh_source_full(src, &rgb, &full, err);
        if (st != NH_OK)
            return st;
        info = *full;
        st = nh_decode_derive(rgb, full->width, full->height, &n->in, out, &info);
        if (st != NH_OK)
            return nh_error_set(err, st, NH_FOREIGN_NONE, 0, src->path, "resize failed");
    }
    if (st != NH_OK)
        return st;
    r->src_width = info.src_width;
    r->src_height = info.src_height;
    return NH_OK;
}

/* One network pass over the m packed images of rgb; hashes to the records as variant v. */
static nh_status pass(struct neural *n, const uint8_t *rgb, size_t m, nh_record *recs,
                      nh_variant v, nh_error *err)
{
    nh_status st = nh_runner_run(n->runner, rgb, m, n->net_out, err);
    if (st == NH_OK)
        st = nh_net_hash(n->model, n->net_out, m, n->hashes, n->min_abs, NULL, err);
    if (st != NH_OK)
        return st;
    size_t hb = nh_kind_bits(&n->kind) / 8;
    for (size_t k = 0; k < m; k++) {
        nh_record *r = &recs[n->idx[k]];
        nh_hash *h = nh_record_push(r, &n->kind, v);
        if (!h)
            return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, r->path,
                                "too many hashes");
        memcpy(h->bytes, n->hashes + k * hb, hb);
        h->margin = n->min_abs[k];
    }
    return NH_OK;
}

static nh_status neural_run(void *self, int b, nh_record *recs, size_t count, nh_error *err)
{
    struct neural *n = self;
    uint8_t *rgb = n->rgb[b];
    size_t m = 0;
    for (size_t i = 0; i < count; i++) {
        if (recs[i].status != NH_OK || recs[i].skipped)
            continue;
        /* Compact in place (failures are rare): the batch buffer is the pinned upload. */
        if (m != i)
            memcpy(rgb + m * n->slot, rgb + i * n->slot, n->slot);
        n->idx[m++] = i;
    }
    if (m == 0)
        return NH_OK;
    nh_status st = pass(n, rgb, m, recs, NH_VARIANT_ORIGINAL, err);
    if (st != NH_OK || !n->mirror)
        return st;
    /* The mirror images: the network input flipped left-right in place (the batch buffer is
     * not needed any more), then a second pass. */
    size_t w = (size_t)n->in.width, h = (size_t)n->in.height;
    for (size_t k = 0; k < m; k++) {
        uint8_t *img = rgb + k * n->slot;
        for (size_t y = 0; y < h; y++) {
            uint8_t *row = img + y * w * 3;
            for (size_t x = 0, z = w - 1; x < z; x++, z--) {
                uint8_t t[3];
                memcpy(t, row + 3 * x, 3);
                memcpy(row + 3 * x, row + 3 * z, 3);
                memcpy(row + 3 * z, t, 3);
            }
        }
    }
    return pass(n, rgb, m, recs, NH_VARIANT_FLIPX, err);
}

static int backend_ref(const nh_pipeline_opts *o)
{
    return o->backend && !strcmp(o->backend, "ref");
}

static nh_hasher_choice neural_cl_choose(const nh_pipeline_opts *o, const struct nh_cl *cl)
{
    (void)cl;
    return backend_ref(o) ? NH_HASHER_NO : NH_HASHER_YES;
}

static nh_hasher_choice neural_ref_choose(const nh_pipeline_opts *o, const struct nh_cl *cl)
{
    (void)cl;
    return backend_ref(o) ? NH_HASHER_YES : NH_HASHER_NO;
}

const nh_hasher_ops nh_hasher_neural_cl = {
    .name = "neural-cl",
    .type = NH_KIND_NEURAL,
    .uses_device = 1,
    .choose = neural_cl_choose,
    .create = neural_cl_create,
    .destroy = neural_destroy,
    .needs = neural_needs,
    .prepare = neural_prepare,
    .run = neural_run,
};

const nh_hasher_ops nh_hasher_neural_ref = {
    .name = "neural-ref",
    .type = NH_KIND_NEURAL,
    .choose = neural_ref_choose,
    .create = neural_ref_create,
    .destroy = neural_destroy,
    .needs = neural_needs,
    .prepare = neural_prepare,
    .run = neural_run,
};
