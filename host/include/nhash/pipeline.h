/*
 * nhash pipeline: the bulk hashing job. Paths come in (files, folders walked recursively,
 * path lists from stdin), decode workers on all cores fill fixed-size batches, the network
 * runs batch by batch on the OpenCL device while the workers decode the next batch, and one
 * record per file comes back to the caller, in input order, tagged with its path.
 *
 * Memory is bounded by two batches whatever the archive size: paths are read from the
 * input only as batches free up.
 */
#ifndef NHASH_PIPELINE_H
#define NHASH_PIPELINE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nhash/core.h"
#include "nhash/decode.h"
#include "nhash/kind.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- input: paths from arguments, folders and stdin ---- */

typedef struct nh_input nh_input;

/*
 * args: borrowed for the life of the input. A file is taken as is, a folder is walked
 * recursively in sorted order (symbolic links to folders are not followed, so a loop cannot
 * trap the walk), "-" reads a path list from stdin: one path per line, or NUL-separated when
 * nul_sep (find -print0). Names are bytes: nothing assumes UTF-8.
 */
nh_status nh_input_create(char *const *args, size_t n, int nul_sep, nh_input **out,
                          nh_error *err);
void nh_input_destroy(nh_input *in);

/*
 * Next path: *path is returned-owned (free()). NH_ERR_NOT_FOUND at the end. A path that
 * cannot be listed (unreadable folder) comes back with NH_OK and *problem set: the caller
 * reports it as a failed record.
 */
nh_status nh_input_next(nh_input *in, char **path, nh_error *problem);

/* Number of paths handed out so far. */
size_t nh_input_count(const nh_input *in);

/* ---- the job ---- */

#define NH_NEURAL_MAX_BYTES NH_HASH_MAX_BYTES
/* neural + its mirror, 8 PDQ variants, digest */
#define NH_RECORD_MAX_HASHES 12

/*
 * One file's result: its hashes as a list of nh_hash values (kind, bytes, quality, variant),
 * in the order of the hasher table (digest, neural, pdq; variants after the original).
 * Borrowed by the callback for the duration of the call.
 */
typedef struct nh_record {
    size_t index;               /* position in the input, from 0 */
    const char *path;
    nh_status status;           /* NH_OK or why the file failed */
    nh_error err;
    int skipped;                /* skip hook said it is already known */
    int src_width, src_height;  /* as stored in the file; 0 when it was not decoded */
    size_t nhashes;
    nh_hash hashes[NH_RECORD_MAX_HASHES];
} nh_record;

/* The record's hash of this type and variant, or NULL. */
const nh_hash *nh_record_hash(const nh_record *r, nh_kind_type type, nh_variant variant);

/* Return nonzero to stop the job after the batch in flight. */
typedef int (*nh_record_fn)(const nh_record *rec, void *user);

/*
 * Optional resume hook, called from decode workers (so it must be thread-safe): nonzero
 * when a file with this digest is already done; the file is then neither decoded nor
 * hashed and its record has skipped = 1.
 */
typedef int (*nh_skip_fn)(const uint8_t digest[16], void *user);

/* Where PDQ runs. AUTO: on the OpenCL device when the job has one open for the network and
 * it is a GPU whose divisions are exact (the reference's bits), else in C on the workers. */
typedef enum nh_pdq_backend {
    NH_PDQ_BACKEND_AUTO = 0,
    NH_PDQ_BACKEND_C = 1,
    NH_PDQ_BACKEND_CL = 2,
} nh_pdq_backend;

typedef struct nh_pipeline_opts {
    unsigned kinds;             /* NH_KIND_BIT(NH_KIND_NEURAL) | ...: what to compute */
    const char *model_path;     /* neural: .nhm file (NULL = nh_pipeline_default_model()) */
    const char *backend;        /* neural: "cl" (default) or "ref" (plain C) */
    const char *cl_platform;    /* device choice, NULL = env / default */
    const char *cl_device;
    size_t batch;               /* images per network batch; 0 = 16 */
    int threads;                /* decode workers; 0 = online CPUs */
    nh_decode_opts decode;      /* the one set of decode options for every hasher: limits and
                                   loaders; mode and autorotate choose the network's input
                                   (its size is the model's) */
    int pdq_fast;               /* PDQ input: 0 = reference path, 1 = shrink-on-load */
    nh_pdq_backend pdq_backend;
    int pdq_dihedral;           /* also the 8 dihedral variants of each PDQ hash */
    int neural_mirror;          /* also the neural hash of each image mirrored left-right (a
                                   second network pass): finds flipped copies */
    nh_skip_fn skip;            /* may be NULL */
    void *skip_user;
    volatile sig_atomic_t *stop;/* when it becomes nonzero: finish in-flight work, return */
} nh_pipeline_opts;

void nh_pipeline_opts_default(nh_pipeline_opts *o);

typedef struct nh_pipeline_stats {
    size_t files, ok, failed, skipped;
    double seconds;
    double net_seconds;         /* time inside the network and projection */
    int interrupted;
} nh_pipeline_stats;

typedef struct nh_pipeline nh_pipeline;

nh_status nh_pipeline_create(const nh_pipeline_opts *opts, nh_pipeline **out, nh_error *err);
void nh_pipeline_destroy(nh_pipeline *p);

/* Set or replace the skip hook before nh_pipeline_run (see nh_skip_fn). */
void nh_pipeline_set_skip(nh_pipeline *p, nh_skip_fn fn, void *user);

/* Model in use (NULL without neural hashes): name, version and fingerprint for output. */
const char *nh_pipeline_model_name(const nh_pipeline *p);
uint64_t nh_pipeline_model_fingerprint(const nh_pipeline *p);
int nh_pipeline_model_is_placeholder(const nh_pipeline *p);
size_t nh_pipeline_hash_bytes(const nh_pipeline *p);
/* The kind of this job's hashes of a type (neural: the model's fingerprint and width);
 * NH_ERR_NOT_FOUND when the job does not compute that type. */
nh_status nh_pipeline_kind(const nh_pipeline *p, nh_kind_type type, nh_kind *out);
/* The hasher computing a type ("neural-cl", "pdq-c", ...), NULL when none. */
const char *nh_pipeline_hasher_name(const nh_pipeline *p, nh_kind_type type);

/*
 * Run the whole input through. cb gets every record in input order. Returns NH_OK when the
 * job ran to the end (even if files failed: see stats), NH_ERR_INTERRUPTED when stopped,
 * another status when the job itself could not go on (device lost, callback failure).
 */
nh_status nh_pipeline_run(nh_pipeline *p, nh_input *in, nh_record_fn cb, void *user,
                          nh_pipeline_stats *stats, nh_error *err);

/*
 * The default model: $NH_MODEL, else models/default.nhm next to the installed share dir
 * or in the source tree. Returned string is static.
 */
const char *nh_pipeline_default_model(void);


#ifdef __cplusplus
}
#endif
#endif
