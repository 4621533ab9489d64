/*
 * nhash matching: a file's hashes against a hash set, and an archive's count against its
 * threshold. The policy that nhash audit applies, as a library (tests call it directly):
 *
 *   - each kind within its own radius: neural (of this model and width only), PDQ, and the
 *     file digest exactly (radius 0);
 *   - PDQ hashes of quality under NH_MATCH_PDQ_MIN_QUALITY (the query's or the entry's) are
 *     reported as unreliable and do not count;
 *   - variants: a record that carries PDQ's 8 dihedral variants, or the neural hash of its
 *     mirror image, is matched with each; an entry is reported once, at its best distance,
 *     with the variant that reached it (the lowest variant on ties);
 *   - an archive's matched files are the files with at least one reliable match; the archive
 *     reaches its threshold when their count does (threshold 0: never).
 *
 * Reports come in kind order (neural, pdq, digest); within a kind in the set's order.
 */
#ifndef NHASH_MATCH_H
#define NHASH_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "nhash/kind.h"
#include "nhash/pipeline.h"

struct nh_db_reader;

#define NH_MATCH_PDQ_MIN_QUALITY 50

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

/* An archive's count. */
typedef struct nh_match_tally {
    size_t threshold;       /* matched files that raise the flag; 0 = never */
    size_t files, failed, matched_files, matches, unreliable;
} nh_match_tally;

/* Count one file: its status and the numbers nh_match_record gave. */
void nh_match_tally_add(nh_match_tally *t, const nh_record *r, size_t matches, size_t reliable);
/* 1 when the archive reached its threshold. */
int nh_match_tally_reached(const nh_match_tally *t);

#endif
