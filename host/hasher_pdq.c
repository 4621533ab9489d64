/*
 * The PDQ hashers: in C on the decode workers (pdq-c), or on the OpenCL device one batch
 * at a time (pdq-cl, kernels/pdq.cl). Both read the reference input derived from the file's
 * one full decode (or, with --pdq-fast, a shrink-on-load decode where it pays) and give the
 * same bits on the same pixels. With pdq_dihedral each file also gets its 7 other dihedral
 * variants (computed from the DCT, no extra decode).
 */
#include <stdlib.h>
#include <string.h>

#include "hasher.h"
#include "nhash/cl.h"
#include "nhash/pdq.h"

struct pdq {
    const nh_decode_opts *decode;
    int fast, dihedral;
    int nthreads;
    size_t batch_cap;
    /* pdq-c: per worker */
    uint8_t **pix;
    nh_pdq_scratch **scratch;
    /* pdq-cl: per batch slot */
    nh_pdq_cl *cl;
    uint8_t *bpix[2];          /* batch_cap x NH_PDQ_FILE_PIXEL_BYTES */
    nh_pdq_image *bimg[2];     /* batch_cap */
    nh_pdq_image *packed;      /* the prepared images of a batch */
    size_t *idx;
    uint8_t *hashes;           /* batch_cap x 8 x 32 */
    int *quality;
};

static void pdq_destroy(void *self)
{
    struct pdq *p = self;
    if (!p)
        return;
    for (int i = 0; p->pix && i < p->nthreads; i++) {
        free(p->pix[i]);
        nh_pdq_scratch_free(p->scratch[i]);
    }
    free(p->pix);
    free(p->scratch);
    nh_pdq_cl_destroy(p->cl);
    for (int b = 0; b < 2; b++) {
        free(p->bpix[b]);
        free(p->bimg[b]);
    }
    free(p->packed);
    free(p->idx);
    free(p->hashes);
    free(p->quality);
    free(p);
}

static struct pdq *pdq_new(const nh_hasher_env *env, nh_hasher_info *info)
{
    struct pdq *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->decode = env->decode;
    p->fast = env->opts->pdq_fast;
    p->dihedral = env->opts->pdq_dihedral;
    p->nthreads = env->nthreads;
    p->batch_cap = env->batch_cap;
    info->kind = nh_kind_of(NH_KIND_PDQ);
    return p;
}

static nh_status pdq_c_create(const nh_hasher_env *env, void **self, nh_hasher_info *info,
                              nh_error *err)
{
    struct pdq *p = pdq_new(env, info);
    if (!p)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    p->pix = calloc((size_t)p->nthreads, sizeof *p->pix);
    p->scratch = calloc((size_t)p->nthreads, sizeof *p->scratch);
    int ok = p->pix && p->scratch;
    for (int i = 0; ok && i < p->nthreads; i++) {
        p->pix[i] = malloc(NH_PDQ_FILE_PIXEL_BYTES);
        p->scratch[i] = nh_pdq_scratch_new();
        ok = p->pix[i] && p->scratch[i];
    }
    if (!ok) {
        pdq_destroy(p);
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    }
    *self = p;
    return NH_OK;
}

static nh_status pdq_cl_create(const nh_hasher_env *env, void **self, nh_hasher_info *info,
                               nh_error *err)
{
    struct pdq *p = pdq_new(env, info);
    if (!p)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    nh_status st = nh_pdq_cl_create(env->cl, p->batch_cap, 0, 0, &p->cl, err);
    if (st != NH_OK) {
        pdq_destroy(p);
        return st;
    }
    int ok = 1;
    for (int b = 0; b < 2 && b < env->nbatches && ok; b++) {
        p->bpix[b] = malloc(p->batch_cap * NH_PDQ_FILE_PIXEL_BYTES);
        p->bimg[b] = calloc(p->batch_cap, sizeof *p->bimg[b]);
        ok = p->bpix[b] && p->bimg[b];
    }
    p->packed = calloc(p->batch_cap, sizeof *p->packed);
    p->idx = calloc(p->batch_cap, sizeof *p->idx);
    p->hashes = malloc(p->batch_cap * NH_PDQ_NUM_DIHEDRAL * NH_PDQ_HASH_BYTES);
    p->quality = calloc(p->batch_cap, sizeof *p->quality);
    if (!ok || !p->packed || !p->idx || !p->hashes || !p->quality) {
        pdq_destroy(p);
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    }
    *self = p;
    return NH_OK;
}

static unsigned pdq_needs(const void *self)
{
    const struct pdq *p = self;
    return NH_NEED_FULL | (p->fast ? NH_NEED_SHRINK : 0u);
}

/* The reference input (or the fast one where it pays) of src into pix / img. */
static nh_status load(struct pdq *p, nh_source *src, uint8_t *pix, nh_pdq_image *img,
                      nh_record *r, nh_error *err)
{
    nh_status st = NH_ERR_UNSUPPORTED;
    int sw = 0, sh = 0;
    if (p->fast && nh_pdq_fast_pays(src->data, src->len)) {
        st = nh_pdq_input_fast(src->data, src->len, src->fd, src->path, p->decode, pix, img, &sw, &sh,
                               err);
        if (st != NH_OK && st != NH_ERR_UNSUPPORTED)
            return st;
    }
    if (st == NH_ERR_UNSUPPORTED) {
        const uint8_t *rgb;
        const nh_decode_info *info;
        st = nh_source_full(src, &rgb, &info, err);
        if (st != NH_OK)
            return st;
        nh_pdq_input_from_full(rgb, info->width, info->height, pix, img);
        sw = info->src_width;
        sh = info->src_height;
    }
    r->src_width = sw;
    r->src_height = sh;
    return NH_OK;
}

/* Hashes (1 or 8 variants) and quality into the record. */
static nh_status add(struct pdq *p, nh_record *r, const uint8_t *hashes, int quality,
                     nh_error *err)
{
    nh_kind k = nh_kind_of(NH_KIND_PDQ);
    int nv = p->dihedral ? NH_PDQ_NUM_DIHEDRAL : 1;
    for (int v = 0; v < nv; v++) {
        nh_hash *h = nh_record_push(r, &k, (nh_variant)v);
        if (!h)
            return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, r->path,
                                "too many hashes");
        memcpy(h->bytes, hashes + (size_t)v * NH_PDQ_HASH_BYTES, NH_PDQ_HASH_BYTES);
        h->quality = quality;
    }
    return NH_OK;
}

static nh_status pdq_c_prepare(void *self, int w, int b, size_t i, nh_source *src, nh_record *r,
                               nh_error *err)
{
    (void)b;
    (void)i;
    struct pdq *p = self;
    nh_pdq_image img;
    nh_status st = load(p, src, p->pix[w], &img, r, err);
    if (st != NH_OK)
        return st;
    uint8_t hashes[NH_PDQ_NUM_DIHEDRAL * NH_PDQ_HASH_BYTES];
    int quality = 0;
    st = nh_pdq_hash(p->scratch[w], &img, p->dihedral ? NH_PDQ_DIHEDRAL : 0u, hashes, &quality,
                     err);
    if (st != NH_OK) {
        if (err)
            snprintf(err->path, sizeof err->path, "%s", src->path);
        return st;
    }
    return add(p, r, hashes, quality, err);
}

static nh_status pdq_cl_prepare(void *self, int w, int b, size_t i, nh_source *src, nh_record *r,
                                nh_error *err)
{
    (void)w;
    struct pdq *p = self;
    return load(p, src, p->bpix[b] + i * NH_PDQ_FILE_PIXEL_BYTES, &p->bimg[b][i], r, err);
}

static nh_status pdq_cl_run(void *self, int b, nh_record *recs, size_t n, nh_error *err)
{
    struct pdq *p = self;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].status != NH_OK || recs[i].skipped)
            continue;
        p->packed[m] = p->bimg[b][i];
        p->idx[m++] = i;
    }
    if (m == 0)
        return NH_OK;
    unsigned flags = p->dihedral ? NH_PDQ_DIHEDRAL : 0u;
    nh_status st = nh_pdq_cl_hash(p->cl, p->packed, m, flags, p->hashes, p->quality, err);
    if (st != NH_OK)
        return st;
    size_t per = (size_t)(p->dihedral ? NH_PDQ_NUM_DIHEDRAL : 1) * NH_PDQ_HASH_BYTES;
    for (size_t k = 0; k < m && st == NH_OK; k++)
        st = add(p, &recs[p->idx[k]], p->hashes + k * per, p->quality[k], err);
    return st;
}

/* The job's PDQ backend: the option, else NH_PDQ_BACKEND (c or cl) from the environment. */
static nh_pdq_backend backend(const nh_pipeline_opts *o)
{
    const char *env = getenv("NH_PDQ_BACKEND");
    if (o->pdq_backend != NH_PDQ_BACKEND_AUTO || !env)
        return o->pdq_backend;
    return !strcmp(env, "cl") ? NH_PDQ_BACKEND_CL : !strcmp(env, "c") ? NH_PDQ_BACKEND_C
                                                                       : NH_PDQ_BACKEND_AUTO;
}

static nh_hasher_choice pdq_cl_choose(const nh_pipeline_opts *o, const struct nh_cl *cl)
{
    nh_pdq_backend be = backend(o);
    if (be == NH_PDQ_BACKEND_CL)
        return NH_HASHER_YES;
    if (be == NH_PDQ_BACKEND_AUTO && cl && (nh_cl_info(cl)->type & CL_DEVICE_TYPE_GPU))
        return NH_HASHER_TRY;
    return NH_HASHER_NO;
}

/* auto takes the device only where its divisions give the reference's bits. */
static int pdq_cl_usable(const void *self)
{
    const struct pdq *p = self;
    return p->cl && nh_pdq_cl_exact(p->cl);
}

static nh_hasher_choice pdq_c_choose(const nh_pipeline_opts *o, const struct nh_cl *cl)
{
    (void)cl;
    return backend(o) == NH_PDQ_BACKEND_CL ? NH_HASHER_NO : NH_HASHER_YES;
}

const nh_hasher_ops nh_hasher_pdq_c = {
    .name = "pdq-c",
    .type = NH_KIND_PDQ,
    .choose = pdq_c_choose,
    .create = pdq_c_create,
    .destroy = pdq_destroy,
    .needs = pdq_needs,
    .prepare = pdq_c_prepare,
};

const nh_hasher_ops nh_hasher_pdq_cl = {
    .name = "pdq-cl",
    .type = NH_KIND_PDQ,
    .uses_device = 1,
    .choose = pdq_cl_choose,
    .usable = pdq_cl_usable,
    .create = pdq_cl_create,
    .destroy = pdq_destroy,
    .needs = pdq_needs,
    .prepare = pdq_cl_prepare,
    .run = pdq_cl_run,
};
