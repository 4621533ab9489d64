/*
 * nhash net: run a model (nhash/nhm.h) over batches of images and turn its outputs into
 * hashes.
 *
 * Runners sit behind one table of function pointers (ggml-backend style), so callers and
 * tests treat the plain-C reference and the OpenCL implementation alike:
 *
 *   nh_runner *r;
 *   nh_runner_create(&nh_runner_cl, model, &opts, &r, &err);
 *   nh_runner_run(r, rgb, n, out, &err);     // n x 360 x 360 x 3 uint8 -> n x 128 float
 *   nh_runner_destroy(r);
 *
 * Buffers are sized for opts.max_batch at create time; run never allocates per image.
 * A runner is used by one thread at a time.
 */
#ifndef NHASH_NET_H
#define NHASH_NET_H

#include <stddef.h>
#include <stdint.h>

#include "nhash/cl.h"
#include "nhash/core.h"
#include "nhash/nhm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nh_runner nh_runner;

typedef struct nh_runner_opts {
    size_t max_batch; /* largest n passed to run (0 = 1) */
    nh_cl *cl;        /* OpenCL runner: borrowed, must outlive the runner */
} nh_runner_opts;

/* The backend interface. Implementations: nh_runner_ref (plain C), nh_runner_cl. */
typedef struct nh_runner_backend {
    const char *name;
    /* model borrowed: it must outlive the runner. *out returned-owned. */
    nh_status (*create)(const nh_model *m, const nh_runner_opts *opts, nh_runner **out,
                        nh_error *err);
    /* in: n x in_h x in_w x 3 uint8 interleaved RGB (borrowed);
     * out: n x out_dim float32 (caller-owned). Needs a model with a preprocess mode. */
    nh_status (*run)(nh_runner *r, const uint8_t *in, size_t n, float *out, nh_error *err);
    /* in: n x in_c x in_h x in_w float32 planar, already preprocessed; out as above. */
    nh_status (*run_f32)(nh_runner *r, const float *in, size_t n, float *out, nh_error *err);
    void (*destroy)(nh_runner *r);
} nh_runner_backend;

extern const nh_runner_backend nh_runner_ref;
extern const nh_runner_backend nh_runner_cl;

/* Every runner struct starts with this; the wrappers below dispatch through it. */
struct nh_runner {
    const nh_runner_backend *backend;
    const nh_model *model;
    size_t max_batch;
};

nh_status nh_runner_create(const nh_runner_backend *b, const nh_model *m,
                           const nh_runner_opts *opts, nh_runner **out, nh_error *err);
nh_status nh_runner_run(nh_runner *r, const uint8_t *in, size_t n, float *out, nh_error *err);
nh_status nh_runner_run_f32(nh_runner *r, const float *in, size_t n, float *out, nh_error *err);
void nh_runner_destroy(nh_runner *r);

/*
 * The uint8 -> float table of a preprocess mode (256 entries). NH_ERR_UNSUPPORTED for
 * NH_PRE_NONE.
 */
nh_status nh_net_preprocess_lut(uint32_t mode, float lut[256], nh_error *err);

/*
 * Project n outputs (n x m->out_dim) through the seed: hashes n x (hash_bits / 8) bytes,
 * big-endian bit order (bit 0 = MSB of byte 0 = score[0] >= 0); scores accumulated in
 * double. min_abs (may be NULL): n values, the smallest |score| of each image, how close
 * the nearest bit came to flipping. scores (may be NULL): n x hash_bits doubles.
 */
nh_status nh_net_hash(const nh_model *m, const float *out, size_t n, uint8_t *hashes,
                      double *min_abs, double *scores, nh_error *err);

/*
 * Execution plan shared by the runners: which buffer slot holds each tensor and how big
 * each slot is per image. Elementwise ops may run in place when their input dies there.
 */
typedef struct nh_net_plan {
    uint32_t n_slots;
    uint32_t *slot;      /* n_nodes + 1 entries: tensor -> slot */
    size_t *slot_floats; /* n_slots entries: floats per image */
} nh_net_plan;

nh_status nh_net_plan_build(const nh_model *m, nh_net_plan *plan, nh_error *err);
void nh_net_plan_free(nh_net_plan *plan);

/* ONNX import (host/onnx_import.c). */
typedef struct nh_onnx_opts {
    uint32_t in_h, in_w; /* input size (0 = 360) */
    const char *name;    /* model name (NULL = the ONNX graph name) */
    const char *version; /* model version (NULL = "1") */
} nh_onnx_opts;

/*
 * Convert an ONNX model (onnx borrowed for the call) to a validated nhash model with
 * NH_PRE_PM1 preprocessing. seed: seed_rows x out_dim floats (borrowed; NULL = no hash).
 * An unsupported graph gives NH_ERR_UNSUPPORTED naming the node and op. *out returned-owned.
 */
nh_status nh_onnx_import(const void *onnx, size_t onnx_len, const float *seed, uint32_t seed_rows,
                         const nh_onnx_opts *opts, nh_model **out, nh_error *err);

/*
 * Parse a nnhash.py seed file: a 128-byte header, then rows x out_dim little-endian
 * float32, rows a multiple of 8. *seed returned-owned (free()).
 */
nh_status nh_onnx_read_seed(const void *data, size_t len, uint32_t out_dim, float **seed,
                            uint32_t *rows, nh_error *err);

/* Plain-C reference ops on batches (planar NCHW), built with -ffp-contract=off. The
 * OpenCL kernels are tested against these. y may equal x for act/inorm. */
void nh_ref_conv(const nh_node *nd, nh_shape is, nh_shape os, const float *w, size_t n,
                 const float *x, float *y);
void nh_ref_inorm(nh_shape s, const float *gamma, const float *beta, float eps, size_t n,
                  const float *x, float *y);
void nh_ref_act(uint32_t act, size_t count, const float *x, float *y);
void nh_ref_gap(nh_shape s, size_t n, const float *x, float *y);
void nh_ref_mul(nh_shape s, nh_shape s1, size_t n, const float *a, const float *b, float *y);
void nh_ref_add(size_t count, const float *a, const float *b, float *y);

#ifdef __cplusplus
}
#endif
#endif
