/*
 * nhash pipeline: decode workers -> batches -> network on the device -> records in order.
 * See nhash/pipeline.h.
 *
 * Two batches circulate. While the main thread runs the network on batch k (upload,
 * kernels, projection) the workers decode batch k + 1, so the slower of the two stages sets
 * the pace. Workers also compute file digests and PDQ hashes, which need no device.
 */
#include "nhash/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#ifdef NH_HAVE_NET
#include "nhash/net.h"
#endif
#ifdef NH_HAVE_PDQ
#include "nhash/pdq.h"
#endif

#define DIGEST_BUF (1u << 20)
#define PDQ_SIDE 512

struct batch {
    size_t n;                 /* files in the batch */
    size_t first_index;
    char **paths;             /* owned */
    nh_error *pre;            /* problems the input reported for a path (status != OK) */
    nh_record *rec;
    uint8_t *rgb;             /* n x in_h x in_w x 3, the network's input */
#ifdef NH_HAVE_NET
    cl_mem pinned;            /* when set, rgb is this buffer mapped: page-locked host memory
                                 the driver can DMA from without a staging copy */
#endif
    size_t next, done;        /* work distribution, under the pipeline mutex */
};

struct worker_scratch {
    uint8_t *digest_buf;
    uint8_t *pdq_rgb;         /* 512 x 512 x 3 */
    void *pdq_scratch;
};

struct nh_pipeline {
    nh_pipeline_opts opts;
    size_t batch_cap;
    size_t slot;              /* bytes per image in batch.rgb */
    int nthreads;
    pthread_t *threads;
    struct worker_scratch *scratch;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    struct batch batches[2];
    struct batch *queue[2];   /* batches posted to workers, oldest first */
    size_t nqueue;
    int quit;
#ifdef NH_HAVE_NET
    nh_cl *cl;
    nh_model *model;
    nh_runner *runner;
    float *net_out;
    double *min_abs;
    uint8_t *hashes;
    size_t *idx;              /* batch position of each packed image */
#endif
    char model_name[160];
    uint64_t fingerprint;
    int placeholder;
    size_t hash_bytes;
};

void nh_pipeline_opts_default(nh_pipeline_opts *o)
{
    memset(o, 0, sizeof *o);
    o->algos = NH_ALGO_NEURAL;
    o->backend = "cl";
    o->batch = 16;
    nh_decode_opts_default(&o->decode);
}

const char *nh_pipeline_default_model(void)
{
    static char path[4096];
    const char *env = getenv("NH_MODEL");
    if (env && *env)
        return env;
    const char *cands[] = {
#ifdef NH_SHARE_DIR
        NH_SHARE_DIR "/default.nhm",
#endif
#ifdef NH_SOURCE_DIR
        NH_SOURCE_DIR "/models/default.nhm",
#endif
        "models/default.nhm",
    };
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        if (access(cands[i], R_OK) == 0) {
            snprintf(path, sizeof path, "%s", cands[i]);
            return path;
        }
    }
    return "models/default.nhm";
}

nh_status nh_file_digest(const char *path, uint8_t out[16], uint8_t *buf, size_t buf_len,
                         nh_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path,
                            errno == ENOENT   ? "no such file"
                            : errno == EACCES ? "permission denied"
                                              : "cannot open file");
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        close(fd);
        return nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, EISDIR, path, "is a directory");
    }
    XXH3_state_t *st = XXH3_createState();
    if (!st) {
        close(fd);
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, path, "out of memory");
    }
    XXH3_128bits_reset(st);
    nh_status rc = NH_OK;
    for (;;) {
        ssize_t got = read(fd, buf, buf_len);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            rc = nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path, "read error");
            break;
        }
        if (got == 0)
            break;
        XXH3_128bits_update(st, buf, (size_t)got);
    }
    if (rc == NH_OK) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
        memcpy(out, c.digest, 16);
    }
    XXH3_freeState(st);
    close(fd);
    return rc;
}

/* One file, on a worker thread. */
static void process_file(nh_pipeline *p, struct worker_scratch *ws, struct batch *b, size_t i)
{
    nh_record *r = &b->rec[i];
    const char *path = b->paths[i];
    memset(r, 0, sizeof *r);
    r->index = b->first_index + i;
    r->path = path;
    nh_error_clear(&r->err);
    if (b->pre[i].status != NH_OK) {
        r->err = b->pre[i];
        r->status = r->err.status;
        return;
    }
    if ((p->opts.algos & NH_ALGO_DIGEST) || p->opts.skip) {
        r->status = nh_file_digest(path, r->digest, ws->digest_buf, DIGEST_BUF, &r->err);
        if (r->status != NH_OK)
            return;
        r->has_digest = 1;
        if (p->opts.skip && p->opts.skip(r->digest, p->opts.skip_user)) {
            r->skipped = 1;
            return;
        }
    }
    if (p->opts.algos & NH_ALGO_NEURAL) {
        nh_decode_info info;
        r->status = nh_decode_file(path, &p->opts.decode, b->rgb + i * p->slot, &info, &r->err);
        if (r->status != NH_OK)
            return;
        r->src_width = info.src_width;
        r->src_height = info.src_height;
    }
#ifdef NH_HAVE_PDQ
    if (p->opts.algos & NH_ALGO_PDQ) {
        unsigned flags = (p->opts.pdq_fast ? NH_PDQ_INPUT_FAST : 0u) |
                         (p->opts.pdq_dihedral ? NH_PDQ_DIHEDRAL : 0u);
        r->status = nh_pdq_hash_file(path, flags, ws->pdq_rgb, ws->pdq_scratch,
                                     p->opts.pdq_dihedral ? r->pdq_dihedral[0] : r->pdq,
                                     &r->pdq_quality, &r->src_width, &r->src_height, &r->err);
        if (r->status != NH_OK)
            return;
        if (p->opts.pdq_dihedral) {
            memcpy(r->pdq, r->pdq_dihedral[0], 32);
            r->has_pdq_dihedral = 1;
        }
        r->has_pdq = 1;
    }
#else
    (void)ws;
#endif
}

struct worker_arg {
    nh_pipeline *p;
    struct worker_scratch *ws;
};

static void *worker_run(void *arg)
{
    struct worker_arg *wa = arg;
    nh_pipeline *p = wa->p;
    struct worker_scratch *ws = wa->ws;
    free(wa);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct batch *b = NULL;
        while (!p->quit) {
            for (size_t q = 0; q < p->nqueue && !b; q++)
                if (p->queue[q]->next < p->queue[q]->n)
                    b = p->queue[q];
            if (b)
                break;
            pthread_cond_wait(&p->work_cv, &p->mu);
        }
        if (p->quit)
            break;
        size_t i = b->next++;
        pthread_mutex_unlock(&p->mu);
        process_file(p, ws, b, i);
        pthread_mutex_lock(&p->mu);
        if (++b->done == b->n)
            pthread_cond_broadcast(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void nh_pipeline_set_skip(nh_pipeline *p, nh_skip_fn fn, void *user)
{
    p->opts.skip = fn;
    p->opts.skip_user = user;
}

const char *nh_pipeline_model_name(const nh_pipeline *p)
{
    return p->model_name[0] ? p->model_name : NULL;
}

uint64_t nh_pipeline_model_fingerprint(const nh_pipeline *p)
{
    return p->fingerprint;
}

int nh_pipeline_model_is_placeholder(const nh_pipeline *p)
{
    return p->placeholder;
}

size_t nh_pipeline_hash_bytes(const nh_pipeline *p)
{
    return p->hash_bytes;
}

static nh_status open_network(nh_pipeline *p, nh_error *err)
{
#ifdef NH_HAVE_NET
    const char *path = p->opts.model_path ? p->opts.model_path : nh_pipeline_default_model();
    nh_status st = nh_model_load(path, &p->model, err);
    if (st != NH_OK)
        return st;
    if (p->model->hash_bits == 0 || p->model->hash_bits % 8 ||
        p->model->hash_bits / 8 > NH_NEURAL_MAX_BYTES)
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, path,
                            "model has no usable hash projection (%u bits)",
                            p->model->hash_bits);
    p->hash_bytes = p->model->hash_bits / 8;
    p->fingerprint = p->model->fingerprint;
    snprintf(p->model_name, sizeof p->model_name, "%s %s", p->model->name, p->model->version);
    p->placeholder = strstr(p->model->name, "placeholder") != NULL;
    p->opts.decode.width = (int)p->model->in_w;
    p->opts.decode.height = (int)p->model->in_h;
    nh_runner_opts ro = {.max_batch = p->batch_cap, .cl = NULL};
    const nh_runner_backend *be = &nh_runner_cl;
    if (p->opts.backend && !strcmp(p->opts.backend, "ref")) {
        be = &nh_runner_ref;
    } else {
        st = nh_cl_create(p->opts.cl_platform, p->opts.cl_device, &p->cl, err);
        if (st != NH_OK)
            return st;
        ro.cl = p->cl;
    }
    st = nh_runner_create(be, p->model, &ro, &p->runner, err);
    if (st != NH_OK)
        return st;
    p->net_out = malloc(sizeof(float) * p->batch_cap * p->model->out_dim);
    p->min_abs = malloc(sizeof(double) * p->batch_cap);
    p->hashes = malloc(p->batch_cap * p->hash_bytes);
    p->idx = malloc(p->batch_cap * sizeof *p->idx);
    if (!p->net_out || !p->min_abs || !p->hashes || !p->idx)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    return NH_OK;
#else
    (void)p;
    return nh_error_set(err, NH_ERR_UNSUPPORTED, NH_FOREIGN_NONE, 0, NULL,
                        "this build has no network module (neural hashes)");
#endif
}

nh_status nh_pipeline_create(const nh_pipeline_opts *opts, nh_pipeline **out, nh_error *err)
{
    nh_status st = nh_decode_init(NULL, err);
    if (st != NH_OK)
        return st;
    if (!opts->algos)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL, "no algorithm chosen");
#ifndef NH_HAVE_PDQ
    if (opts->algos & NH_ALGO_PDQ)
        return nh_error_set(err, NH_ERR_UNSUPPORTED, NH_FOREIGN_NONE, 0, NULL,
                            "this build has no PDQ module");
#endif
    nh_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    p->opts = *opts;
    p->batch_cap = opts->batch ? opts->batch : 16;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    if (opts->algos & NH_ALGO_NEURAL) {
        st = open_network(p, err);
        if (st != NH_OK)
            goto fail;
    }
    p->slot = (opts->algos & NH_ALGO_NEURAL)
                  ? (size_t)p->opts.decode.width * (size_t)p->opts.decode.height * 3
                  : 0;
    for (int k = 0; k < 2; k++) {
        struct batch *b = &p->batches[k];
        b->paths = calloc(p->batch_cap, sizeof *b->paths);
        b->rec = calloc(p->batch_cap, sizeof *b->rec);
        b->pre = calloc(p->batch_cap, sizeof *b->pre);
#ifdef NH_HAVE_NET
        if (p->slot && p->cl) {
            /* Pinned staging for uploads (CL_MEM_ALLOC_HOST_PTR, mapped once for the life of
             * the pipeline); plain memory when the device will not give it. */
            cl_int rc;
            size_t bytes = p->slot * p->batch_cap;
            b->pinned = clCreateBuffer(nh_cl_context(p->cl), CL_MEM_ALLOC_HOST_PTR, bytes, NULL, &rc);
            if (b->pinned) {
                b->rgb = clEnqueueMapBuffer(nh_cl_queue(p->cl), b->pinned, CL_TRUE,
                                            CL_MAP_READ | CL_MAP_WRITE, 0, bytes, 0, NULL, NULL, &rc);
                if (!b->rgb) {
                    clReleaseMemObject(b->pinned);
                    b->pinned = NULL;
                }
            }
        }
        if (!b->rgb)
#endif
        b->rgb = p->slot ? malloc(p->slot * p->batch_cap) : NULL;
        if (!b->paths || !b->rec || !b->pre || (p->slot && !b->rgb)) {
            st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
            goto fail;
        }
    }
    int nthreads = opts->threads;
    if (nthreads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = n > 0 ? (int)n : 1;
    }
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    p->scratch = calloc((size_t)nthreads, sizeof *p->scratch);
    if (!p->threads || !p->scratch) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        goto fail;
    }
    for (int i = 0; i < nthreads; i++) {
        struct worker_scratch *ws = &p->scratch[i];
        ws->digest_buf = malloc(DIGEST_BUF);
#ifdef NH_HAVE_PDQ
        if (opts->algos & NH_ALGO_PDQ) {
            ws->pdq_rgb = malloc((size_t)PDQ_SIDE * PDQ_SIDE * 3);
            ws->pdq_scratch = nh_pdq_scratch_new();
        }
#endif
        struct worker_arg *wa = malloc(sizeof *wa);
        if (!ws->digest_buf || !wa) {
            free(wa);
            st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
            goto fail;
        }
        wa->p = p;
        wa->ws = ws;
        if (pthread_create(&p->threads[i], NULL, worker_run, wa) != 0) {
            free(wa);
            st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL,
                              "cannot start worker thread");
            goto fail;
        }
        p->nthreads = i + 1;
    }
    *out = p;
    return NH_OK;
fail:
    nh_pipeline_destroy(p);
    return st;
}

void nh_pipeline_destroy(nh_pipeline *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    if (p->scratch) {
        for (int i = 0; i < p->nthreads; i++) {
            free(p->scratch[i].digest_buf);
            free(p->scratch[i].pdq_rgb);
#ifdef NH_HAVE_PDQ
            nh_pdq_scratch_free(p->scratch[i].pdq_scratch);
#endif
        }
    }
    free(p->scratch);
    free(p->threads);
    for (int k = 0; k < 2; k++) {
        struct batch *b = &p->batches[k];
        for (size_t i = 0; b->paths && i < b->n; i++)
            free(b->paths[i]);
        free(b->paths);
        free(b->rec);
        free(b->pre);
#ifdef NH_HAVE_NET
        if (b->pinned) {
            clEnqueueUnmapMemObject(nh_cl_queue(p->cl), b->pinned, b->rgb, 0, NULL, NULL);
            clFinish(nh_cl_queue(p->cl));
            clReleaseMemObject(b->pinned);
            b->rgb = NULL;
        }
#endif
        free(b->rgb);
    }
#ifdef NH_HAVE_NET
    nh_runner_destroy(p->runner);
    nh_model_destroy(p->model);
    nh_cl_destroy(p->cl);
    free(p->net_out);
    free(p->min_abs);
    free(p->hashes);
    free(p->idx);
#endif
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p);
}

/* Fill a batch from the input; returns the number of paths taken. Paths the input itself
 * could not produce (unreadable folders) become failed records at once. */
static size_t fill_batch(nh_pipeline *p, nh_input *in, struct batch *b, size_t first_index,
                         int *input_done)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->paths[i]);
    b->n = 0;
    b->next = 0;
    b->done = 0;
    b->first_index = first_index;
    while (b->n < p->batch_cap && !*input_done) {
        if (p->opts.stop && *p->opts.stop)
            break;
        char *path = NULL;
        nh_error problem;
        nh_status st = nh_input_next(in, &path, &problem);
        if (st == NH_ERR_NOT_FOUND) {
            *input_done = 1;
            break;
        }
        if (st != NH_OK)
            break;
        b->pre[b->n] = problem;
        b->paths[b->n++] = path;
    }
    return b->n;
}

static void post(nh_pipeline *p, struct batch *b)
{
    pthread_mutex_lock(&p->mu);
    p->queue[p->nqueue++] = b;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
}

static void wait_done(nh_pipeline *p, struct batch *b)
{
    pthread_mutex_lock(&p->mu);
    while (b->done < b->n)
        pthread_cond_wait(&p->done_cv, &p->mu);
    /* b is the oldest posted batch: drop it from the queue. */
    if (p->nqueue && p->queue[0] == b) {
        p->queue[0] = p->queue[1];
        p->nqueue--;
    }
    pthread_mutex_unlock(&p->mu);
}

/* Network and projection over the decoded images of a batch, on the calling thread. */
static nh_status run_network(nh_pipeline *p, struct batch *b, nh_error *err)
{
#ifdef NH_HAVE_NET
    if (!(p->opts.algos & NH_ALGO_NEURAL))
        return NH_OK;
    size_t m = 0;
    size_t *idx = p->idx;
    for (size_t i = 0; i < b->n; i++) {
        if (b->rec[i].status != NH_OK || b->rec[i].skipped)
            continue;
        /* Compact in place (failures are rare): the batch buffer is the pinned upload. */
        if (m != i)
            memcpy(b->rgb + m * p->slot, b->rgb + i * p->slot, p->slot);
        idx[m++] = i;
    }
    if (m == 0)
        return NH_OK;
    nh_status st = nh_runner_run(p->runner, b->rgb, m, p->net_out, err);
    if (st != NH_OK)
        return st;
    st = nh_net_hash(p->model, p->net_out, m, p->hashes, p->min_abs, NULL, err);
    if (st != NH_OK)
        return st;
    for (size_t k = 0; k < m; k++) {
        nh_record *r = &b->rec[idx[k]];
        memcpy(r->neural, p->hashes + k * p->hash_bytes, p->hash_bytes);
        r->neural_bytes = p->hash_bytes;
        r->neural_min_abs = p->min_abs[k];
        r->has_neural = 1;
    }
    if (!p->opts.neural_mirror)
        return NH_OK;
    /* The mirror images: the network input flipped left-right in place (the batch buffer is
     * not needed any more), then a second pass. */
    size_t w = (size_t)p->opts.decode.width, h = (size_t)p->opts.decode.height;
    for (size_t k = 0; k < m; k++) {
        uint8_t *img = b->rgb + k * p->slot;
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
    st = nh_runner_run(p->runner, b->rgb, m, p->net_out, err);
    if (st == NH_OK)
        st = nh_net_hash(p->model, p->net_out, m, p->hashes, p->min_abs, NULL, err);
    if (st != NH_OK)
        return st;
    for (size_t k = 0; k < m; k++) {
        nh_record *r = &b->rec[idx[k]];
        memcpy(r->neural_mirror, p->hashes + k * p->hash_bytes, p->hash_bytes);
        r->has_neural_mirror = 1;
    }
    return NH_OK;
#else
    (void)p;
    (void)b;
    (void)err;
    return NH_OK;
#endif
}

nh_status nh_pipeline_run(nh_pipeline *p, nh_input *in, nh_record_fn cb, void *user,
                          nh_pipeline_stats *stats, nh_error *err)
{
    nh_pipeline_stats local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    double t0 = nh_time_now();
    int input_done = 0, stop_cb = 0;
    nh_status st = NH_OK;
    size_t next_index = 0;
    struct batch *cur = &p->batches[0], *nxt = &p->batches[1];
    next_index += fill_batch(p, in, cur, next_index, &input_done);
    if (cur->n)
        post(p, cur);
    while (cur->n) {
        /* Start decoding the next batch before the device works on this one. */
        int stopping = stop_cb || (p->opts.stop && *p->opts.stop);
        nxt->n = 0;
        if (!stopping) {
            next_index += fill_batch(p, in, nxt, next_index, &input_done);
            if (nxt->n)
                post(p, nxt);
        }
        wait_done(p, cur);
        double tn = nh_time_now();
        st = run_network(p, cur, err);
        stats->net_seconds += nh_time_now() - tn;
        if (st != NH_OK) {
            if (nxt->n)
                wait_done(p, nxt);
            break;
        }
        for (size_t i = 0; i < cur->n; i++) {
            nh_record *r = &cur->rec[i];
            stats->files++;
            if (r->status != NH_OK)
                stats->failed++;
            else if (r->skipped)
                stats->skipped++;
            else
                stats->ok++;
            if (!stop_cb && cb && cb(r, user))
                stop_cb = 1;
        }
        struct batch *t = cur;
        cur = nxt;
        nxt = t;
        if (stopping && !cur->n)
            break;
    }
    stats->seconds = nh_time_now() - t0;
    if (st == NH_OK && ((p->opts.stop && *p->opts.stop) || stop_cb)) {
        stats->interrupted = 1;
        st = NH_ERR_INTERRUPTED;
    }
    return st;
}
