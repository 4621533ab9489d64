/*
 * nhash hashers: the one table of ways a file becomes hashes (libnhash-internal).
 *
 * The pipeline reads each file once into memory (nh_source), decodes it at most once at
 * full size, and hands the same source to every hasher the job uses. Each hasher declares
 * what it reads (the bytes, the full decode, or a shrink-on-load decode of its own), derives
 * its input from that on a decode worker (prepare), and either hashes there (C hashers) or
 * leaves the input in its batch slot for one device call per batch (run, on the pipeline's
 * thread, while the workers decode the next batch). Hashes go into the file's record as
 * nh_hash values.
 *
 *   hasher       kind     reads                                  hashes on
 *   digest       digest   the bytes (streamed when nothing        the worker
 *                         else reads the file)
 *   neural-cl    neural   full decode -> Pillow-exact model size   the OpenCL device, per batch
 *                         (compat), or shrink-on-load (fast)
 *   neural-ref   neural   as neural-cl                             the C reference, per batch
 *   pdq-c        pdq      full decode -> PDQ's reference input     the worker
 *                         (or shrink-on-load with --pdq-fast)
 *   pdq-cl       pdq      as pdq-c                                 the OpenCL device, per batch
 *
 * Adding a hash kind: a hasher file and a row of nh_hasher_table (hasher_table.c), and the
 * kind's name in core/kind.c.
 */
#ifndef NHASH_HASHER_H
#define NHASH_HASHER_H

#include <stddef.h>
#include <stdint.h>

#include "nhash/decode.h"
#include "nhash/kind.h"
#include "nhash/pipeline.h"

struct nh_cl;

/* What a hasher reads (nh_hasher_ops.needs). */
enum {
    NH_NEED_BYTES = 1u << 0,  /* the file's bytes */
    NH_NEED_FULL = 1u << 1,   /* the file's one full decode, at its stored size */
    NH_NEED_SHRINK = 1u << 2, /* a shrink-on-load decode of its own, from the same bytes */
};

/*
 * One file on a worker. The bytes are read once (data, len) unless no hasher decodes, in
 * which case data is NULL and fd is open for streaming. fd is the open file in both cases
 * (the decoder reads formats that libvips loads from files alone through it). The full decode is made on the first
 * nh_source_full call and shared by every hasher after it (its error too).
 */
typedef struct nh_source {
    const char *path;
    const nh_decode_opts *decode; /* the job's one set of decode options (limits, loaders) */
    const uint8_t *data;          /* borrowed: the worker's read buffer */
    size_t len;
    int fd;                       /* the open file, or -1 */
    int full_tried;
    nh_status full_status;
    nh_error full_err;
    uint8_t *rgb;                 /* owned: full decode, info.width x info.height x 3 */
    nh_decode_info info;
} nh_source;

/* The full decode (made now or earlier). *rgb and *info are borrowed until the file is
 * done. On failure err receives the decoder's error, the same for every hasher. */
nh_status nh_source_full(nh_source *s, const uint8_t **rgb, const nh_decode_info **info,
                         nh_error *err);

/* What the pipeline hands a hasher at create. */
typedef struct nh_hasher_env {
    const nh_pipeline_opts *opts;
    const nh_decode_opts *decode; /* the job's decode options */
    struct nh_cl *cl;             /* the device, when the hasher uses one */
    size_t batch_cap;             /* files per batch */
    int nbatches;                 /* batches in flight (slots per file: nbatches x batch_cap) */
    int nthreads;                 /* decode workers */
} nh_hasher_env;

/* What a hasher tells the pipeline after create. */
typedef struct nh_hasher_info {
    nh_kind kind;          /* of its hashes (neural: the model's fingerprint and width) */
    char model_name[160];  /* neural: "name version" */
    int placeholder;       /* neural: the untrained placeholder model */
} nh_hasher_info;

/* A hasher's answer to "do you serve your kind in this job?" (nh_hasher_ops.choose). */
typedef enum nh_hasher_choice {
    NH_HASHER_NO = 0,
    NH_HASHER_YES = 1,  /* use it; failing to create fails the job */
    NH_HASHER_TRY = 2,  /* use it if it creates and says usable, else the next of its kind */
} nh_hasher_choice;

typedef struct nh_hasher_ops {
    const char *name;   /* "digest", "neural-cl", "neural-ref", "pdq-c", "pdq-cl" */
    nh_kind_type type;
    int uses_device;    /* needs env->cl */
    /* Whether it serves its kind in a job with these options; cl: the device the job has
     * open so far (NULL when none). */
    nh_hasher_choice (*choose)(const nh_pipeline_opts *o, const struct nh_cl *cl);
    /* After create, for NH_HASHER_TRY (may be NULL: usable). */
    int (*usable)(const void *self);
    nh_status (*create)(const nh_hasher_env *env, void **self, nh_hasher_info *info,
                        nh_error *err);
    void (*destroy)(void *self);
    /* NH_NEED_* for this job (after create). */
    unsigned (*needs)(const void *self);
    /* Worker w, batch b, file i: derive the input from src; a hasher without run() hashes
     * here and adds its hashes to r. Thread-safe across workers. */
    nh_status (*prepare)(void *self, int w, int b, size_t i, nh_source *src, nh_record *r,
                         nh_error *err);
    /* Pipeline thread: hash every prepared file of batch b (records with status NH_OK and
     * not skipped) in one go and add the hashes. NULL when prepare does all the work. */
    nh_status (*run)(void *self, int b, nh_record *recs, size_t n, nh_error *err);
} nh_hasher_ops;

extern const nh_hasher_ops nh_hasher_digest;
extern const nh_hasher_ops nh_hasher_neural_cl;
extern const nh_hasher_ops nh_hasher_neural_ref;
extern const nh_hasher_ops nh_hasher_pdq_c;
extern const nh_hasher_ops nh_hasher_pdq_cl;

/*
 * The hasher table (hasher_table.c), in the order kinds are hashed and records list their
 * hashes: for each kind a job computes, the first entry of that kind whose choose() says
 * yes (or try, and it proves usable) serves it.
 */
extern const nh_hasher_ops *const nh_hasher_table[];
extern const size_t nh_hasher_table_len;

/* A slot for one more hash in r (zeroed, quality -1), or NULL when the record is full. */
nh_hash *nh_record_push(nh_record *r, const nh_kind *kind, nh_variant variant);

#endif
