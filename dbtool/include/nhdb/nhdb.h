/*
 * nhdb: the LMDB hash-set database with multi-index Hamming search.
 *
 * One memory-mapped LMDB environment (a directory holding data.mdb and lock.mdb); any number
 * of readers, one writer at a time, across processes. nhdb never decodes images: callers
 * hand it hashes. The on-disk schema is documented field by field in docs/nhdb.md.
 *
 * Hash kinds never mix in a comparison:
 *   NH_KIND_NEURAL  neural hash of its model's width (8..1024 bits in whole bytes; 96 by
 *                      default), qualified by the 8-byte model fingerprint (xxHash64 of the
 *                      model file content, canonical big-endian bytes); two models are two
 *                      kinds, and so are two widths of one fingerprint.
 *   NH_KIND_PDQ     256-bit PDQ hash (an entry may carry its quality, 0..100).
 *   NH_KIND_DIGEST  128-bit xxh128 file digest (canonical big-endian bytes).
 * Every hash is a byte string in canonical big-endian order (bit 0 = MSB of byte 0).
 *
 * Writes are batched: nh_db_batch_begin, nh_db_add (buffers in memory), nh_db_batch_commit
 * (one LMDB write transaction, sorted bulk inserts, map grown and the transaction retried
 * on MDB_MAP_FULL). A commit is all or nothing, so a killed process leaves the database as
 * of its last commit. Adding an entry whose (kind, hash, source) is present already adds
 * nothing.
 *
 * Searches: radius (all entries within Hamming distance r) and k-nearest, both exact. A
 * radius search uses multi-index hashing (Norouzi, Punjani, Fleet) or a linear scan of the
 * kind's packed hash array, whichever the cost model expects to be cheaper.
 *
 * Errors: every fallible call returns nh_status and fills the caller's nh_error (may be
 * NULL) with the MDB rc or errno kept as the foreign code.
 */
#ifndef NHDB_NHDB_H
#define NHDB_NHDB_H

#include <stddef.h>
#include <stdint.h>

#include "nhash/core.h"
#include "nhash/kind.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Schema 3: every value nhdb writes ends with a checksum (docs/nhdb.md). Schema-2 sets are
 * read and written as they are, without checksums, until nh_db_upgrade adds them; schema-1
 * sets become schema 2 at their first writable open. */
#define NH_DB_SCHEMA_VERSION 3
#define NH_DB_HASH_MAX 32 /* bytes of the longest hash a set stores (PDQ; neural up to 256 bits) */
#define NH_DB_DIGEST_BYTES 16 /* xxh128 */
#define NH_DB_STR_MAX 65535u /* bytes of the longest source, label or note (nh_db_add) */

typedef struct nh_db nh_db;
typedef struct nh_db_reader nh_db_reader;

/* Kinds (nh_kind: type, width, model fingerprint) and their names are nhash/kind.h's. */

/* One entry to add. All pointers are borrowed for the duration of nh_db_add only. */
typedef struct nh_db_entry {
    nh_kind kind;
    const uint8_t *hash;   /* nh_kind_bits(&kind)/8 bytes, big-endian */
    const uint8_t *digest; /* optional 16-byte xxh128 of the file, NULL if none */
    int quality;           /* PDQ quality 0..100, or -1 when none */
    const char *source;    /* path or identifier, NUL-terminated; NULL = "" */
    const char *label;     /* label or category; NULL = "" */
    const char *note;      /* free-form note; NULL = "" */
    int64_t added;         /* unix seconds; 0 = the time of nh_db_add */
} nh_db_entry;

/* A stored entry as read back. Pointers are into the map: valid until the reader that
 * produced them is refreshed or destroyed. Strings are NUL-terminated. */
typedef struct nh_db_record {
    uint64_t id; /* kind id in the top 24 bits, ordinal within the kind in the low 40 */
    nh_kind kind;
    unsigned bits;
    const uint8_t *hash;
    const uint8_t *digest; /* NULL when the entry has none */
    int quality;           /* -1 when none */
    int64_t added;
    const char *source;
    const char *label;
    const char *note;
} nh_db_record;

/* Options for a new database; zero fields take the defaults. */
typedef struct nh_db_create_opts {
    unsigned neural_substrings; /* MIH substrings for 96-bit hashes, 3..32; default 4 */
    unsigned pdq_substrings;    /* MIH substrings for 256-bit hashes, 8..64; default 12 */
    size_t initial_mapsize;     /* bytes of address space; default 4 GiB; grows by itself */
} nh_db_create_opts;

enum {
    NH_DB_OPEN_CREATE = 1u << 0,   /* create the directory and database when missing */
    NH_DB_OPEN_READONLY = 1u << 1, /* no writes; nh_db_batch_begin fails */
    NH_DB_OPEN_NOSYNC = 1u << 2,   /* no fsync at commit (crash-safe against a killed
                                      process, not against power loss) */
};

/*
 * Open the database in directory path. With NH_DB_OPEN_CREATE a missing database is created
 * with opts (NULL = defaults); opts are ignored for an existing one. *out is written only on
 * success and must be closed with nh_db_close. Returns NH_ERR_NOT_FOUND when the database is
 * missing and CREATE is not set, NH_ERR_FORMAT on a schema this build does not know or a
 * damaged schema record, NH_ERR_DB on LMDB failures.
 */
nh_status nh_db_open(const char *path, unsigned flags, const nh_db_create_opts *opts, nh_db **out,
                     nh_error *err);
/*
 * Bring a set opened for writing to NH_DB_SCHEMA_VERSION: a schema-2 set gets its checksums
 * (every value rewritten, one write transaction; the map grows as needed). NH_OK when there
 * is nothing to do; NH_ERR_INVALID while a batch or a reader of db is open.
 */
nh_status nh_db_upgrade(nh_db *db, nh_error *err);
/* Close; aborts an uncommitted batch. All readers must be destroyed first. NULL is a no-op. */
void nh_db_close(nh_db *db);

/* Start buffering a batch. NH_ERR_INVALID if one is open already or the db is read-only. */
nh_status nh_db_batch_begin(nh_db *db, nh_error *err);

/*
 * Buffer one entry in the open batch (validated here: NH_ERR_INVALID on a bad kind, NULL
 * hash, quality outside -1..100 or a string over 64 KiB). Nothing reaches the database
 * before nh_db_batch_commit.
 */
nh_status nh_db_add(nh_db *db, const nh_db_entry *entry, nh_error *err);

/*
 * Attach a progress record to the open batch: it is written in the same transaction as the
 * entries, so after a crash the database holds exactly the entries the record accounts for.
 * job is a NUL-terminated name (at most 400 bytes); value/n (at most 4 KiB) are copied.
 * n == 0 deletes the record at commit.
 */
nh_status nh_db_batch_set_progress(nh_db *db, const char *job, const void *value, size_t n,
                                   nh_error *err);

/* Read a progress record from the last commit. NH_ERR_NOT_FOUND when absent. *n is the
 * record's length; at most cap bytes are copied to buf. */
nh_status nh_db_get_progress(nh_db *db, const char *job, void *buf, size_t cap, size_t *n,
                             nh_error *err);

/*
 * Write the batch in one transaction and close it. *added (may be NULL) receives the number
 * of new entries, *skipped the number already present (same kind, hash and source) in the
 * database or earlier in the batch. Grows the map and retries on MDB_MAP_FULL (refused with
 * NH_ERR_DB while a reader of this process is open, since LMDB cannot remap under it). On
 * failure the batch is discarded and the database is unchanged (as of the last commit). A
 * full disk is NH_ERR_IO, "no space left on device", with LMDB's rc (ENOSPC, or EIO for a
 * write that came up short while the file system is full) as the foreign code.
 */
nh_status nh_db_batch_commit(nh_db *db, uint64_t *added, uint64_t *skipped, nh_error *err);
/* Discard the open batch, if any. */
void nh_db_batch_abort(nh_db *db);
/* Entries buffered in the open batch. */
size_t nh_db_batch_size(const nh_db *db);

/*
 * Whether a file digest is present: as an entry of kind DIGEST, as any entry's digest, or in
 * the open batch. Sees the last commit.
 */
nh_status nh_db_has_digest(nh_db *db, const uint8_t digest[16], int *present, nh_error *err);

/* Per-kind statistics. */
typedef struct nh_db_kind_stats {
    nh_kind kind;
    uint32_t kind_id;
    unsigned bits;
    unsigned substrings; /* 0: no MIH tables (digest kinds search by scan or exact key) */
    uint64_t count;
} nh_db_kind_stats;

typedef struct nh_db_stats {
    unsigned schema_version; /* of this set: 2 (no checksums) or 3 */
    uint64_t entries;
    size_t n_kinds;
    nh_db_kind_stats kinds[64]; /* first 64 kinds */
    uint64_t mapsize;           /* bytes mapped */
    uint64_t used_bytes;        /* pages in use x page size */
    uint64_t digests;           /* rows of the digest index */
    uint64_t mih_rows;          /* postings of the MIH runs (entries x substrings) */
    uint64_t mih_runs;          /* MIH runs, all kinds and substrings */
    uint64_t dedupe_runs;       /* dedupe-key runs, all kinds */
} nh_db_stats;

nh_status nh_db_stats_get(nh_db *db, nh_db_stats *out, nh_error *err);

/*
 * Check that every table is consistent with the others: every record decodes; per-kind
 * counts match the entries; the packed arrays hold exactly each entry's hash; every entry
 * has one posting in each of its m MIH substring run lists, its dedupe row and its digest
 * row, and no table holds extra rows; on schema 3 every value's checksum; LMDB's two meta
 * pages are intact.
 * Returns NH_ERR_FORMAT with a message naming the first inconsistency; *problems (may be
 * NULL) receives the number found. LMDB itself may crash on damaged B-tree pages (it does
 * not check them): a caller that must survive that runs this in a child process, as `nhdb
 * verify` does.
 */
nh_status nh_db_verify(nh_db *db, uint64_t *problems, nh_error *err);

/* ---- Reading and searching ---- */

/*
 * A read snapshot for queries and iteration; one thread at a time. Take a fresh snapshot with
 * nh_db_reader_refresh. Destroy before nh_db_close. NULL-safe destroy.
 */
nh_status nh_db_reader_create(nh_db *db, nh_db_reader **out, nh_error *err);
nh_status nh_db_reader_refresh(nh_db_reader *rd, nh_error *err);
void nh_db_reader_destroy(nh_db_reader *rd);

/* Read one entry by id. NH_ERR_NOT_FOUND when absent. */
nh_status nh_db_reader_get(nh_db_reader *rd, uint64_t id, nh_db_record *out, nh_error *err);

/* Count of a kind in the snapshot (0 when the kind is absent). */
uint64_t nh_db_reader_kind_count(nh_db_reader *rd, const nh_kind *kind);

/* Visit every entry, kind by kind in insertion order; kind == NULL visits all kinds. A
 * non-zero return from fn stops the walk and is returned as NH_ERR_INTERRUPTED. */
typedef int (*nh_db_record_fn)(void *ctx, const nh_db_record *rec);
nh_status nh_db_reader_foreach(nh_db_reader *rd, const nh_kind *kind, nh_db_record_fn fn,
                               void *ctx, nh_error *err);

/* List the kinds of the snapshot; returns how many exist, fills up to cap. */
size_t nh_db_reader_kinds(nh_db_reader *rd, nh_db_kind_stats *out, size_t cap);

typedef enum nh_db_method {
    NH_DB_METHOD_AUTO = 0,   /* by estimated cost */
    NH_DB_METHOD_MIH = 1,    /* force multi-index hashing (digest kinds: exact key only) */
    NH_DB_METHOD_LINEAR = 2, /* force the packed-array scan */
} nh_db_method;

typedef struct nh_db_query_opts {
    unsigned radius; /* radius search: all entries with distance <= radius */
    unsigned k;      /* k > 0: the k nearest (ties broken by id); radius is a cap */
    nh_db_method method;
} nh_db_query_opts;

typedef struct nh_db_match {
    uint64_t id;
    unsigned distance;
} nh_db_match;

/* Which path the last query of a reader took, and its work, for benchmarks and tests. */
typedef struct nh_db_query_info {
    nh_db_method method;
    uint64_t probes;     /* MIH keys looked up */
    uint64_t candidates; /* ids verified by full distance */
} nh_db_query_info;

/*
 * Search kind for hash (nh_kind_bits(kind)/8 bytes; a neural kind's width is part of it). Matches are appended to the reader's
 * result buffer and returned through *out (valid until the next query on rd) and *n, sorted
 * by distance then id. Exact: equal to a brute-force comparison against every entry of the
 * kind. An absent kind gives zero matches.
 */
nh_status nh_db_query(nh_db_reader *rd, const nh_kind *kind, const uint8_t *hash,
                      const nh_db_query_opts *opts, const nh_db_match **out, size_t *n,
                      nh_error *err);

/* Same search, matches delivered to fn in unspecified order (radius searches only, k must
 * be 0); a non-zero return stops the search with NH_ERR_INTERRUPTED. */
typedef int (*nh_db_match_fn)(void *ctx, uint64_t id, unsigned distance);
nh_status nh_db_query_each(nh_db_reader *rd, const nh_kind *kind, const uint8_t *hash,
                           const nh_db_query_opts *opts, nh_db_match_fn fn, void *ctx,
                           nh_error *err);

void nh_db_reader_last_info(const nh_db_reader *rd, nh_db_query_info *out);

#ifdef __cplusplus
}
#endif
#endif
