/*
 * nhash matching: a file's hashes against a hash set, and an archive's count against its
 * threshold. The policy that nhash audit applies, as a library (tests call it directly):
 *
 *   - each kind within its own radius: neural (of this model and width only), PDQ, and the
 *     file digest exactly (radius 0);
 *   - PDQ hashes of quality under NH_MATCH_PDQ_MIN_QUALITY (the query's or the entry's) are
 *     reported as unreliable: they neither confirm nor count;
 *   - variants: a record that carries PDQ's 8 dihedral variants, or the neural hash of its
 *     mirror image, is matched with each; an entry is reported once, at its best distance,
 *     with the variant that reached it (the lowest variant on ties);
 *   - a file's matches are joined by known image (nh_match_file): entries that carry a file
 *     digest join by that digest (every entry `nhash hash --db` writes carries one), the
 *     others by their source string;
 *   - a known image's match is CONFIRMED when the file's digest equals the known image's (a
 *     digest entry matched, or a matched entry carries the file's digest), or when both
 *     independent perceptual hashes, neural and PDQ, match it reliably within their radii.
 *     A match of one perceptual hash alone is UNCONFIRMED (listed for review; the neural
 *     hash of an open model can be forged in seconds, docs/attacks.md), one of unreliable
 *     PDQ hashes only is UNRELIABLE;
 *   - an archive's counted files are the files with a confirmed match (NH_COUNT_CONFIRMED,
 *     the default) or with any reliable match (NH_COUNT_ANY); the archive reaches its
 *     threshold when their count does (threshold 0: never).
 *
 * Evidence comes in kind order (neural, pdq, digest); within a kind in the set's order.
 */
#ifndef NHASH_MATCH_H
#define NHASH_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "nhash/kind.h"
#include "nhash/pipeline.h"

struct nh_db_reader;

#define NH_MATCH_PDQ_MIN_QUALITY 50
#define NH_MATCH_DIGEST_BYTES 16 /* an entry's file digest: xxh128 */

typedef struct nh_match_opts {
    unsigned radius_neural; /* bits, inclusive */
    unsigned radius_pdq;    /* bits, inclusive */
} nh_match_opts;

/* One match. Strings are borrowed until the callback returns. */
typedef struct nh_match {
    nh_kind_type kind;
    unsigned distance;
    unsigned radius;        /* the radius it was found within */
    uint64_t id;            /* the entry */
    const char *source, *label, *note;
    int64_t added;
    int quality;            /* the entry's quality, -1 when none */
    const uint8_t *digest;  /* the entry's file digest (16 bytes), NULL when it has none */
    int query_quality;      /* the file's PDQ quality (kind PDQ), -1 otherwise */
    int unreliable;         /* PDQ query or entry under NH_MATCH_PDQ_MIN_QUALITY */
    int has_variant;        /* the record carried variants of this kind */
    nh_variant variant;     /* which one matched (has_variant) */
} nh_match;

/* Return nonzero to stop matching this record. */
typedef int (*nh_match_fn)(const nh_match *m, void *user);

/*
 * Match a record's hashes against the reader's snapshot (borrowed; its strings are valid
 * until fn returns). neural: the kind of the record's neural hashes, NULL to match none.
 * *n (may be NULL) receives the number of matches, *reliable those that count.
 */
nh_status nh_match_record(struct nh_db_reader *rd, const nh_kind *neural, const nh_match_opts *o,
                          const nh_record *r, nh_match_fn fn, void *user, size_t *n,
                          size_t *reliable, nh_error *err);

/* A file's match of one known image, with the evidence of every kind. */
typedef enum nh_match_status {
    NH_MATCH_UNRELIABLE,  /* only PDQ evidence of low quality */
    NH_MATCH_UNCONFIRMED, /* one perceptual kind only */
    NH_MATCH_CONFIRMED,   /* the digest, or neural and PDQ together */
} nh_match_status;

enum {
    NH_CONFIRM_DIGEST = 1u << 0,     /* the file is a known file, byte for byte */
    NH_CONFIRM_PERCEPTUAL = 1u << 1, /* neural and PDQ both within their radii */
};

typedef struct nh_match_known {
    const uint8_t *digest;  /* the known image's digest (16 bytes), NULL: joined by source */
    const char *source;     /* the source of its first evidence */
    size_t n;               /* evidence, kind order */
    const nh_match *ev;
    nh_match_status status;
    unsigned confirmed_by;  /* NH_CONFIRM_* bits */
} nh_match_known;

/* Return nonzero to stop. Everything is borrowed until the callback returns. */
typedef int (*nh_match_known_fn)(const nh_match_known *k, void *user);

/* What one file gave. */
typedef struct nh_match_result {
    size_t known;       /* known images matched */
    size_t confirmed;   /* of which confirmed */
    size_t unconfirmed; /* unconfirmed */
    size_t unreliable;  /* unreliable */
} nh_match_result;

/*
 * Match a record and join its matches by known image; fn is called once per known image,
 * confirmed ones first, then in the order of their first evidence. *res (may be NULL)
 * receives the counts.
 */
nh_status nh_match_file(struct nh_db_reader *rd, const nh_kind *neural, const nh_match_opts *o,
                        const nh_record *r, nh_match_known_fn fn, void *user,
                        nh_match_result *res, nh_error *err);

const char *nh_match_status_name(nh_match_status s);

/* What counts toward an archive's threshold. */
typedef enum nh_count_rule {
    NH_COUNT_CONFIRMED, /* files with a confirmed match (default) */
    NH_COUNT_ANY,       /* files with any reliable match: one forgeable hash suffices */
} nh_count_rule;

/* "confirmed", "any"; -1 when unknown. */
int nh_count_rule_parse(const char *s);
const char *nh_count_rule_name(nh_count_rule r);

/* An archive's count. */
typedef struct nh_match_tally {
    size_t threshold;       /* counted files that raise the flag; 0 = never */
    nh_count_rule rule;
    size_t files, failed;
    size_t matched_files;   /* files with a reliable match (listed for review) */
    size_t confirmed_files; /* files with a confirmed match */
    size_t counted_files;   /* files that count under the rule */
    size_t matches, confirmed, unconfirmed, unreliable; /* known-image matches */
} nh_match_tally;

/* Count one file: its status and what nh_match_file gave (NULL: nothing). */
void nh_match_tally_add(nh_match_tally *t, const nh_record *r, const nh_match_result *res);
/* 1 when the archive reached its threshold. */
int nh_match_tally_reached(const nh_match_tally *t);

#endif
