/*
 * libnhdb multi-index hashing storage (schema 2): each substring table of a kind is a short
 * list of immutable sorted runs instead of one LMDB row per entry.
 *
 * A run of (kind, s) is its postings, sorted by (substring value, ordinal), each a u64 LE
 * holding the value's low bits above the 40-bit ordinal, in parts of NHDB_RUN_CHUNK
 * postings, plus a directory that maps the value's top dir_bits bits to the first posting
 * of that slot. A batch commit sorts its new postings and writes them as one run, merged
 * with the newest stored runs while those are no larger than the result: run sizes at least
 * double towards the oldest, so N postings live in at most log2 N runs and each posting is
 * rewritten O(log N) times over the life of a set. Writing 1M postings this way is a sort
 * and a few large puts, where one dup-sorted LMDB row per posting cost about 110 ns each.
 * The layout is described field by field in docs/nhdb.md.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_internal.h"

/* Postings a stored run's reader copies per refill while merging. */
#define SRC_WINDOW 65536u

void nhdb_sort_bits(uint64_t *a, uint64_t *tmp, size_t n, unsigned lo, unsigned len)
{
    /* 1-3 passes of at most 12 bits (a 4096-bucket table stays in L1/L2); every pass's
     * histogram from one read of the input. Substrings are at most 32 bits. */
    enum { MAXP = 3 };
    size_t cnt[MAXP << 12];
    unsigned passes = (len + 11) / 12, digit = passes ? (len + passes - 1) / passes : 0;
    if (passes > MAXP || !n)
        return;
    memset(cnt, 0, sizeof cnt);
    unsigned sh[MAXP];
    size_t mask[MAXP];
    for (unsigned p = 0; p < passes; p++) {
        sh[p] = lo + p * digit;
        mask[p] = ((size_t)1 << (p + 1 == passes ? len - p * digit : digit)) - 1;
    }
    for (size_t i = 0; i < n; i++)
        for (unsigned p = 0; p < passes; p++)
            cnt[((size_t)p << 12) + ((a[i] >> sh[p]) & mask[p])]++;
    uint64_t *src = a, *dst = tmp;
    for (unsigned p = 0; p < passes; p++) {
        size_t *c = cnt + ((size_t)p << 12), sum = 0;
        if (c[a[0] >> sh[p] & mask[p]] == n)
            continue; /* one bucket: this digit is the same everywhere */
        for (size_t b = 0; b <= mask[p]; b++) {
            size_t x = c[b];
            c[b] = sum;
            sum += x;
        }
        for (size_t i = 0; i < n; i++)
            dst[c[(src[i] >> sh[p]) & mask[p]]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
}

typedef struct sort_many_ctx {
    uint64_t *all;
    size_t n;
    unsigned m, lo;
    const unsigned *len;
    atomic_uint next;
} sort_many_ctx;

typedef struct sort_worker {
    sort_many_ctx *ctx;
    uint64_t *tmp;
    pthread_t th;
} sort_worker;

static void *sort_many_run(void *arg)
{
    sort_worker *w = arg;
    sort_many_ctx *c = w->ctx;
    for (unsigned s; (s = atomic_fetch_add(&c->next, 1)) < c->m;)
        nhdb_sort_bits(c->all + (size_t)s * c->n, w->tmp, c->n, c->lo, c->len[s]);
    return NULL;
}

void nhdb_sort_many(uint64_t *all, uint64_t *tmp, size_t n, unsigned m, unsigned lo,
                    const unsigned *len)
{
    sort_many_ctx ctx = {.all = all, .n = n, .m = m, .lo = lo, .len = len};
    atomic_init(&ctx.next, 0);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned nt = cpus > 1 ? (unsigned)(cpus < 4 ? cpus : 4) : 1;
    if (nt > m)
        nt = m;
    if (n < 65536) /* not worth a thread */
        nt = 1;
    sort_worker w[4] = {{&ctx, tmp, 0}};
    unsigned started = 1;
    for (unsigned t = 1; t < nt; t++) {
        w[t].ctx = &ctx;
        w[t].tmp = malloc(n * sizeof *w[t].tmp);
        if (!w[t].tmp)
            break;
        if (pthread_create(&w[t].th, NULL, sort_many_run, &w[t])) {
            free(w[t].tmp);
            break;
        }
        started++;
    }
    sort_many_run(&w[0]);
    for (unsigned t = 1; t < started; t++) {
        pthread_join(w[t].th, NULL);
        free(w[t].tmp);
    }
}

/* ---- listing and mapping ---- */

static int run_header(const MDB_val *v, unsigned len, unsigned tail, uint64_t *n,
                      unsigned *dir_bits)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < NHDB_RUN_HDR || nhdb_get_le16(p) != NHDB_RUN_VERSION || p[3] != len)
        return MDB_CORRUPTED;
    *dir_bits = p[2];
    *n = nhdb_get_le64(p + 8);
    if (*dir_bits > len || len - *dir_bits > 24 || *n > NHDB_ORD_MASK + 1 ||
        v->mv_size != NHDB_RUN_HDR + (((size_t)1 << *dir_bits) + 1) * 8 + tail)
        return MDB_CORRUPTED;
    return 0;
}

int nhdb_runs_list(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, unsigned s, nhdb_run_meta **out,
                   size_t *n)
{
    MDB_cursor *c;
    nhdb_run_meta *r = NULL;
    size_t nr = 0, cap = 0;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc)
        return rc;
    uint8_t kb[NHDB_RUN_KEY];
    nhdb_run_key(kb, kid, s, 0, 0);
    MDB_val k = {NHDB_RUN_KEY, kb}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != NHDB_RUN_KEY || nhdb_get_be32(kp) != kid || kp[4] != s)
            break;
        uint32_t no = nhdb_get_be32(kp + 5);
        if (nhdb_get_be32(kp + 9) != 0 || v.mv_size < NHDB_RUN_HDR) {
            rc = MDB_CORRUPTED; /* a part without its header */
            break;
        }
        if (nr == cap) {
            cap = cap ? 2 * cap : 16;
            nhdb_run_meta *nrm = realloc(r, cap * sizeof *r);
            if (!nrm) {
                rc = -1;
                break;
            }
            r = nrm;
        }
        r[nr].no = no;
        r[nr].n = nhdb_get_le64((const uint8_t *)v.mv_data + 8);
        nr++;
        if (no == UINT32_MAX)
            break;
        nhdb_run_key(kb, kid, s, no + 1, 0);
        k.mv_size = NHDB_RUN_KEY;
        k.mv_data = kb;
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    if (rc) {
        free(r);
        return rc;
    }
    *out = r;
    *n = nr;
    return 0;
}

void nhdb_runs_unmap(nhdb_run_view *views, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(views[i].part);
    free(views);
}

int nhdb_runs_map(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, unsigned s, unsigned len,
                  unsigned tail, nhdb_run_view **views, size_t *n)
{
    nhdb_run_meta *meta;
    size_t nr;
    int rc = nhdb_runs_list(txn, dbi, kid, s, &meta, &nr);
    if (rc)
        return rc;
    nhdb_run_view *vw = calloc(nr + 1, sizeof *vw);
    if (!vw) {
        free(meta);
        return -1;
    }
    for (size_t i = 0; i < nr && !rc; i++) {
        uint8_t kb[NHDB_RUN_KEY];
        nhdb_run_key(kb, kid, s, meta[i].no, 0);
        MDB_val k = {NHDB_RUN_KEY, kb}, v;
        if ((rc = mdb_get(txn, dbi, &k, &v)) ||
            (rc = run_header(&v, len, tail, &vw[i].n, &vw[i].dir_bits)))
            break;
        vw[i].low_bits = len - vw[i].dir_bits;
        vw[i].dir = (const uint8_t *)v.mv_data + NHDB_RUN_HDR;
        if (nhdb_get_le64(vw[i].dir) != 0 ||
            nhdb_get_le64(vw[i].dir + ((size_t)1 << vw[i].dir_bits) * 8) != vw[i].n) {
            rc = MDB_CORRUPTED;
            break;
        }
        size_t np = (size_t)((vw[i].n + NHDB_RUN_CHUNK - 1) >> NHDB_RUN_CHUNK_SHIFT);
        vw[i].part = calloc(np + 1, sizeof *vw[i].part);
        if (!vw[i].part) {
            rc = -1;
            break;
        }
        for (size_t p = 0; p < np; p++) {
            uint64_t want = vw[i].n - ((uint64_t)p << NHDB_RUN_CHUNK_SHIFT);
            if (want > NHDB_RUN_CHUNK)
                want = NHDB_RUN_CHUNK;
            nhdb_run_key(kb, kid, s, meta[i].no, (uint32_t)p + 1);
            k.mv_size = NHDB_RUN_KEY;
            k.mv_data = kb;
            if ((rc = mdb_get(txn, dbi, &k, &v)))
                break;
            if (v.mv_size != want * 8 + tail) {
                rc = MDB_CORRUPTED;
                break;
            }
            vw[i].part[p] = v.mv_data;
        }
    }
    free(meta);
    if (rc) {
        nhdb_runs_unmap(vw, nr);
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    }
    *views = vw;
    *n = nr;
    return 0;
}

size_t nhdb_runs_lookup(const nhdb_run_view *v, size_t nv, uint32_t val, uint64_t *ords,
                        size_t cap)
{
    size_t found = 0;
    for (size_t r = 0; r < nv; r++) {
        uint64_t i, end;
        if (nhdb_run_find(&v[r], val, &i, &end))
            return SIZE_MAX;
        for (; i < end; i++, found++)
            if (found < cap)
                ords[found] = nhdb_run_posting(&v[r], i) & NHDB_ORD_MASK;
    }
    return found;
}

/* ---- writing ---- */

typedef struct run_writer {
    MDB_txn *txn;
    MDB_dbi dbi;
    uint32_t kid, no, part;
    unsigned s, len, dir_bits, low_bits, tail;
    uint64_t n, i, slot;
    uint64_t *dir;
    uint8_t *buf; /* the part being filled */
    size_t in_buf;
} run_writer;

static int writer_begin(run_writer *w, MDB_txn *txn, MDB_dbi dbi, uint32_t kid, unsigned s,
                        unsigned len, unsigned tail, uint32_t no, uint64_t n)
{
    memset(w, 0, sizeof *w);
    w->tail = tail;
    w->txn = txn;
    w->dbi = dbi;
    w->kid = kid;
    w->s = s;
    w->len = len;
    w->no = no;
    w->n = n;
    w->dir_bits = nhdb_run_dir_bits(n, len);
    w->low_bits = len - w->dir_bits;
    w->dir = malloc((((size_t)1 << w->dir_bits) + 1) * 8 + NHDB_RUN_HDR);
    w->buf = malloc((size_t)(n < NHDB_RUN_CHUNK ? n : NHDB_RUN_CHUNK) * 8 + 8);
    return w->dir && w->buf ? 0 : -1;
}

static void writer_free(run_writer *w)
{
    free(w->dir);
    free(w->buf);
    w->dir = NULL;
    w->buf = NULL;
}

static int writer_flush(run_writer *w)
{
    if (!w->in_buf)
        return 0;
    uint8_t kb[NHDB_RUN_KEY];
    nhdb_run_key(kb, w->kid, w->s, w->no, ++w->part);
    MDB_val k = {NHDB_RUN_KEY, kb}, v = {w->in_buf * 8 + w->tail, NULL};
    int rc = mdb_put(w->txn, w->dbi, &k, &v, MDB_RESERVE);
    if (rc)
        return rc;
    memcpy(v.mv_data, w->buf, w->in_buf * 8);
    if (w->tail)
        nhdb_seal(&k, &v);
    w->in_buf = 0;
    return 0;
}

static inline int writer_push(run_writer *w, uint32_t val, uint64_t ord)
{
    uint64_t slot = (uint64_t)val >> w->low_bits;
    while (w->slot <= slot)
        w->dir[w->slot++] = w->i;
    uint64_t low = w->low_bits ? val & ((UINT64_C(1) << w->low_bits) - 1) : 0;
    nhdb_put_le64(w->buf + w->in_buf * 8, low << NHDB_ORD_BITS | ord);
    w->i++;
    if (++w->in_buf == NHDB_RUN_CHUNK)
        return writer_flush(w);
    return 0;
}

static int writer_end(run_writer *w)
{
    int rc = writer_flush(w);
    if (rc)
        return rc;
    if (w->i != w->n)
        return MDB_CORRUPTED; /* the sources held fewer postings than their headers said */
    size_t slots = (size_t)1 << w->dir_bits;
    while (w->slot <= slots)
        w->dir[w->slot++] = w->n;
    uint8_t kb[NHDB_RUN_KEY];
    nhdb_run_key(kb, w->kid, w->s, w->no, 0);
    MDB_val k = {NHDB_RUN_KEY, kb}, v = {NHDB_RUN_HDR + (slots + 1) * 8 + w->tail, NULL};
    if ((rc = mdb_put(w->txn, w->dbi, &k, &v, MDB_RESERVE)))
        return rc;
    uint8_t *p = v.mv_data;
    memset(p, 0, NHDB_RUN_HDR);
    nhdb_put_le16(p, NHDB_RUN_VERSION);
    p[2] = (uint8_t)w->dir_bits;
    p[3] = (uint8_t)w->len;
    nhdb_put_le64(p + 8, w->n);
    for (size_t i = 0; i <= slots; i++)
        nhdb_put_le64(p + NHDB_RUN_HDR + i * 8, w->dir[i]);
    if (w->tail)
        nhdb_seal(&k, &v);
    return 0;
}

/* A stored run read in order while merging: its directory copied, its postings copied a
 * window at a time (pointers into a write transaction's pages do not survive later puts). */
typedef struct run_src {
    uint32_t no;
    uint64_t n, i, slot;
    uint32_t hv; /* value and ordinal of posting i (the merge's head) */
    uint64_t ho;
    unsigned dir_bits, low_bits, tail;
    uint64_t *dir;
    uint64_t *win;
    uint64_t win_start, win_n;
} run_src;

static int src_open(run_src *r, MDB_txn *txn, MDB_dbi dbi, uint32_t kid, unsigned s,
                    unsigned len, unsigned tail, uint32_t no)
{
    memset(r, 0, sizeof *r);
    r->no = no;
    r->tail = tail;
    uint8_t kb[NHDB_RUN_KEY];
    nhdb_run_key(kb, kid, s, no, 0);
    MDB_val k = {NHDB_RUN_KEY, kb}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc || (rc = run_header(&v, len, tail, &r->n, &r->dir_bits)))
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    /* A merge rewrites what it reads under a new checksum: a damaged run is refused here
     * rather than passed on as good. */
    if (tail && !nhdb_sum_ok(&k, &v))
        return MDB_CORRUPTED;
    r->low_bits = len - r->dir_bits;
    size_t slots = (size_t)1 << r->dir_bits;
    r->dir = malloc((slots + 1) * sizeof *r->dir);
    r->win = malloc(SRC_WINDOW * sizeof *r->win);
    if (!r->dir || !r->win)
        return -1;
    const uint8_t *d = (const uint8_t *)v.mv_data + NHDB_RUN_HDR;
    for (size_t i = 0; i <= slots; i++)
        r->dir[i] = nhdb_get_le64(d + 8 * i);
    if (r->dir[0] != 0 || r->dir[slots] != r->n)
        return MDB_CORRUPTED;
    return 0;
}

static void src_close(run_src *r)
{
    free(r->dir);
    free(r->win);
}

/* The posting at r->i into the window. MDB rc. */
static int src_fill(run_src *r, MDB_txn *txn, MDB_dbi dbi, uint32_t kid, unsigned s)
{
    uint64_t part = r->i >> NHDB_RUN_CHUNK_SHIFT, off = r->i & (NHDB_RUN_CHUNK - 1);
    uint8_t kb[NHDB_RUN_KEY];
    nhdb_run_key(kb, kid, s, r->no, (uint32_t)part + 1);
    MDB_val k = {NHDB_RUN_KEY, kb}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    if (v.mv_size < r->tail || (v.mv_size - r->tail) % 8)
        return MDB_CORRUPTED;
    uint64_t have = (v.mv_size - r->tail) / 8;
    if (off >= have || (r->tail && off == 0 && !nhdb_sum_ok(&k, &v)))
        return MDB_CORRUPTED; /* a part is read from its start first: checked once */
    uint64_t take = have - off < SRC_WINDOW ? have - off : SRC_WINDOW;
    const uint8_t *p = (const uint8_t *)v.mv_data + off * 8;
    for (uint64_t j = 0; j < take; j++)
        r->win[j] = nhdb_get_le64(p + 8 * j);
    r->win_start = r->i;
    r->win_n = take;
    return 0;
}

/* Value and ordinal of the posting at r->i (r->i < r->n). */
static int src_peek(run_src *r, MDB_txn *txn, MDB_dbi dbi, uint32_t kid, unsigned s,
                    uint32_t *val, uint64_t *ord)
{
    if (r->i < r->win_start || r->i >= r->win_start + r->win_n) {
        int rc = src_fill(r, txn, dbi, kid, s);
        if (rc)
            return rc;
    }
    size_t slots = (size_t)1 << r->dir_bits;
    while (r->slot < slots && r->dir[r->slot + 1] <= r->i)
        r->slot++;
    uint64_t p = r->win[r->i - r->win_start];
    *val = (uint32_t)(r->slot << r->low_bits | p >> NHDB_ORD_BITS);
    *ord = p & NHDB_ORD_MASK;
    return 0;
}

static int run_delete(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, unsigned s, uint32_t no)
{
    uint8_t kb[NHDB_RUN_KEY];
    for (;;) {
        nhdb_run_key(kb, kid, s, no, 0);
        MDB_val k = {NHDB_RUN_KEY, kb}, v;
        MDB_cursor *c;
        int rc = mdb_cursor_open(txn, dbi, &c);
        if (rc)
            return rc;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        int ours = rc == 0 && k.mv_size == NHDB_RUN_KEY && memcmp(k.mv_data, kb, 9) == 0;
        if (ours)
            rc = mdb_cursor_del(c, 0);
        mdb_cursor_close(c);
        if (rc == MDB_NOTFOUND || (rc == 0 && !ours))
            return 0;
        if (rc)
            return rc;
    }
}

int nhdb_runs_add(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, unsigned s, unsigned len,
                  unsigned tail, const uint64_t *a, size_t n, uint64_t first)
{
    nhdb_run_meta *meta;
    size_t nr;
    int rc = nhdb_runs_list(txn, dbi, kid, s, &meta, &nr);
    if (rc)
        return rc;
    /* Merge with the newest runs while they are no larger than what has been gathered. */
    uint64_t total = n;
    size_t t = 0;
    while (t < nr && meta[nr - 1 - t].n <= total) {
        total += meta[nr - 1 - t].n;
        t++;
    }
    uint32_t no = nr ? meta[nr - 1].no + 1 : 0;
    if (nr && no == 0) {
        free(meta);
        return MDB_CORRUPTED; /* 2^32 runs written: cannot happen before the ordinals run out */
    }
    run_writer w = {0};
    run_src *src = calloc(t + 1, sizeof *src);
    if (!src || writer_begin(&w, txn, dbi, kid, s, len, tail, no, total)) {
        free(src);
        writer_free(&w);
        free(meta);
        return -1;
    }
    for (size_t j = 0; j < t && !rc; j++)
        rc = src_open(&src[j], txn, dbi, kid, s, len, tail, meta[nr - t + j].no);
    if (t == 0) {
        for (size_t j = 0; j < n && !rc; j++)
            rc = writer_push(&w, (uint32_t)(a[j] >> 32), first + (a[j] & 0xffffffffu));
    } else {
        /* k-way merge by (value, ordinal) over each source's head; the batch's ordinals
         * exceed every stored one. */
        size_t ai = 0;
        for (size_t j = 0; j < t && !rc; j++)
            if (src[j].n)
                rc = src_peek(&src[j], txn, dbi, kid, s, &src[j].hv, &src[j].ho);
        while (!rc) {
            uint32_t bv = 0;
            uint64_t bo = 0;
            int best = -2; /* -1: the batch, j: stored run j */
            if (ai < n) {
                bv = (uint32_t)(a[ai] >> 32);
                bo = first + (a[ai] & 0xffffffffu);
                best = -1;
            }
            for (size_t j = 0; j < t; j++)
                if (src[j].i < src[j].n &&
                    (best == -2 || src[j].hv < bv || (src[j].hv == bv && src[j].ho < bo))) {
                    bv = src[j].hv;
                    bo = src[j].ho;
                    best = (int)j;
                }
            if (best == -2)
                break;
            if (best == -1)
                ai++;
            else if (++src[best].i < src[best].n)
                rc = src_peek(&src[best], txn, dbi, kid, s, &src[best].hv, &src[best].ho);
            if (!rc)
                rc = writer_push(&w, bv, bo);
        }
    }
    if (!rc)
        rc = writer_end(&w);
    for (size_t j = 0; j < t && !rc; j++)
        rc = run_delete(txn, dbi, kid, s, src[j].no);
    for (size_t j = 0; j < t; j++)
        src_close(&src[j]);
    free(src);
    writer_free(&w);
    free(meta);
    return rc;
}
