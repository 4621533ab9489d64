/*
 * nhash model files (.nhm): the layer graph, weights and hash projection of a perceptual
 * hashing network, in explicit little-endian fixed-width fields (docs/nhm.md has the
 * layout field by field).
 *
 * A model is a list of nodes in execution order over tensors numbered by position: tensor
 * 0 is the preprocessed input image (in_c x in_h x in_w), node i writes tensor i + 1, and a
 * node may read only tensors produced before it. Every tensor is per image C x H x W
 * float32, planar (NCHW over a batch). The output of the network is the last node's
 * tensor, out_dim = C * H * W values per image. hash_bits rows of out_dim float32 form the
 * seed projection: score[r] = sum_k seed[r][k] * out[k] (in double), bit r = score >= 0,
 * bit 0 the most significant bit of byte 0.
 *
 * Ops (all shapes checked by nh_model_validate):
 *   CONV   in[0]; out_c x (c / groups) x kh x kw weights, then out_c biases if aux == 1;
 *          stride, pads (top, left, bottom, right) in zeros; groups divides c and out_c.
 *   INORM  in[0]; per image and channel mean and biased variance over H x W at run time,
 *          y = (x - mean) / sqrt(var + eps) * gamma + beta; weights gamma[c], beta[c].
 *   ACT    in[0]; aux = nh_act: ReLU, HardSwish x*clip(x+3,0,6)/6, HardSigmoid clip(x+3,0,6)/6.
 *   GAP    in[0]; global average over H x W -> c x 1 x 1.
 *   MUL    in[0] * in[1], in[1] the same shape or c x 1 x 1 (broadcast over H x W).
 *   ADD    in[0] + in[1], the same shape.
 */
#ifndef NHASH_NHM_H
#define NHASH_NHM_H

#include <stddef.h>
#include <stdint.h>

#include "nhash/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NH_NHM_MAGIC "NHMODEL\x1a"
#define NH_NHM_VERSION 1u
#define NH_NHM_HEADER_SIZE 256u
#define NH_NHM_NODE_SIZE 64u
#define NH_NHM_NAME_MAX 64u
#define NH_NHM_MVERSION_MAX 32u
#define NH_NO_TENSOR 0xFFFFFFFFu

/* Loader limits: a file beyond them is refused, whatever its checksum says. */
#define NH_NHM_MAX_NODES 4096u
#define NH_NHM_MAX_CHANNELS 65536u
#define NH_NHM_MAX_SIDE 4096u
#define NH_NHM_MAX_KERNEL 15u
#define NH_NHM_MAX_STRIDE 4u
#define NH_NHM_MAX_TENSOR (1u << 26)  /* floats per image in any tensor */
#define NH_NHM_MAX_WEIGHTS (1u << 28) /* floats in the whole model */
#define NH_NHM_MAX_HASH_BITS 1024u

typedef enum nh_op {
    NH_OP_CONV = 1,
    NH_OP_INORM = 2,
    NH_OP_ACT = 3,
    NH_OP_GAP = 4,
    NH_OP_MUL = 5,
    NH_OP_ADD = 6,
} nh_op;

typedef enum nh_act {
    NH_ACT_NONE = 0,
    NH_ACT_RELU = 1,
    NH_ACT_HSWISH = 2,
    NH_ACT_HSIGMOID = 3,
} nh_act;

/* How uint8 RGB pixels become the input tensor. */
typedef enum nh_preprocess {
    NH_PRE_NONE = 0, /* float input only (test models); uint8 runs are refused */
    NH_PRE_PM1 = 1,  /* v -> ((float)v / 255.0f) * 2.0f - 1.0f, float32 arithmetic */
} nh_preprocess;

typedef struct nh_node {
    uint32_t op;    /* nh_op */
    uint32_t in[2]; /* tensor ids; in[1] = NH_NO_TENSOR unless MUL or ADD */
    uint32_t out_c; /* CONV only */
    uint32_t kh, kw, stride;
    uint32_t pad[4]; /* CONV: top, left, bottom, right */
    uint32_t groups; /* CONV */
    uint32_t aux;    /* CONV: 1 = has bias; ACT: nh_act */
    float eps;       /* INORM */
    uint32_t w_off;  /* first float of this node's weights in nh_model.weights */
    uint32_t w_len;  /* number of floats */
} nh_node;

typedef struct nh_shape {
    uint32_t c, h, w;
} nh_shape;

/*
 * A model in memory. All arrays are owned by the model (nh_model_destroy frees them).
 * Importers fill the fields and call nh_model_validate, which checks everything the loader
 * checks and fills shapes and fingerprint.
 */
typedef struct nh_model {
    char name[NH_NHM_NAME_MAX];        /* NUL-terminated UTF-8 */
    char version[NH_NHM_MVERSION_MAX]; /* NUL-terminated UTF-8 */
    uint32_t in_c, in_h, in_w;
    uint32_t preprocess; /* nh_preprocess */
    uint32_t out_dim;    /* C*H*W of the last tensor (0 before
                            validation: filled in when there is no seed) */
    uint32_t hash_bits;  /* rows of seed; 0 = no projection */
    uint32_t n_nodes;
    nh_node *nodes;
    uint32_t n_weights;
    float *weights;
    float *seed; /* hash_bits x out_dim, row-major */
    uint32_t weight_format; /* storage in the file: NH_NHM_WEIGHTS_F32 or NH_NHM_WEIGHTS_F16 */
    /* Filled by nh_model_validate / the loader: */
    nh_shape *shapes;     /* n_nodes + 1 tensor shapes, [0] the input */
    uint64_t fingerprint; /* XXH64 of the serialized file, see docs/nhm.md */
} nh_model;

/* Allocate an empty model (all zero, version "1"). *out returned-owned. */
/* Weight storage formats (header offset 192). In memory weights are always float32. */
#define NH_NHM_WEIGHTS_F32 0u
#define NH_NHM_WEIGHTS_F16 1u /* IEEE binary16: half the size; widened exactly on load */

/*
 * Round every weight to the nearest binary16 value (ties to even) and mark the model to be
 * stored as F16, so the model in memory is exactly what the file will hold. The seed stays
 * float32. *max_rel (may be NULL): the largest relative change of a weight (0 when every
 * weight was already a binary16 value). NH_ERR_INVALID when a weight is out of binary16's
 * range.
 */
nh_status nh_model_to_f16(nh_model *m, double *max_rel, nh_error *err);

nh_status nh_model_new(nh_model **out, nh_error *err);
/* Free a model and everything it owns. NULL is a no-op. */
void nh_model_destroy(nh_model *m);

/*
 * Check every field for consistency (counts, shapes per op, weight ranges, finite values,
 * limits), compute tensor shapes into m->shapes and the content fingerprint. NH_ERR_FORMAT
 * with a message naming the node on any inconsistency.
 */
nh_status nh_model_validate(nh_model *m, nh_error *err);

/*
 * Serialize a validated model to the .nhm byte layout. *out returned-owned (free()),
 * *len its size.
 */
nh_status nh_model_serialize(const nh_model *m, uint8_t **out, size_t *len, nh_error *err);
nh_status nh_model_save(const nh_model *m, const char *path, nh_error *err);

/*
 * Parse and validate a .nhm image (data borrowed for the call; name used in errors).
 * Corrupt, truncated or hostile input gives NH_ERR_FORMAT and a reason, never a crash.
 * *out returned-owned.
 */
nh_status nh_model_load_buffer(const void *data, size_t len, const char *name, nh_model **out,
                               nh_error *err);
nh_status nh_model_load(const char *path, nh_model **out, nh_error *err);

/* Size in floats per image of tensor t. */
static inline size_t nh_shape_size(nh_shape s)
{
    return (size_t)s.c * s.h * s.w;
}

/* Short name of an op ("conv") and of an activation ("hswish"). Never NULL. */
const char *nh_op_name(uint32_t op);
const char *nh_act_name(uint32_t act);

/* Multiply-adds per image of the whole graph (convolutions and norms counted). */
uint64_t nh_model_macs(const nh_model *m);

#ifdef __cplusplus
}
#endif
#endif
