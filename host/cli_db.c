/* nhash CLI <-> libnhdb glue. See cli_db.h. Compiled to nothing without libnhdb. */
#include "cli_db.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nhdb/nhdb.h"

/* A batch commits after this many files or this many seconds, whichever comes first, so a
 * kill loses at most a few seconds of work. */
#define COMMIT_EVERY 512
#define COMMIT_SECONDS 2.0

struct nh_cli_db {
    nh_db *db;
    nh_db_reader *rd;
    nh_kind neural, pdq, digest;
    int write;
    int in_batch;
    size_t pending;
    double batch_started;
    uint64_t added, dupes;
    /* Digests known at open plus those added since: a sorted array and an overflow list,
     * under mu (the skip hook runs on decode workers). */
    pthread_mutex_t mu;
    uint8_t (*known)[16];
    size_t nknown, capknown;
    uint8_t (*fresh)[16];
    size_t nfresh, capfresh;
};

static int cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static void push(uint8_t (**arr)[16], size_t *n, size_t *cap, const uint8_t *d)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        uint8_t(*a)[16] = realloc(*arr, c * 16);
        if (!a)
            return;
        *arr = a;
        *cap = c;
    }
    memcpy((*arr)[(*n)++], d, 16);
}

static int collect(void *ctx, const nh_db_record *rec)
{
    nh_cli_db *d = ctx;
    if (rec->digest)
        push(&d->known, &d->nknown, &d->capknown, rec->digest);
    else if (rec->kind.type == NH_KIND_DIGEST)
        push(&d->known, &d->nknown, &d->capknown, rec->hash);
    return 0;
}

nh_status nh_cli_db_open(const char *dir, int write, const nh_kind *neural, nh_cli_db **out,
                         nh_error *err)
{
    nh_cli_db *d = calloc(1, sizeof *d);
    if (!d)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, dir, "out of memory");
    pthread_mutex_init(&d->mu, NULL);
    d->write = write;
    d->neural = neural ? *neural : nh_kind_neural(0, 0);
    d->pdq = nh_kind_of(NH_KIND_PDQ);
    d->digest = nh_kind_of(NH_KIND_DIGEST);
    nh_status st = nh_db_open(dir, write ? NH_DB_OPEN_CREATE : NH_DB_OPEN_READONLY, NULL, &d->db,
                              err);
    if (st != NH_OK)
        goto fail;
    st = nh_db_reader_create(d->db, &d->rd, err);
    if (st != NH_OK)
        goto fail;
    if (write) {
        /* A job that computes neural hashes resumes by the files its own neural kind (model
         * and width) holds, so a second model, or the same model at another width, hashes
         * files another kind already has; a job without neural resumes by every entry. */
        nh_db_kind_stats ks[64];
        size_t nk = nh_db_reader_kinds(d->rd, ks, 64);
        for (size_t k = 0; k < nk && k < 64; k++) {
            if (neural && !nh_kind_equal(&ks[k].kind, &d->neural))
                continue;
            st = nh_db_reader_foreach(d->rd, &ks[k].kind, collect, d, err);
            if (st != NH_OK)
                goto fail;
        }
        if (d->nknown)
            qsort(d->known, d->nknown, 16, cmp16);
        /* LMDB cannot grow the map while this process holds a reader: a writer needs none
         * once the known digests are in memory. */
        nh_db_reader_destroy(d->rd);
        d->rd = NULL;
    }
    *out = d;
    return NH_OK;
fail:
    nh_cli_db_close(d);
    return st;
}

void nh_cli_db_close(nh_cli_db *d)
{
    if (!d)
        return;
    if (d->in_batch)
        nh_db_batch_abort(d->db);
    nh_db_reader_destroy(d->rd);
    nh_db_close(d->db);
    pthread_mutex_destroy(&d->mu);
    free(d->known);
    free(d->fresh);
    free(d);
}

int nh_cli_db_skip(const uint8_t digest[16], void *user)
{
    nh_cli_db *d = user;
    if (d->nknown && bsearch(digest, d->known, d->nknown, 16, cmp16))
        return 1;
    int found = 0;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < d->nfresh && !found; i++)
        found = !memcmp(d->fresh[i], digest, 16);
    pthread_mutex_unlock(&d->mu);
    return found;
}

nh_status nh_cli_db_flush(nh_cli_db *d, uint64_t *added, uint64_t *dupes, nh_error *err)
{
    if (d->in_batch) {
        uint64_t a = 0, s = 0;
        nh_status st = nh_db_batch_commit(d->db, &a, &s, err);
        d->in_batch = 0;
        d->pending = 0;
        if (st != NH_OK)
            return st;
        d->added += a;
        d->dupes += s;
    }
    if (added)
        *added = d->added;
    if (dupes)
        *dupes = d->dupes;
    return NH_OK;
}

void nh_cli_db_committed(const nh_cli_db *d, uint64_t *added, uint64_t *dupes)
{
    *added = d->added;
    *dupes = d->dupes;
}

nh_status nh_cli_db_add(nh_cli_db *d, const nh_record *r, const char *label, const char *note,
                        nh_error *err)
{
    if (r->status != NH_OK || r->skipped)
        return NH_OK;
    nh_status st;
    if (!d->in_batch) {
        st = nh_db_batch_begin(d->db, err);
        if (st != NH_OK)
            return st;
        d->in_batch = 1;
        d->batch_started = nh_time_now();
    }
    nh_db_entry e;
    memset(&e, 0, sizeof e);
    const nh_hash *digest = nh_record_hash(r, NH_KIND_DIGEST, NH_VARIANT_ORIGINAL);
    e.digest = digest ? digest->bytes : NULL;
    e.quality = -1;
    e.source = r->path;
    e.label = label;
    e.note = note;
    /* Every original-variant hash of the record (neural, pdq, and the file by its exact
     * digest, so audits find byte-identical copies), in the order neural, pdq, digest. */
    static const nh_kind_type order[] = {NH_KIND_NEURAL, NH_KIND_PDQ, NH_KIND_DIGEST};
    for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
        const nh_hash *h = nh_record_hash(r, order[k], NH_VARIANT_ORIGINAL);
        if (!h)
            continue;
        /* The entry's width is its kind's (nh_hash_size bytes; libnhdb checks it is a valid
         * width): a neural hash must be the job's model at the model's width. */
        if (order[k] == NH_KIND_NEURAL && !nh_kind_equal(&h->kind, &d->neural))
            return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, r->path,
                                "neural hash of %u bits is not the job's kind (%u bits)",
                                nh_kind_bits(&h->kind), nh_kind_bits(&d->neural));
        e.kind = h->kind;
        e.hash = h->bytes;
        e.quality = h->quality;
        if ((st = nh_db_add(d->db, &e, err)) != NH_OK)
            return st;
    }
    if (digest) {
        pthread_mutex_lock(&d->mu);
        push(&d->fresh, &d->nfresh, &d->capfresh, digest->bytes);
        pthread_mutex_unlock(&d->mu);
    }
    if (++d->pending >= COMMIT_EVERY || nh_time_now() - d->batch_started >= COMMIT_SECONDS)
        return nh_cli_db_flush(d, NULL, NULL, err);
    return NH_OK;
}

unsigned nh_cli_db_kinds(nh_cli_db *d, size_t *other_models)
{
    nh_db_kind_stats ks[64];
    size_t nk = nh_db_reader_kinds(d->rd, ks, 64);
    unsigned mask = 0;
    size_t others = 0;
    for (size_t k = 0; k < nk && k < 64; k++) {
        if (!ks[k].count)
            continue;
        switch (ks[k].kind.type) {
        case NH_KIND_NEURAL:
            if (nh_kind_equal(&ks[k].kind, &d->neural)) /* this model at its width */
                mask |= NH_KIND_BIT(NH_KIND_NEURAL);
            else
                others++;
            break;
        case NH_KIND_PDQ: mask |= NH_KIND_BIT(NH_KIND_PDQ); break;
        case NH_KIND_DIGEST: mask |= NH_KIND_BIT(NH_KIND_DIGEST); break;
        }
    }
    if (other_models)
        *other_models = others;
    return mask;
}


nh_db_reader *nh_cli_db_reader(nh_cli_db *d)
{
    return d->rd;
}
