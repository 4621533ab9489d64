/* nhash CLI <-> libnhdb glue. See cli_db.h. Compiled to nothing without libnhdb. */
#include "cli_db.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nhdb/nhdb.h"

/*
 * LMDB does not check its B-tree pages: a set damaged on disk (or made hostile) can make it fault
 * or fail an assertion inside a read. While this thread is inside libnhdb for nhash (the calls
 * below and nh_match_file in the audit), such a signal becomes a message and exit status 2; a
 * fault anywhere else goes to the handler that was there before (the default, or a sanitizer's),
 * so nhash's own bugs are not disguised as a damaged set. nhdb's own commands do the same.
 */
static _Thread_local volatile sig_atomic_t t_in_db;
static const int g_fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
#define N_FATAL (sizeof g_fatal / sizeof g_fatal[0])
static struct sigaction g_prev[N_FATAL];
static pthread_once_t g_guard_once = PTHREAD_ONCE_INIT;

static void write_str(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

/* Async-signal-safe: write(2), sigaction(2), raise(3), _exit(2). */
static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (t_in_db) {
        char num[4] = {(char)('0' + sig / 10 % 10), (char)('0' + sig % 10), 0, 0};
        if (sig < 10) {
            num[0] = num[1];
            num[1] = 0;
        }
        write_str("nhash: the set's LMDB structure is damaged (signal ");
        write_str(num);
        write_str(" while reading it): LMDB does not check its pages; `nhdb verify SET` reports "
                  "the damage; restore the set from a copy\n");
        _exit(2);
    }
    for (size_t i = 0; i < N_FATAL; i++)
        if (g_fatal[i] == sig)
            sigaction(sig, &g_prev[i], NULL);
    /* a fault happens again on return and reaches the previous handler; a signal that was sent
     * (raise, kill) is sent again */
    if (!si || si->si_code <= 0)
        raise(sig);
}

static void guard_install_once(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < N_FATAL; i++)
        sigaction(g_fatal[i], &sa, &g_prev[i]);
}

static void nh_cli_db_guard_install(void)
{
    pthread_once(&g_guard_once, guard_install_once);
}

void nh_cli_db_guard_enter(void)
{
    t_in_db++;
}

void nh_cli_db_guard_leave(void)
{
    t_in_db--;
}

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

static nh_status nh_cli_db_open_unguarded(const char *dir, int write, const nh_kind *neural, nh_cli_db **out,
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

static void nh_cli_db_close_unguarded(nh_cli_db *d)
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

static nh_status nh_cli_db_flush_unguarded(nh_cli_db *d, uint64_t *added, uint64_t *dupes, nh_error *err)
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

static nh_status nh_cli_db_add_unguarded(nh_cli_db *d, const nh_record *r, const char *label, const char *note,
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

static unsigned nh_cli_db_kinds_unguarded(nh_cli_db *d, size_t *other_models)
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

/* The public calls: each inside the guard. */
nh_status nh_cli_db_open(const char *dir, int write, const nh_kind *neural, nh_cli_db **out, nh_error *err)
{
    nh_cli_db_guard_install();
    nh_cli_db_guard_enter();
    nh_status r_ = nh_cli_db_open_unguarded(dir, write, neural, out, err);
    nh_cli_db_guard_leave();
    return r_;
}

void nh_cli_db_close(nh_cli_db *d)
{
    nh_cli_db_guard_enter();
    nh_cli_db_close_unguarded(d);
    nh_cli_db_guard_leave();
}

nh_status nh_cli_db_flush(nh_cli_db *d, uint64_t *added, uint64_t *dupes, nh_error *err)
{
    nh_cli_db_guard_enter();
    nh_status r_ = nh_cli_db_flush_unguarded(d, added, dupes, err);
    nh_cli_db_guard_leave();
    return r_;
}

nh_status nh_cli_db_add(nh_cli_db *d, const nh_record *r, const char *label, const char *note, nh_error *err)
{
    nh_cli_db_guard_enter();
    nh_status r_ = nh_cli_db_add_unguarded(d, r, label, note, err);
    nh_cli_db_guard_leave();
    return r_;
}

unsigned nh_cli_db_kinds(nh_cli_db *d, size_t *other_models)
{
    nh_cli_db_guard_enter();
    unsigned r_ = nh_cli_db_kinds_unguarded(d, other_models);
    nh_cli_db_guard_leave();
    return r_;
}
