/*
 * libnhdb searching: read snapshots, multi-index hashing and the packed-array scan.
 *
 * Multi-index hashing (Norouzi, Punjani, Fleet, "Fast Exact Search in Hamming Space with
 * Multi-Index Hashing", TPAMI 2014): a b-bit hash is cut into m disjoint substrings. If two
 * hashes differ in at most r bits, then with r = m*q + a (0 <= a < m) some substring among
 * the first a+1 differs in at most q bits or some among the rest in at most q-1 bits (else
 * the total would be at least (a+1)(q+1) + (m-a-1)q = r+1). So a radius-r search probes, in
 * substring table s, every value within q (s <= a) or q-1 (s > a) bits of the query's
 * substring, and verifies each candidate by its full distance. A candidate seen through an
 * earlier substring j is recognised by its substring-j distance being within j's probe
 * radius, so no visited set is needed. Candidates' hashes come from the packed array by
 * ordinal, so verification is one memory access.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

struct nh_db_reader {
    nh_db *db;
    MDB_txn *txn;
    MDB_cursor *digest;
    nhdb_kind_info *kinds;
    size_t nk;
    nh_db_match *res;
    size_t n_res, cap_res;
    nh_db_query_info info;
    uint32_t *probe; /* substring values to probe */
    size_t cap_probe;
    /* measured / modelled time of this reader's searches (see calibrate()) */
    double scale_scan, scale_mih;
};

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__)
#define NHDB_HOT __attribute__((target_clones("popcnt", "default")))
#else
#define NHDB_HOT
#endif

static inline unsigned hdist(const uint8_t *a, const uint8_t *b, unsigned hb)
{
    unsigned d = 0, i = 0;
    for (; i + 8 <= hb; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        d += (unsigned)__builtin_popcountll(x ^ y);
    }
    for (; i + 4 <= hb; i += 4) {
        uint32_t x, y;
        memcpy(&x, a + i, 4);
        memcpy(&y, b + i, 4);
        d += (unsigned)__builtin_popcount(x ^ y);
    }
    for (; i < hb; i++) /* neural widths that are not a multiple of 32 bits */
        d += (unsigned)__builtin_popcount((unsigned)(a[i] ^ b[i]));
    return d;
}

/* ---- snapshot ---- */

static void reader_release(nh_db_reader *rd)
{
    if (rd->digest)
        mdb_cursor_close(rd->digest);
    rd->digest = NULL;
    if (rd->txn)
        mdb_txn_abort(rd->txn);
    rd->txn = NULL;
    for (size_t i = 0; i < rd->nk; i++) {
        free(rd->kinds[i].chunks);
        free(rd->kinds[i].occ);
        free(rd->kinds[i].occ_loaded);
        if (rd->kinds[i].run_off)
            nhdb_runs_unmap(rd->kinds[i].runs, rd->kinds[i].run_off[rd->kinds[i].m]);
        free(rd->kinds[i].run_off);
    }
    free(rd->kinds);
    rd->kinds = NULL;
    rd->nk = 0;
}

static nh_status reader_acquire(nh_db_reader *rd, nh_error *err)
{
    nh_db *db = rd->db;
    int rc = nhdb_txn_begin(db, MDB_RDONLY, &rd->txn);
    if (rc)
        return nhdb_mdb_error(err, rc, db->path, "begin read");
    if ((rc = mdb_cursor_open(rd->txn, db->dbi_digest, &rd->digest))) {
        reader_release(rd);
        return nhdb_mdb_error(err, rc, db->path, "open cursors");
    }
    nh_status st = nhdb_kinds_load(db, rd->txn, &rd->kinds, &rd->nk, err);
    if (st)
        reader_release(rd);
    return st;
}

nh_status nh_db_reader_create(nh_db *db, nh_db_reader **out, nh_error *err)
{
    nh_db_reader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "reader");
    rd->scale_scan = rd->scale_mih = 1.0;
    rd->db = db;
    nh_status st = reader_acquire(rd, err);
    if (st) {
        free(rd);
        return st;
    }
    db->live_readers++;
    *out = rd;
    return NH_OK;
}

nh_status nh_db_reader_refresh(nh_db_reader *rd, nh_error *err)
{
    reader_release(rd);
    return reader_acquire(rd, err);
}

void nh_db_reader_destroy(nh_db_reader *rd)
{
    if (!rd)
        return;
    reader_release(rd);
    rd->db->live_readers--;
    free(rd->res);
    free(rd->probe);
    free(rd);
}

static nhdb_kind_info *reader_kind(nh_db_reader *rd, const nh_kind *kind)
{
    for (size_t i = 0; i < rd->nk; i++)
        if (nh_kind_equal(&rd->kinds[i].kind, kind))
            return &rd->kinds[i];
    return NULL;
}

static nhdb_kind_info *reader_kind_id(nh_db_reader *rd, uint32_t id)
{
    for (size_t i = 0; i < rd->nk; i++)
        if (rd->kinds[i].id == id)
            return &rd->kinds[i];
    return NULL;
}

uint64_t nh_db_reader_kind_count(nh_db_reader *rd, const nh_kind *kind)
{
    nhdb_kind_info *k = reader_kind(rd, kind);
    return k ? k->count : 0;
}

size_t nh_db_reader_kinds(nh_db_reader *rd, nh_db_kind_stats *out, size_t cap)
{
    for (size_t i = 0; i < rd->nk && i < cap; i++) {
        out[i].kind = rd->kinds[i].kind;
        out[i].kind_id = rd->kinds[i].id;
        out[i].bits = rd->kinds[i].bits;
        out[i].substrings = rd->kinds[i].m;
        out[i].count = rd->kinds[i].count;
    }
    return rd->nk;
}

static nh_status load_chunks(nh_db_reader *rd, nhdb_kind_info *k, nh_error *err)
{
    if (k->chunks_loaded)
        return NH_OK;
    size_t nc = (size_t)((k->count + NHDB_CHUNK - 1) >> NHDB_CHUNK_SHIFT);
    k->chunks = calloc(nc + 1, sizeof *k->chunks);
    if (!k->chunks)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, rd->db->path, "chunks");
    for (size_t c = 0; c < nc; c++) {
        uint8_t kb[8];
        nhdb_put_be32(kb, k->id);
        nhdb_put_be32(kb + 4, (uint32_t)c);
        MDB_val key = {8, kb}, v;
        int rc = mdb_get(rd->txn, rd->db->dbi_packed, &key, &v);
        uint64_t want = k->count - ((uint64_t)c << NHDB_CHUNK_SHIFT);
        if (want > NHDB_CHUNK)
            want = NHDB_CHUNK;
        if (rc || v.mv_size != want * k->hb + rd->db->tail) {
            free(k->chunks);
            k->chunks = NULL;
            return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_MDB, rc, rd->db->path,
                                "packed chunk %zu of kind %u missing or wrong size", c, k->id);
        }
        k->chunks[c] = v.mv_data;
    }
    k->n_chunks = nc;
    unsigned maxlen = 0;
    for (unsigned s = 0; s < k->m; s++)
        if (nhdb_occ_eligible(nhdb_sub_len(k->bits, k->m, s)) &&
            nhdb_sub_len(k->bits, k->m, s) > maxlen)
            maxlen = nhdb_sub_len(k->bits, k->m, s);
    if (maxlen) {
        k->occ_cps = (size_t)1 << (maxlen - NHDB_OCC_SHIFT);
        k->occ = calloc(k->m * k->occ_cps, sizeof *k->occ);
        k->occ_loaded = calloc(k->m * k->occ_cps, 1);
        if (!k->occ || !k->occ_loaded) {
            free(k->chunks);
            k->chunks = NULL;
            return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, rd->db->path, "occupancy");
        }
    }
    /* The MIH runs of every substring, one array: runs[run_off[s] .. run_off[s+1]). */
    if (k->m) {
        k->run_off = calloc(k->m + 1, sizeof *k->run_off);
        if (!k->run_off)
            return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, rd->db->path, "runs");
        for (unsigned s = 0; s < k->m; s++) {
            nhdb_run_view *v;
            size_t nv;
            int rc = nhdb_runs_map(rd->txn, rd->db->dbi_mih, k->id, s,
                                   nhdb_sub_len(k->bits, k->m, s), rd->db->tail, &v, &nv);
            nhdb_run_view *all = rc ? NULL : realloc(k->runs, (k->run_off[s] + nv + 1) * sizeof *all);
            if (!all) {
                if (!rc)
                    nhdb_runs_unmap(v, nv);
                nhdb_runs_unmap(k->runs, k->run_off[s]);
                free(k->run_off);
                free(k->chunks);
                free(k->occ);
                free(k->occ_loaded);
                k->runs = NULL;
                k->run_off = NULL;
                k->chunks = NULL;
                k->occ = NULL;
                k->occ_loaded = NULL;
                k->occ_cps = 0;
                return rc == -1 || !rc
                           ? nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, rd->db->path, "runs")
                           : nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_MDB, rc, rd->db->path,
                                          "MIH runs of kind %u substring %u unreadable: %s",
                                          k->id, s, mdb_strerror(rc));
            }
            k->runs = all;
            memcpy(k->runs + k->run_off[s], v, nv * sizeof *v);
            free(v); /* the views' part arrays now belong to k->runs */
            k->run_off[s + 1] = k->run_off[s] + nv;
        }
    }
    k->chunks_loaded = 1;
    return NH_OK;
}

nh_status nh_db_reader_get(nh_db_reader *rd, uint64_t id, nh_db_record *out, nh_error *err)
{
    uint8_t kb[8];
    nhdb_put_be64(kb, id);
    MDB_val k = {8, kb}, v;
    int rc = mdb_get(rd->txn, rd->db->dbi_entries, &k, &v);
    if (rc == MDB_NOTFOUND)
        return nh_error_set(err, NH_ERR_NOT_FOUND, NH_FOREIGN_MDB, rc, rd->db->path,
                            "no entry %016llx", (unsigned long long)id);
    if (rc)
        return nhdb_mdb_error(err, rc, rd->db->path, "read entry");
    nhdb_kind_info *ki = reader_kind_id(rd, (uint32_t)(id >> NHDB_ORD_BITS));
    if (nhdb_rec_decode(&k, &v, rd->db->tail, out) || !ki)
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, rd->db->path,
                            "corrupt entry %016llx (it does not decode or fails its checksum)",
                            (unsigned long long)id);
    out->kind = ki->kind;
    return NH_OK;
}

nh_status nh_db_reader_foreach(nh_db_reader *rd, const nh_kind *kind, nh_db_record_fn fn,
                               void *ctx, nh_error *err)
{
    nh_status st = NH_OK;
    MDB_cursor *c = NULL;
    uint8_t kb[8];
    uint32_t only = 0;
    if (kind) {
        nhdb_kind_info *ki = reader_kind(rd, kind);
        if (!ki)
            return NH_OK;
        only = ki->id;
    }
    int rc = mdb_cursor_open(rd->txn, rd->db->dbi_entries, &c);
    if (rc)
        return nhdb_mdb_error(err, rc, rd->db->path, "entries cursor");
    nhdb_put_be64(kb, (uint64_t)only << NHDB_ORD_BITS);
    MDB_val k = {8, kb}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        nh_db_record r;
        if (nhdb_rec_decode(&k, &v, rd->db->tail, &r)) {
            st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, rd->db->path,
                              "corrupt entry record %016llx (it does not decode or fails its "
                              "checksum)",
                              k.mv_size == 8 ? (unsigned long long)nhdb_get_be64(k.mv_data) : 0ull);
            goto cleanup;
        }
        uint32_t kid = (uint32_t)(r.id >> NHDB_ORD_BITS);
        if (kind && kid != only) {
            rc = MDB_NOTFOUND; /* past this kind's entries: the walk is complete */
            break;
        }
        nhdb_kind_info *ki = reader_kind_id(rd, kid);
        if (!ki) {
            st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, rd->db->path,
                              "entry of unknown kind %u", kid);
            goto cleanup;
        }
        r.kind = ki->kind;
        if (fn(ctx, &r)) {
            st = NH_ERR_INTERRUPTED;
            goto cleanup;
        }
    }
    if (rc != MDB_NOTFOUND)
        st = nhdb_mdb_error(err, rc, rd->db->path, "walk entries");
cleanup:
    mdb_cursor_close(c);
    return st;
}

/* ---- search ---- */

static int res_push(nh_db_reader *rd, uint64_t id, unsigned d)
{
    if (rd->n_res == rd->cap_res) {
        size_t cap = rd->cap_res ? rd->cap_res * 2 : 256;
        nh_db_match *nr = realloc(rd->res, cap * sizeof *nr);
        if (!nr)
            return -1;
        rd->res = nr;
        rd->cap_res = cap;
    }
    rd->res[rd->n_res].id = id;
    rd->res[rd->n_res].distance = d;
    rd->n_res++;
    return 0;
}

static int match_cmp(const void *a, const void *b)
{
    const nh_db_match *x = a, *y = b;
    if (x->distance != y->distance)
        return x->distance < y->distance ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* All ordinals within r of q, by scanning the packed chunks. */
NHDB_HOT static int scan_radius(nh_db_reader *rd, const nhdb_kind_info *k, const uint8_t *q,
                                unsigned r)
{
    uint64_t base = (uint64_t)k->id << NHDB_ORD_BITS;
    unsigned hb = k->hb;
    for (size_t c = 0; c < k->n_chunks; c++) {
        uint64_t c0 = (uint64_t)c << NHDB_CHUNK_SHIFT;
        uint64_t n = k->count - c0 < NHDB_CHUNK ? k->count - c0 : NHDB_CHUNK;
        const uint8_t *h = k->chunks[c];
        if (hb == 12) {
            uint64_t q0;
            uint32_t q1;
            memcpy(&q0, q, 8);
            memcpy(&q1, q + 8, 4);
            for (uint64_t i = 0; i < n; i++, h += 12) {
                uint64_t x0;
                uint32_t x1;
                memcpy(&x0, h, 8);
                memcpy(&x1, h + 8, 4);
                unsigned d =
                    (unsigned)__builtin_popcountll(x0 ^ q0) + (unsigned)__builtin_popcount(x1 ^ q1);
                if (d <= r && res_push(rd, base | (c0 + i), d))
                    return -1;
            }
        } else if (hb == 32) {
            uint64_t qw[4];
            memcpy(qw, q, 32);
            for (uint64_t i = 0; i < n; i++, h += 32) {
                uint64_t x[4];
                memcpy(x, h, 32);
                unsigned d = (unsigned)(__builtin_popcountll(x[0] ^ qw[0]) +
                                        __builtin_popcountll(x[1] ^ qw[1]) +
                                        __builtin_popcountll(x[2] ^ qw[2]) +
                                        __builtin_popcountll(x[3] ^ qw[3]));
                if (d <= r && res_push(rd, base | (c0 + i), d))
                    return -1;
            }
        } else {
            for (uint64_t i = 0; i < n; i++, h += hb) {
                unsigned d = hdist(h, q, hb);
                if (d <= r && res_push(rd, base | (c0 + i), d))
                    return -1;
            }
        }
    }
    return 0;
}

typedef struct heap {
    nh_db_match *a;
    size_t n, k;
} heap;

static int worse(const nh_db_match *x, const nh_db_match *y)
{
    return x->distance != y->distance ? x->distance > y->distance : x->id > y->id;
}

static void heap_offer(heap *h, uint64_t id, unsigned d)
{
    nh_db_match m = {id, d};
    size_t i;
    if (h->n < h->k) {
        i = h->n++;
        while (i > 0 && worse(&m, &h->a[(i - 1) / 2])) {
            h->a[i] = h->a[(i - 1) / 2];
            i = (i - 1) / 2;
        }
        h->a[i] = m;
        return;
    }
    if (!worse(&h->a[0], &m))
        return;
    i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, big = i;
        const nh_db_match *bm = &m;
        if (l < h->n && worse(&h->a[l], bm)) {
            big = l;
            bm = &h->a[l];
        }
        if (r < h->n && worse(&h->a[r], bm))
            big = r;
        if (big == i)
            break;
        h->a[i] = h->a[big];
        i = big;
    }
    h->a[i] = m;
}

/* The k nearest within cap, by scanning. */
NHDB_HOT static int scan_knn(nh_db_reader *rd, const nhdb_kind_info *k, const uint8_t *q,
                             unsigned kk, unsigned cap)
{
    heap h = {malloc(kk * sizeof(nh_db_match)), 0, kk};
    if (!h.a)
        return -1;
    uint64_t base = (uint64_t)k->id << NHDB_ORD_BITS;
    for (size_t c = 0; c < k->n_chunks; c++) {
        uint64_t c0 = (uint64_t)c << NHDB_CHUNK_SHIFT;
        uint64_t n = k->count - c0 < NHDB_CHUNK ? k->count - c0 : NHDB_CHUNK;
        const uint8_t *hp = k->chunks[c];
        for (uint64_t i = 0; i < n; i++, hp += k->hb) {
            unsigned d = hdist(hp, q, k->hb);
            if (d <= cap)
                heap_offer(&h, base | (c0 + i), d);
        }
    }
    int rc = 0;
    for (size_t i = 0; i < h.n && !rc; i++)
        rc = res_push(rd, h.a[i].id, h.a[i].distance);
    free(h.a);
    return rc;
}

static double binom(unsigned n, unsigned k)
{
    double r = 1;
    for (unsigned i = 1; i <= k; i++)
        r = r * (n - k + i) / i;
    return r;
}

/* Probe radius of substring s for a radius-r search (-1: not probed). */
static int sub_radius(unsigned r, unsigned m, unsigned s)
{
    int q = (int)(r / m), a = (int)(r % m);
    return (int)s <= a ? q : q - 1;
}

/* Cost model in nanoseconds, measured on a 10M-entry set: a present value's lookup in one
 * MIH run, an occupancy-bitmap test, a random candidate check, a scanned byte. */
#define COST_PROBE 150.0
#define COST_BITMAP 20.0
#define COST_CAND 150.0
#define COST_SCAN_BYTE 0.07

static double cost_mih(const nhdb_kind_info *k, unsigned r, double *cands)
{
    double cost = 0, c = 0;
    for (unsigned s = 0; s < k->m; s++) {
        int rs = sub_radius(r, k->m, s);
        unsigned len = nhdb_sub_len(k->bits, k->m, s);
        double p = 0;
        for (int i = 0; i <= rs && i <= (int)len; i++)
            p += binom(len, (unsigned)i);
        double space = (double)(UINT64_C(1) << len);
        double runs = k->run_off ? (double)(k->run_off[s + 1] - k->run_off[s]) : 1;
        double frac = p / space;
        c += (double)k->count * (frac > 1 ? 1 : frac);
        /* with a bitmap only present values cost a lookup: uniform occupancy 1 - e^(-n/2^len) */
        if (nhdb_occ_eligible(len))
            cost += p * (COST_BITMAP + runs * COST_PROBE * -expm1(-(double)k->count / space));
        else
            cost += p * runs * COST_PROBE;
    }
    if (cands)
        *cands = c;
    return cost + c * COST_CAND;
}

static double cost_scan(const nhdb_kind_info *k)
{
    return (double)k->count * k->hb * COST_SCAN_BYTE;
}

/* The constants above were measured on one machine; scans in particular run 2x slower where
 * the packed array does not fit in the cache. Each reader keeps, per method, a running ratio
 * of measured to modelled time (searches modelled at 50 us or more, so the clock's
 * resolution does not matter), and the planner compares the scaled costs. */
static void calibrate(double *scale, double modelled_ns, double t0)
{
    if (modelled_ns < 50e3)
        return;
    double r = (nh_time_now() - t0) * 1e9 / modelled_ns;
    r = r < 0.1 ? 0.1 : r > 10 ? 10 : r;
    *scale = 0.75 * *scale + 0.25 * r;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Look up one substring value and verify its ids. 0, 1 (budget spent), -1 (memory), MDB rc. */
NHDB_HOT static int mih_probe(nh_db_reader *rd, nhdb_kind_info *k, const uint8_t *q, unsigned r,
                              unsigned s, const int *rad, const unsigned *st, const unsigned *len,
                              const uint32_t *qs, uint32_t val, uint64_t budget)
{
    unsigned hb = k->hb;
    if (k->occ_cps && nhdb_occ_eligible(len[s])) {
        size_t ci = s * k->occ_cps + (val >> NHDB_OCC_SHIFT);
        if (!k->occ_loaded[ci]) {
            uint8_t okb[9];
            nhdb_occ_key(okb, k->id, s, val >> NHDB_OCC_SHIFT);
            MDB_val okey = {9, okb}, ov;
            int rc = mdb_get(rd->txn, rd->db->dbi_occ, &okey, &ov);
            if (rc && rc != MDB_NOTFOUND)
                return rc;
            if (rc == 0 && ov.mv_size != NHDB_OCC_BYTES + rd->db->tail)
                return MDB_CORRUPTED;
            k->occ[ci] = rc ? NULL : ov.mv_data;
            k->occ_loaded[ci] = 1;
        }
        uint32_t bit = val & ((1u << NHDB_OCC_SHIFT) - 1);
        if (!k->occ[ci] || !(k->occ[ci][bit >> 3] & (0x80 >> (bit & 7))))
            return 0;
    }
    for (size_t ri = k->run_off[s]; ri < k->run_off[s + 1]; ri++) {
        const nhdb_run_view *rv = &k->runs[ri];
        uint64_t i, end;
        if (nhdb_run_find(rv, val, &i, &end))
            return MDB_CORRUPTED;
        rd->info.probes++;
        for (; i < end; i++) {
            uint64_t p = nhdb_run_posting(rv, i);
            uint64_t ord = p & NHDB_ORD_MASK;
            if (ord >= k->count)
                return MDB_CORRUPTED;
            if (++rd->info.candidates > budget)
                return 1;
            const uint8_t *h = k->chunks[ord >> NHDB_CHUNK_SHIFT] + (ord & (NHDB_CHUNK - 1)) * hb;
            unsigned d = hdist(h, q, hb);
            if (d > r)
                continue;
            int seen = 0;
            for (unsigned t = 0; t < s && !seen; t++)
                if (rad[t] >= 0 &&
                    __builtin_popcount(nhdb_sub_extract(h, st[t], len[t]) ^ qs[t]) <= rad[t])
                    seen = 1;
            if (!seen && res_push(rd, ((uint64_t)k->id << NHDB_ORD_BITS) | ord, d))
                return -1;
        }
    }
    return 0;
}

/* Returns 0, 1 when the candidate budget ran out, -1 on allocation failure, or an MDB rc. */
NHDB_HOT static int mih_radius(nh_db_reader *rd, nhdb_kind_info *k, const uint8_t *q, unsigned r,
                               uint64_t budget)
{
    unsigned m = k->m;
    int rad[64];
    unsigned st[64], len[64];
    uint32_t qs[64];
    for (unsigned s = 0; s < m; s++) {
        rad[s] = sub_radius(r, m, s);
        st[s] = nhdb_sub_start(k->bits, m, s);
        len[s] = nhdb_sub_len(k->bits, m, s);
        qs[s] = nhdb_sub_extract(q, st[s], len[s]);
    }
    for (unsigned s = 0; s < m; s++) {
        if (rad[s] < 0)
            continue;
        /* The substring values to probe, in key order where few enough: LMDB resolves a key
         * on the cursor's current leaf page without descending from the root. */
        size_t np = 0;
        int sorted = 1;
        uint64_t lim = UINT64_C(1) << len[s];
        for (int i = 0; i <= rad[s] && i <= (int)len[s]; i++) {
            uint64_t mask = i == 0 ? 0 : (UINT64_C(1) << i) - 1;
            while (mask < lim) {
                if (np == rd->cap_probe) {
                    if (rd->cap_probe >= ((size_t)1 << 16)) {
                        sorted = 0;
                        break;
                    }
                    size_t cap = rd->cap_probe ? rd->cap_probe * 2 : 4096;
                    uint32_t *nv = realloc(rd->probe, cap * sizeof *nv);
                    if (!nv)
                        return -1;
                    rd->probe = nv;
                    rd->cap_probe = cap;
                }
                rd->probe[np++] = qs[s] ^ (uint32_t)mask;
                if (i == 0)
                    break;
                uint64_t c = mask & (~mask + 1), nx = mask + c;
                mask = (((nx ^ mask) >> 2) / c) | nx;
            }
            if (!sorted)
                break;
        }
        if (sorted) {
            qsort(rd->probe, np, sizeof *rd->probe, u32_cmp);
            for (size_t pi = 0; pi < np; pi++) {
                int rc = mih_probe(rd, k, q, r, s, rad, st, len, qs, rd->probe[pi], budget);
                if (rc)
                    return rc;
            }
            continue;
        }
        for (int i = 0; i <= rad[s] && i <= (int)len[s]; i++) {
            uint64_t mask = i == 0 ? 0 : (UINT64_C(1) << i) - 1;
            while (mask < lim) {
                int rc =
                    mih_probe(rd, k, q, r, s, rad, st, len, qs, qs[s] ^ (uint32_t)mask, budget);
                if (rc)
                    return rc;
                if (i == 0)
                    break;
                uint64_t c = mask & (~mask + 1), nx = mask + c;
                mask = (((nx ^ mask) >> 2) / c) | nx;
            }
        }
    }
    return 0;
}

/* Digest kinds have no MIH tables; an exact search uses the digest index. */
static int digest_exact(nh_db_reader *rd, const nhdb_kind_info *k, const uint8_t *q)
{
    MDB_val key = {16, (void *)q}, v;
    int rc = mdb_cursor_get(rd->digest, &key, &v, MDB_SET_KEY);
    while (rc == 0) {
        uint64_t id = nhdb_get_be64(v.mv_data);
        if ((id >> NHDB_ORD_BITS) == k->id) {
            /* an entry's own digest field may equal a digest-kind hash; check the hash */
            uint64_t ord = id & NHDB_ORD_MASK;
            if (ord >= k->count)
                return MDB_CORRUPTED; /* a damaged digest row */
            const uint8_t *h = k->chunks[ord >> NHDB_CHUNK_SHIFT] + (ord & (NHDB_CHUNK - 1)) * 16;
            if (memcmp(h, q, 16) == 0 && res_push(rd, id, 0))
                return -1;
        }
        rc = mdb_cursor_get(rd->digest, &key, &v, MDB_NEXT_DUP);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static nh_status run_radius(nh_db_reader *rd, nhdb_kind_info *k, const uint8_t *q, unsigned r,
                            nh_db_method method, nh_error *err)
{
    int rc;
    size_t start = rd->n_res;
    if (k->m == 0) {
        if (r == 0 && method != NH_DB_METHOD_LINEAR) {
            rd->info.method = NH_DB_METHOD_MIH;
            rc = digest_exact(rd, k, q);
        } else {
            rd->info.method = NH_DB_METHOD_LINEAR;
            rc = scan_radius(rd, k, q, r);
        }
    } else {
        double lin = cost_scan(k), cands;
        double mih = cost_mih(k, r, &cands);
        int use_mih = method == NH_DB_METHOD_MIH ||
                      (method == NH_DB_METHOD_AUTO && mih * rd->scale_mih < lin * rd->scale_scan);
        rc = 1;
        if (use_mih) {
            rd->info.method = NH_DB_METHOD_MIH;
            /* Clustered data can make the estimate wrong; give up on MIH when its candidates
             * alone would cost more than the scan. */
            uint64_t budget = method == NH_DB_METHOD_MIH
                                  ? UINT64_MAX
                                  : (uint64_t)(lin * rd->scale_scan / COST_CAND) + 1024;
            double t0 = nh_time_now();
            rc = mih_radius(rd, k, q, r, budget);
            if (rc == 1)
                rd->n_res = start;
            else if (rc == 0)
                calibrate(&rd->scale_mih, mih, t0);
        }
        if (rc == 1) {
            rd->info.method = NH_DB_METHOD_LINEAR;
            double t0 = nh_time_now();
            rc = scan_radius(rd, k, q, r);
            if (rc == 0)
                calibrate(&rd->scale_scan, lin, t0);
        }
    }
    if (rc == -1)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, rd->db->path, "results");
    if (rc)
        return nhdb_mdb_error(err, rc, rd->db->path, "search");
    return NH_OK;
}

static nh_status query_core(nh_db_reader *rd, const nh_kind *kind, const uint8_t *hash,
                            const nh_db_query_opts *opts, int sort, nh_error *err)
{
    memset(&rd->info, 0, sizeof rd->info);
    rd->n_res = 0;
    if (!kind || !hash || !opts)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, rd->db->path, "query: NULL");
    nhdb_kind_info *k = reader_kind(rd, kind);
    if (!k || k->count == 0)
        return NH_OK;
    nh_status st = load_chunks(rd, k, err);
    if (st)
        return st;
    unsigned r = opts->radius > k->bits ? k->bits : opts->radius;
    if (opts->k == 0) {
        if ((st = run_radius(rd, k, hash, r, opts->method, err)))
            return st;
    } else {
        unsigned cap = opts->radius ? r : k->bits;
        int linear = opts->method == NH_DB_METHOD_LINEAR || k->m == 0;
        unsigned rr = 0;
        while (!linear) {
            if (opts->method == NH_DB_METHOD_AUTO &&
                cost_mih(k, rr, NULL) * rd->scale_mih > cost_scan(k) * rd->scale_scan) {
                linear = 1;
                break;
            }
            rd->n_res = 0;
            if ((st = run_radius(rd, k, hash, rr, opts->method, err)))
                return st;
            if (rd->n_res >= opts->k || rr >= cap)
                break;
            unsigned next = rr + 1 + rr / 4;
            rr = next > cap ? cap : next;
        }
        if (linear) {
            rd->n_res = 0;
            rd->info.method = NH_DB_METHOD_LINEAR;
            if (scan_knn(rd, k, hash, opts->k, cap))
                return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, rd->db->path, "knn");
        }
        sort = 1;
    }
    if (sort && rd->n_res > 1)
        qsort(rd->res, rd->n_res, sizeof *rd->res, match_cmp);
    if (opts->k && rd->n_res > opts->k)
        rd->n_res = opts->k;
    return NH_OK;
}

nh_status nh_db_query(nh_db_reader *rd, const nh_kind *kind, const uint8_t *hash,
                      const nh_db_query_opts *opts, const nh_db_match **out, size_t *n,
                      nh_error *err)
{
    nh_status st = query_core(rd, kind, hash, opts, 1, err);
    if (st)
        return st;
    *out = rd->res;
    *n = rd->n_res;
    return NH_OK;
}

nh_status nh_db_query_each(nh_db_reader *rd, const nh_kind *kind, const uint8_t *hash,
                           const nh_db_query_opts *opts, nh_db_match_fn fn, void *ctx,
                           nh_error *err)
{
    if (opts && opts->k)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, rd->db->path,
                            "nh_db_query_each takes radius searches only");
    nh_status st = query_core(rd, kind, hash, opts, 0, err);
    if (st)
        return st;
    for (size_t i = 0; i < rd->n_res; i++)
        if (fn(ctx, rd->res[i].id, rd->res[i].distance))
            return NH_ERR_INTERRUPTED;
    return NH_OK;
}

void nh_db_reader_last_info(const nh_db_reader *rd, nh_db_query_info *out)
{
    *out = rd->info;
}
