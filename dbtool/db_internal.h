/*
 * libnhdb internals shared by db.c (storage, batches, verify) and db_query.c (reader, MIH).
 * The on-disk layout is described in docs/nhdb.md; the codecs here are its only readers and
 * writers.
 */
#ifndef NHDB_DB_INTERNAL_H
#define NHDB_DB_INTERNAL_H

#include <lmdb.h>
#include <stdint.h>
#include <string.h>

#include "nhdb/nhdb.h"

#define NHDB_CHUNK_SHIFT 16
#define NHDB_CHUNK (1u << NHDB_CHUNK_SHIFT) /* hashes per packed chunk */
#define NHDB_ORD_BITS 40
#define NHDB_ORD_MASK ((UINT64_C(1) << NHDB_ORD_BITS) - 1)
#define NHDB_KIND_MAX ((1u << 24) - 1)
#define NHDB_STR_MAX NH_DB_STR_MAX
#define NHDB_REC_VERSION 1
#define NHDB_KIND_REC_VERSION 1
#define NHDB_KIND_REC_SIZE 24
#define NHDB_REC_HEADER 48
#define NHDB_RUN_KEY 13    /* kind(4) + substring index(1) + run(4) + part(4) */
#define NHDB_RUN_CHUNK_SHIFT 20
#define NHDB_RUN_CHUNK (1u << NHDB_RUN_CHUNK_SHIFT) /* postings per run part */
#define NHDB_RUN_HDR 16
#define NHDB_RUN_VERSION 1
#define NHDB_DEDUPE_S 255  /* run list "substring" index of a kind's dedupe keys */
#define NHDB_DEDUPE_LEN 32 /* dedupe run values: the top 32 bits of the dedupe key */
#define NHDB_OCC_SHIFT 16  /* substring values per occupancy chunk: 2^16 bits, 8 KiB */
#define NHDB_OCC_BYTES ((1u << NHDB_OCC_SHIFT) / 8)
#define NHDB_OCC_MIN_LEN 18 /* shorter substrings are too dense to be worth a bitmap */
#define NHDB_OCC_MAX_LEN 28 /* longer ones would need more than 32 MiB of bitmap */
#define NHDB_FLAG_DIGEST 1u
#define NHDB_FLAG_QUALITY 2u
#define NHDB_SCHEMA_NOSUM 2 /* the last schema without value checksums (still read and written) */
#define NHDB_SUM_BYTES 8    /* schema 3: the checksum after each value, u64 LE */

/* A kind as known inside one transaction. */
typedef struct nhdb_kind_info {
    uint32_t id;
    nh_kind kind;
    unsigned bits, hb, m; /* hash bits, hash bytes, MIH substrings (0 = none) */
    uint64_t count;       /* entries == next ordinal */
    int dirty;            /* record must be rewritten at commit */
    /* reader side: packed chunk pointers into the map, loaded on first use */
    const uint8_t **chunks;
    size_t n_chunks;
    int chunks_loaded;
    /* reader side: occupancy chunks, m x occ_cps, loaded on first use (NULL = all clear) */
    const uint8_t **occ;
    uint8_t *occ_loaded;
    size_t occ_cps;
    /* reader side: MIH runs, run_off[s] .. run_off[s+1] in runs (loaded with the chunks) */
    struct nhdb_run_view *runs;
    size_t *run_off;
} nhdb_kind_info;

/* One MIH run as mapped in a read transaction. */
typedef struct nhdb_run_view {
    uint64_t n;           /* postings */
    unsigned dir_bits;    /* directory slots: 2^dir_bits, by the value's top bits */
    unsigned low_bits;    /* value bits kept in each posting: len - dir_bits */
    const uint8_t *dir;   /* 2^dir_bits + 1 u64 LE posting indexes */
    const uint8_t **part; /* posting parts, NHDB_RUN_CHUNK postings each */
} nhdb_run_view;

struct nh_db {
    MDB_env *env;
    MDB_dbi dbi_meta, dbi_entries, dbi_mih, dbi_packed, dbi_digest, dbi_occ;
    /* dbi_mih is the run table `mihrun` (schema 2) */
    unsigned flags;
    unsigned version; /* schema version of the set (2 or 3) */
    unsigned tail;    /* bytes after each value's payload: NHDB_SUM_BYTES (schema 3) or 0 */
    unsigned neural_m, pdq_m;
    int live_readers;
    char path[1024];

    /* the open batch */
    int in_batch;
    struct nhdb_pending *pend;
    size_t n_pend, cap_pend;
    size_t n_pend_digests; /* pending entries with a digest or of a digest kind */
    char *arena;
    size_t arena_n, arena_cap;
    uint8_t (*dset)[16]; /* open-addressing set of the batch's digests */
    size_t dset_cap, dset_n;
    int has_progress;
    char progress_job[401];
    uint8_t *progress_val;
    size_t progress_n;
};

typedef struct nhdb_pending {
    nh_kind kind;
    uint8_t hash[NH_DB_HASH_MAX];
    uint8_t digest[NH_DB_DIGEST_BYTES];
    int has_digest;
    int quality;
    int64_t added;
    size_t src_off, src_len, lab_off, lab_len, note_off, note_len;
} nhdb_pending;

/* ---- byte order helpers ---- */
static inline void nhdb_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint32_t nhdb_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void nhdb_put_be64(uint8_t *p, uint64_t v)
{
    nhdb_put_be32(p, (uint32_t)(v >> 32));
    nhdb_put_be32(p + 4, (uint32_t)v);
}
static inline uint64_t nhdb_get_be64(const uint8_t *p)
{
    return (uint64_t)nhdb_get_be32(p) << 32 | nhdb_get_be32(p + 4);
}
static inline void nhdb_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline uint16_t nhdb_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static inline void nhdb_put_le32(uint8_t *p, uint32_t v)
{
    nhdb_put_le16(p, (uint16_t)v);
    nhdb_put_le16(p + 2, (uint16_t)(v >> 16));
}
static inline uint32_t nhdb_get_le32(const uint8_t *p)
{
    return (uint32_t)nhdb_get_le16(p) | (uint32_t)nhdb_get_le16(p + 2) << 16;
}
static inline void nhdb_put_le64(uint8_t *p, uint64_t v)
{
    nhdb_put_le32(p, (uint32_t)v);
    nhdb_put_le32(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t nhdb_get_le64(const uint8_t *p)
{
    return (uint64_t)nhdb_get_le32(p) | (uint64_t)nhdb_get_le32(p + 4) << 32;
}

/* Substring k of m over a bits-bit hash covers bits [k*bits/m, (k+1)*bits/m). */
static inline unsigned nhdb_sub_start(unsigned bits, unsigned m, unsigned k)
{
    return k * bits / m;
}
static inline unsigned nhdb_sub_len(unsigned bits, unsigned m, unsigned k)
{
    return (k + 1) * bits / m - k * bits / m;
}
/* The len (<= 32) bits from bit start (0 = MSB of byte 0) as an integer. */
static inline uint32_t nhdb_sub_extract(const uint8_t *h, unsigned start, unsigned len)
{
    unsigned b0 = start >> 3, b1 = (start + len - 1) >> 3;
    uint64_t acc = 0;
    for (unsigned i = b0; i <= b1; i++)
        acc = acc << 8 | h[i];
    unsigned tail = 7 - ((start + len - 1) & 7);
    acc >>= tail;
    return (uint32_t)(acc & ((len == 32) ? 0xffffffffu : ((UINT64_C(1) << len) - 1)));
}
/* Does substring length len get an occupancy bitmap? */
static inline int nhdb_occ_eligible(unsigned len)
{
    return len >= NHDB_OCC_MIN_LEN && len <= NHDB_OCC_MAX_LEN;
}
/* Occupancy key: kind id (BE32), substring index, chunk number (BE32). */
static inline void nhdb_occ_key(uint8_t key[9], uint32_t kind_id, unsigned s, uint32_t chunk)
{
    nhdb_put_be32(key, kind_id);
    key[4] = (uint8_t)s;
    nhdb_put_be32(key + 5, chunk);
}

/* Run key: kind id (BE32), substring index, run number (BE32), part (BE32; 0 = header). */
static inline void nhdb_run_key(uint8_t key[NHDB_RUN_KEY], uint32_t kind_id, unsigned s,
                                uint32_t run, uint32_t part)
{
    nhdb_put_be32(key, kind_id);
    key[4] = (uint8_t)s;
    nhdb_put_be32(key + 5, run);
    nhdb_put_be32(key + 9, part);
}
/* Directory bits of a run of n postings of len-bit values: about 8 postings per slot, at
 * least len - 24 so a posting's kept value bits and its 40-bit ordinal fit in 64 bits. */
static inline unsigned nhdb_run_dir_bits(uint64_t n, unsigned len)
{
    unsigned lo = len > 24 ? len - 24 : 0, hi = len < 22 ? len : 22;
    unsigned b = n >= 16 ? (unsigned)(63 - __builtin_clzll(n)) - 3 : 0;
    return b < lo ? lo : b > hi ? hi : b;
}
static inline uint64_t nhdb_run_posting(const nhdb_run_view *r, uint64_t i)
{
    return nhdb_get_le64(r->part[i >> NHDB_RUN_CHUNK_SHIFT] +
                         (i & (NHDB_RUN_CHUNK - 1)) * 8);
}

/* The postings of value val in run rv: [*first, *end). -1 when the run's directory points
 * outside it. */
static inline int nhdb_run_find(const nhdb_run_view *rv, uint32_t val, uint64_t *first,
                                uint64_t *end)
{
    uint64_t slot = (uint64_t)val >> rv->low_bits;
    uint64_t lo = nhdb_get_le64(rv->dir + slot * 8), hi = nhdb_get_le64(rv->dir + slot * 8 + 8);
    if (lo > hi || hi > rv->n)
        return -1;
    uint64_t low = val & ((UINT64_C(1) << rv->low_bits) - 1);
    uint64_t a = lo, b = hi; /* the value's first posting is in [a, b]: a slot is sorted */
    while (b - a > 8) {
        uint64_t mid = a + (b - a) / 2;
        if ((nhdb_run_posting(rv, mid) >> NHDB_ORD_BITS) < low)
            a = mid + 1;
        else
            b = mid;
    }
    while (a < hi && (nhdb_run_posting(rv, a) >> NHDB_ORD_BITS) < low)
        a++;
    b = a;
    while (b < hi && (nhdb_run_posting(rv, b) >> NHDB_ORD_BITS) == low)
        b++;
    *first = a;
    *end = b;
    return 0;
}

/* ---- value checksums (schema 3; docs/nhdb.md "Checksums") ---- */
/* XXH3-64 of the value's first n bytes, seeded with XXH3-64 of the key: binds a value to its
 * key, so a value found under a damaged key fails too. */
uint64_t nhdb_sum(const MDB_val *key, const void *val, size_t n);
/* Write the checksum of val's payload into its last NHDB_SUM_BYTES bytes (val->mv_size counts
 * them). */
void nhdb_seal(const MDB_val *key, const MDB_val *val);
/* Whether val ends with the checksum of its payload under key. */
int nhdb_sum_ok(const MDB_val *key, const MDB_val *val);

/* ---- MIH runs (db_mih.c) ---- */
/* tail: bytes after each run value's payload (nh_db.tail); a schema-3 writer seals every
 * value it writes, and a merge checks the checksum of each stored value it reads. */
typedef struct nhdb_run_meta {
    uint32_t no;
    uint64_t n;
} nhdb_run_meta;
/* The runs of (kind, s), oldest first, into a malloc'd array. MDB rc. */
int nhdb_runs_list(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, unsigned s, nhdb_run_meta **out,
                   size_t *n);
/* Map the runs of (kind, s) for a reader: views into the transaction's pages. MDB rc. */
int nhdb_runs_map(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, unsigned s, unsigned len,
                  unsigned tail, nhdb_run_view **views, size_t *n);
void nhdb_runs_unmap(nhdb_run_view *views, size_t n);
/* Ordinals of the postings of value val in runs v[0..nv): up to cap into ords; returns how
 * many there are, or SIZE_MAX when a run's directory is damaged. */
size_t nhdb_runs_lookup(const nhdb_run_view *v, size_t nv, uint32_t val, uint64_t *ords,
                        size_t cap);
/* Add the sorted postings a[0..n) (value << 32 | ordinal - first) of a new batch to (kind, s)
 * as a run, merging it with the newest stored runs while they are no larger than the result
 * (so run sizes at least double towards the oldest and a set of N postings keeps at most
 * log2 N runs). MDB rc, or -1 when memory ran out. */
int nhdb_runs_add(MDB_txn *txn, MDB_dbi dbi, uint32_t kid, unsigned s, unsigned len,
                  unsigned tail, const uint64_t *a, size_t n, uint64_t first);
/* Stable LSD radix sort of a[0..n) by bits [lo, lo + len) (tmp: n scratch values). */
void nhdb_sort_bits(uint64_t *a, uint64_t *tmp, size_t n, unsigned lo, unsigned len);
/* nhdb_sort_bits on m arrays all[s * n ..] by bits [lo, lo + len[s]), on up to 4 threads
 * (tmp: n scratch values for the calling thread; the others allocate theirs). */
void nhdb_sort_many(uint64_t *all, uint64_t *tmp, size_t n, unsigned m, unsigned lo,
                    const unsigned *len);

/* ---- record codecs ---- */
/* Payload bytes of an entry record (without the checksum). */
size_t nhdb_rec_size(unsigned hb, size_t src, size_t lab, size_t note);
/* Decode an entry record whose value ends with tail checksum bytes (checked when tail). */
nh_status nhdb_rec_decode(const MDB_val *key, const MDB_val *val, unsigned tail,
                          nh_db_record *out);
void nhdb_kind_encode(const nhdb_kind_info *k, uint8_t out[NHDB_KIND_REC_SIZE]);
nh_status nhdb_kind_decode(const MDB_val *key, const MDB_val *val, unsigned tail,
                           nhdb_kind_info *out);

/* Load every kind of txn into a malloc'd array (*out, *n). */
nh_status nhdb_kinds_load(nh_db *db, MDB_txn *txn, nhdb_kind_info **out, size_t *n, nh_error *err);
/* MDB error to nh_error. */
nh_status nhdb_mdb_error(nh_error *err, int rc, const char *path, const char *what);
/* Begin a transaction, adopting a map grown by another process. */
int nhdb_txn_begin(nh_db *db, unsigned flags, MDB_txn **txn);
/* MIH substrings of a new kind: the schema's counts (neural scaled by width from 96 bits). */
unsigned nhdb_default_m(const nh_db *db, const nh_kind *kind);
/* Dedupe key of (hash, source) within a kind: XXH3-64 of the source seeded with XXH3-64 of
 * the hash. */
uint64_t nhdb_dedupe_hash(const uint8_t *hash, unsigned hb, const char *src, size_t src_len);

#endif
