/*
 * The digest hasher: XXH128 of the file's bytes (canonical big-endian), from the bytes the
 * pipeline read for the decoders, or streamed from the open file when nothing decodes it
 * (so a digest-only run reads files of any size in fixed memory).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "hasher.h"

#define STREAM_BUF (1u << 20)

struct digest {
    int nthreads;
    uint8_t **bufs; /* per worker, STREAM_BUF bytes, made on first use */
};

static nh_status digest_create(const nh_hasher_env *env, void **self, nh_hasher_info *info,
                               nh_error *err)
{
    struct digest *d = calloc(1, sizeof *d);
    if (d)
        d->bufs = calloc((size_t)env->nthreads, sizeof *d->bufs);
    if (!d || !d->bufs) {
        free(d);
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    }
    d->nthreads = env->nthreads;
    info->kind = nh_kind_of(NH_KIND_DIGEST);
    *self = d;
    return NH_OK;
}

static void digest_destroy(void *self)
{
    struct digest *d = self;
    if (!d)
        return;
    for (int i = 0; i < d->nthreads; i++)
        free(d->bufs[i]);
    free(d->bufs);
    free(d);
}

static unsigned digest_needs(const void *self)
{
    (void)self;
    return NH_NEED_BYTES;
}

static nh_status stream(struct digest *d, int w, nh_source *src, XXH3_state_t *st, nh_error *err)
{
    if (!d->bufs[w] && !(d->bufs[w] = malloc(STREAM_BUF)))
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, src->path, "out of memory");
    for (;;) {
        ssize_t got = read(src->fd, d->bufs[w], STREAM_BUF);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, src->path, "read error");
        }
        if (got == 0)
            return NH_OK;
        XXH3_128bits_update(st, d->bufs[w], (size_t)got);
    }
}

static nh_status digest_prepare(void *self, int w, int b, size_t i, nh_source *src, nh_record *r,
                                nh_error *err)
{
    (void)b;
    (void)i;
    struct digest *d = self;
    XXH128_canonical_t c;
    if (src->data) {
        XXH128_canonicalFromHash(&c, XXH3_128bits(src->data, src->len));
    } else {
        XXH3_state_t *st = XXH3_createState();
        if (!st)
            return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, src->path, "out of memory");
        XXH3_128bits_reset(st);
        nh_status rc = stream(d, w, src, st, err);
        if (rc == NH_OK)
            XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
        XXH3_freeState(st);
        if (rc != NH_OK)
            return rc;
    }
    nh_kind k = nh_kind_of(NH_KIND_DIGEST);
    nh_hash *h = nh_record_push(r, &k, NH_VARIANT_ORIGINAL);
    if (!h)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, src->path, "too many hashes");
    memcpy(h->bytes, c.digest, 16);
    return NH_OK;
}

static nh_hasher_choice digest_choose(const nh_pipeline_opts *o, const struct nh_cl *cl)
{
    (void)o;
    (void)cl;
    return NH_HASHER_YES;
}

const nh_hasher_ops nh_hasher_digest = {
    .name = "digest",
    .type = NH_KIND_DIGEST,
    .choose = digest_choose,
    .create = digest_create,
    .destroy = digest_destroy,
    .needs = digest_needs,
    .prepare = digest_prepare,
};
