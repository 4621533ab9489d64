/*
 * nhash pipeline: decode workers -> batches -> hashers -> records in order.
 * See nhash/pipeline.h; the hashers are in hasher.h.
 *
 * Two batches circulate. Workers take each file of a batch: read it once, take its digest
 * from those bytes, decode it once at full size and let every hasher derive its input from
 * that (hashers that need no device hash right there). While the pipeline's thread runs the
 * device hashers on batch k (one call per hasher per batch) the workers prepare batch k + 1,
 * so the slower of the two stages sets the pace.
 */
#include "nhash/pipeline.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hasher.h"
#include "nhash/cl.h"
#include "nhash/pool.h"

/* A worker keeps its read buffer for the next file unless a file made it larger than this. */
#define READ_BUF_KEEP ((size_t)64 << 20)
#define MAX_HASHERS NH_KIND_TYPES

struct batch {
    nh_pipeline *p;
    size_t n;                 /* files in the batch */
    size_t first_index;
    char **paths;             /* owned */
    nh_error *pre;            /* problems the input reported for a path (status != OK) */
    nh_record *rec;
    nh_pool_job job;          /* its files on the worker pool */
    int posted;
};

struct worker {
    uint8_t *buf;             /* the file's bytes */
    size_t cap;
};

struct hasher {
    const nh_hasher_ops *ops;
    void *self;
    nh_hasher_info info;
    unsigned needs;
};

struct nh_pipeline {
    nh_pipeline_opts opts;
    nh_decode_opts decode;    /* the one set of decode options */
    size_t batch_cap;
    int nthreads;
    nh_pool *pool;            /* the decode workers */
    struct worker *workers;
    struct batch batches[2];
    nh_cl *cl;                /* the OpenCL device, when a hasher uses it */
    struct hasher digest;     /* always there: the skip hook needs digests */
    struct hasher h[MAX_HASHERS]; /* the job's other hashers, in table order */
    int nh;
    unsigned needs;           /* union of the hashers' NH_NEED_* */
    int want_digest;
};

void nh_pipeline_opts_default(nh_pipeline_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kinds = NH_KIND_BIT(NH_KIND_NEURAL);
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

nh_hash *nh_record_push(nh_record *r, const nh_kind *kind, nh_variant variant)
{
    if (r->nhashes >= NH_RECORD_MAX_HASHES)
        return NULL;
    nh_hash *h = &r->hashes[r->nhashes++];
    memset(h, 0, sizeof *h);
    h->kind = *kind;
    h->variant = variant;
    h->quality = -1;
    return h;
}

const nh_hash *nh_record_hash(const nh_record *r, nh_kind_type type, nh_variant variant)
{
    for (size_t i = 0; i < r->nhashes; i++)
        if (r->hashes[i].kind.type == type && r->hashes[i].variant == variant)
            return &r->hashes[i];
    return NULL;
}

nh_status nh_source_full(nh_source *s, const uint8_t **rgb, const nh_decode_info **info,
                         nh_error *err)
{
    if (!s->full_tried) {
        s->full_tried = 1;
        nh_error_clear(&s->full_err);
        s->full_status =
            nh_decode_full(s->data, s->len, s->fd, s->path, s->decode, &s->rgb, &s->info, &s->full_err);
    }
    if (s->full_status != NH_OK) {
        if (err)
            *err = s->full_err;
        return s->full_status;
    }
    *rgb = s->rgb;
    *info = &s->info;
    return NH_OK;
}

/* One file, on worker w: read once, digest, then every hasher from the same bytes and the
 * same decode. */
static void process_file(nh_pipeline *p, int w, struct batch *b, size_t i)
{
    nh_record *r = &b->rec[i];
    const char *path = b->paths[i];
    struct worker *wk = &p->workers[w];
    memset(r, 0, offsetof(nh_record, hashes));
    r->index = b->first_index + i;
    r->path = path;
    nh_error_clear(&r->err);
    if (b->pre[i].status != NH_OK) {
        r->err = b->pre[i];
        r->status = r->err.status;
        return;
    }
    int bi = (int)(b - p->batches);
    int digest = p->want_digest || p->opts.skip;
    nh_source src;
    memset(&src, 0, sizeof src);
    src.path = path;
    src.decode = &p->decode;
    src.fd = -1;
    if (p->needs & (NH_NEED_FULL | NH_NEED_SHRINK)) {
        size_t len = 0;
        r->status = nh_file_read_fd(path, p->decode.max_file_bytes, &wk->buf, &wk->cap, &len,
                                    &src.fd, &r->err);
        src.data = wk->buf;
        src.len = len;
    } else if (digest) {
        size_t size;
        r->status = nh_file_open(path, &src.fd, &size, &r->err);
    }
    if (r->status != NH_OK)
        goto done;
    if (digest) {
        r->status = p->digest.ops->prepare(p->digest.self, w, bi, i, &src, r, &r->err);
        if (r->status != NH_OK)
            goto done;
        if (p->opts.skip && p->opts.skip(r->hashes[r->nhashes - 1].bytes, p->opts.skip_user)) {
            r->skipped = 1;
            goto done;
        }
    }
    for (int k = 0; k < p->nh && r->status == NH_OK; k++)
        r->status = p->h[k].ops->prepare(p->h[k].self, w, bi, i, &src, r, &r->err);
done:
    if (src.fd >= 0)
        close(src.fd);
    nh_decode_free(src.rgb);
    if (wk->cap > READ_BUF_KEEP) {
        free(wk->buf);
        wk->buf = NULL;
        wk->cap = 0;
    }
}

static void pool_item(void *ctx, int w, size_t i)
{
    struct batch *b = ctx;
    process_file(b->p, w, b, i);
}

void nh_pipeline_set_skip(nh_pipeline *p, nh_skip_fn fn, void *user)
{
    p->opts.skip = fn;
    p->opts.skip_user = user;
}

static const struct hasher *find_hasher(const nh_pipeline *p, nh_kind_type type)
{
    if (type == NH_KIND_DIGEST)
        return p->want_digest ? &p->digest : NULL;
    for (int k = 0; k < p->nh; k++)
        if (p->h[k].ops->type == type)
            return &p->h[k];
    return NULL;
}

const char *nh_pipeline_model_name(const nh_pipeline *p)
{
    const struct hasher *h = find_hasher(p, NH_KIND_NEURAL);
    return h ? h->info.model_name : NULL;
}

uint64_t nh_pipeline_model_fingerprint(const nh_pipeline *p)
{
    const struct hasher *h = find_hasher(p, NH_KIND_NEURAL);
    return h ? nh_kind_fingerprint(&h->info.kind) : 0;
}

int nh_pipeline_model_is_placeholder(const nh_pipeline *p)
{
    const struct hasher *h = find_hasher(p, NH_KIND_NEURAL);
    return h ? h->info.placeholder : 0;
}

size_t nh_pipeline_hash_bytes(const nh_pipeline *p)
{
    const struct hasher *h = find_hasher(p, NH_KIND_NEURAL);
    return h ? nh_kind_bits(&h->info.kind) / 8 : 0;
}

nh_status nh_pipeline_kind(const nh_pipeline *p, nh_kind_type type, nh_kind *out)
{
    const struct hasher *h = find_hasher(p, type);
    if (!h)
        return NH_ERR_NOT_FOUND;
    *out = h->info.kind;
    return NH_OK;
}

const char *nh_pipeline_hasher_name(const nh_pipeline *p, nh_kind_type type)
{
    const struct hasher *h = find_hasher(p, type);
    return h ? h->ops->name : NULL;
}

static nh_status add_hasher(nh_pipeline *p, struct hasher *slot, const nh_hasher_ops *ops,
                            nh_error *err)
{
    nh_hasher_env env = {.opts = &p->opts,
                         .decode = &p->decode,
                         .cl = p->cl,
                         .batch_cap = p->batch_cap,
                         .nbatches = 2,
                         .nthreads = p->nthreads};
    if (ops->uses_device && !p->cl) {
        nh_status st = nh_cl_create(p->opts.cl_platform, p->opts.cl_device, &p->cl, err);
        if (st != NH_OK)
            return st;
        env.cl = p->cl;
    }
    memset(slot, 0, sizeof *slot);
    nh_status st = ops->create(&env, &slot->self, &slot->info, err);
    if (st != NH_OK)
        return st;
    slot->ops = ops;
    slot->needs = ops->needs(slot->self);
    return NH_OK;
}

/* The hasher for one kind: the first row of the table of that type that chooses to serve. */
static nh_status add_kind(nh_pipeline *p, nh_kind_type type, struct hasher *slot, nh_error *err)
{
    for (size_t i = 0; i < nh_hasher_table_len; i++) {
        const nh_hasher_ops *ops = nh_hasher_table[i];
        if (ops->type != type)
            continue;
        nh_hasher_choice c = ops->choose(&p->opts, p->cl);
        if (c == NH_HASHER_NO)
            continue;
        if (c == NH_HASHER_YES)
            return add_hasher(p, slot, ops, err);
        nh_error ignored;
        if (add_hasher(p, slot, ops, &ignored) == NH_OK) {
            if (!ops->usable || ops->usable(slot->self))
                return NH_OK;
            ops->destroy(slot->self);
            memset(slot, 0, sizeof *slot);
        }
    }
    return nh_error_set(err, NH_ERR_UNSUPPORTED, NH_FOREIGN_NONE, 0, NULL,
                        "no hasher for %s hashes", nh_kind_name(type));
}

nh_status nh_pipeline_create(const nh_pipeline_opts *opts, nh_pipeline **out, nh_error *err)
{
    nh_status st = nh_decode_init(NULL, err);
    if (st != NH_OK)
        return st;
    if (!opts->kinds)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL, "no algorithm chosen");
    nh_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    p->opts = *opts;
    p->decode = opts->decode;
    p->batch_cap = opts->batch ? opts->batch : 16;
    int nthreads = opts->threads;
    if (nthreads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        nthreads = n > 0 ? (int)n : 1;
    }
    p->nthreads = nthreads;
    /* The hasher table's kinds in its order; the digest hasher always (the resume hook
     * reads digests), its hashes reported only when asked for. */
    p->want_digest = (opts->kinds & NH_KIND_BIT(NH_KIND_DIGEST)) != 0;
    st = add_kind(p, NH_KIND_DIGEST, &p->digest, err);
    for (size_t i = 0; st == NH_OK && i < nh_hasher_table_len; i++) {
        nh_kind_type t = nh_hasher_table[i]->type;
        int first_of_type = 1;
        for (size_t j = 0; j < i; j++)
            first_of_type &= nh_hasher_table[j]->type != t;
        if (t == NH_KIND_DIGEST || !first_of_type || !(opts->kinds & NH_KIND_BIT(t)))
            continue;
        if (p->nh == MAX_HASHERS) {
            st = nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL, "too many hashers");
            break;
        }
        st = add_kind(p, t, &p->h[p->nh], err);
        if (st == NH_OK)
            p->nh++;
    }
    if (st != NH_OK)
        goto fail;
    for (int k = 0; k < p->nh; k++)
        p->needs |= p->h[k].needs;
    for (int k = 0; k < 2; k++) {
        struct batch *b = &p->batches[k];
        b->p = p;
        b->paths = calloc(p->batch_cap, sizeof *b->paths);
        b->rec = calloc(p->batch_cap, sizeof *b->rec);
        b->pre = calloc(p->batch_cap, sizeof *b->pre);
        if (!b->paths || !b->rec || !b->pre) {
            st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
            goto fail;
        }
    }
    p->workers = calloc((size_t)nthreads, sizeof *p->workers);
    if (!p->workers) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        goto fail;
    }
    st = nh_pool_create(nthreads, nh_decode_thread_done, &p->pool, err);
    if (st != NH_OK)
        goto fail;
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
    /* Batches still on the pool finish first: their items use the hashers below. */
    for (int k = 0; p->pool && k < 2; k++)
        if (p->batches[k].posted)
            nh_pool_wait(p->pool, &p->batches[k].job);
    nh_pool_destroy(p->pool);
    for (int i = 0; p->workers && i < p->nthreads; i++)
        free(p->workers[i].buf);
    free(p->workers);
    for (int k = 0; k < 2; k++) {
        struct batch *b = &p->batches[k];
        for (size_t i = 0; b->paths && i < b->n; i++)
            free(b->paths[i]);
        free(b->paths);
        free(b->rec);
        free(b->pre);
    }
    for (int k = p->nh - 1; k >= 0; k--)
        if (p->h[k].ops)
            p->h[k].ops->destroy(p->h[k].self);
    if (p->digest.ops)
        p->digest.ops->destroy(p->digest.self);
    nh_cl_destroy(p->cl);
    free(p);
}

/* Free a batch's paths: every batch that is refilled or dropped comes through here. */
static void clear_batch(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->paths[i]);
        b->paths[i] = NULL;
    }
    b->n = 0;
}

/* Fill a batch from the input; returns the number of paths taken. Paths the input itself
 * could not produce (unreadable folders) become failed records at once. */
static size_t fill_batch(nh_pipeline *p, nh_input *in, struct batch *b, size_t first_index,
                         int *input_done)
{
    clear_batch(b);
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
    nh_pool_post(p->pool, &b->job, b->n, pool_item, b);
    b->posted = 1;
}

static void wait_done(nh_pipeline *p, struct batch *b)
{
    nh_pool_wait(p->pool, &b->job);
    b->posted = 0;
}

/* The device hashers over a prepared batch, on the pipeline's thread. */
static nh_status run_hashers(nh_pipeline *p, struct batch *b, nh_error *err)
{
    int bi = (int)(b - p->batches);
    for (int k = 0; k < p->nh; k++) {
        if (!p->h[k].ops->run)
            continue;
        nh_status st = p->h[k].ops->run(p->h[k].self, bi, b->rec, b->n, err);
        if (st != NH_OK)
            return st;
    }
    return NH_OK;
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
        clear_batch(nxt); /* its paths were the previous batch's */
        if (!stopping) {
            next_index += fill_batch(p, in, nxt, next_index, &input_done);
            if (nxt->n)
                post(p, nxt);
        }
        wait_done(p, cur);
        double tn = nh_time_now();
        st = run_hashers(p, cur, err);
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
