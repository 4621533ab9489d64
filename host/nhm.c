/*
 * nhash model files (.nhm): validation, serialization and the loader. See nhash/nhm.h and
 * docs/nhm.md for the layout. Every integer is read byte by byte as little-endian; no struct
 * is ever read from or written to the file as raw memory. The loader treats the file as
 * hostile: each count, offset and size is checked before use, in 64-bit arithmetic that
 * cannot overflow for the limits in nhm.h.
 */
#include "nhash/nhm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* Header field offsets (docs/nhm.md). */
enum {
    H_MAGIC = 0,
    H_VERSION = 8,
    H_HEADER_SIZE = 12,
    H_FILE_SIZE = 16,
    H_FINGERPRINT = 24,
    H_IN_C = 32,
    H_IN_H = 36,
    H_IN_W = 40,
    H_PREPROCESS = 44,
    H_OUT_DIM = 48,
    H_HASH_BITS = 52,
    H_N_NODES = 56,
    H_NODE_SIZE = 60,
    H_NODES_OFF = 64,
    H_WEIGHTS_OFF = 72,
    H_N_WEIGHTS = 80,
    H_SEED_OFF = 88,
    H_NAME = 96,
    H_MVERSION = 160,
    H_WFORMAT = 192,
    H_RESERVED = 196,
};

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    put_u32(p, v);
}

/* binary16 <-> binary32, bit-exact: round to nearest even on the way down. */
static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (exp == 0xff)
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        unsigned shift = (unsigned)(14 - e);
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (uint32_t)e << 10 | man >> 13, rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
        h++; /* may carry into the exponent, which is right (up to infinity) */
    return (uint16_t)(sign | h);
}

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, x;
    if (exp == 0x1f) {
        x = sign | 0x7f800000u | man << 13;
    } else if (exp == 0) {
        if (!man) {
            x = sign;
        } else {
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            x = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
        }
    } else {
        x = sign | (exp - 15 + 127) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

nh_status nh_model_to_f16(nh_model *m, double *max_rel, nh_error *err)
{
    double worst = 0;
    for (uint32_t k = 0; k < m->n_weights; k++) {
        float w = m->weights[k];
        if (!(fabsf(w) < 65520.0f))
            return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL,
                                "weight %u (%g) is out of binary16 range", k, (double)w);
        float r = f16_to_f32(f32_to_f16(w));
        if (w != 0.0f) {
            double rel = fabs((double)r - (double)w) / fabs((double)w);
            if (rel > worst)
                worst = rel;
        }
        m->weights[k] = r;
    }
    m->weight_format = NH_NHM_WEIGHTS_F16;
    if (max_rel)
        *max_rel = worst;
    return NH_OK;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static float get_f32(const uint8_t *p)
{
    uint32_t v = get_u32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

const char *nh_op_name(uint32_t op)
{
    switch (op) {
    case NH_OP_CONV:
        return "conv";
    case NH_OP_INORM:
        return "inorm";
    case NH_OP_ACT:
        return "act";
    case NH_OP_GAP:
        return "gap";
    case NH_OP_MUL:
        return "mul";
    case NH_OP_ADD:
        return "add";
    default:
        return "unknown";
    }
}

const char *nh_act_name(uint32_t act)
{
    switch (act) {
    case NH_ACT_NONE:
        return "none";
    case NH_ACT_RELU:
        return "relu";
    case NH_ACT_HSWISH:
        return "hswish";
    case NH_ACT_HSIGMOID:
        return "hsigmoid";
    default:
        return "unknown";
    }
}

nh_status nh_model_new(nh_model **out, nh_error *err)
{
    nh_model *m = calloc(1, sizeof *m);
    if (!m)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    snprintf(m->version, sizeof m->version, "1");
    *out = m;
    return NH_OK;
}

void nh_model_destroy(nh_model *m)
{
    if (!m)
        return;
    free(m->nodes);
    free(m->weights);
    free(m->seed);
    free(m->shapes);
    free(m);
}

static nh_status bad(nh_error *err, const char *fmt, uint32_t i, const char *what)
{
    (void)fmt;
    return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL, "node %u: %s", i, what);
}

/* Check one node against the shapes of the tensors before it; fills *os. */
static nh_status check_node(const nh_model *m, uint32_t i, const nh_shape *shapes, nh_shape *os,
                            nh_error *err)
{
    const nh_node *nd = &m->nodes[i];
    const char *fmt = "node %u: %s";
    uint32_t op = nd->op;
    if (op < NH_OP_CONV || op > NH_OP_ADD)
        return bad(err, fmt, i, "unknown op");
    int two = op == NH_OP_MUL || op == NH_OP_ADD;
    if (nd->in[0] > i)
        return bad(err, fmt, i, "input 0 is not an earlier tensor");
    if (two ? nd->in[1] > i : nd->in[1] != NH_NO_TENSOR)
        return bad(err, fmt, i, two ? "input 1 is not an earlier tensor" : "unexpected input 1");
    nh_shape s = shapes[nd->in[0]];
    int is_conv = op == NH_OP_CONV;
    if (!is_conv && (nd->out_c || nd->kh || nd->kw || nd->stride || nd->pad[0] || nd->pad[1] ||
                     nd->pad[2] || nd->pad[3] || nd->groups))
        return bad(err, fmt, i, "conv fields set on a non-conv op");
    if (op != NH_OP_INORM && nd->eps != 0.0f)
        return bad(err, fmt, i, "eps set on a non-norm op");
    if (op != NH_OP_CONV && op != NH_OP_ACT && nd->aux)
        return bad(err, fmt, i, "aux set on an op without one");
    uint64_t want_w = 0;
    switch (op) {
    case NH_OP_CONV: {
        if (nd->out_c == 0 || nd->out_c > NH_NHM_MAX_CHANNELS)
            return bad(err, fmt, i, "conv out channels out of range");
        if (nd->kh == 0 || nd->kw == 0 || nd->kh > NH_NHM_MAX_KERNEL || nd->kw > NH_NHM_MAX_KERNEL)
            return bad(err, fmt, i, "conv kernel size out of range");
        if (nd->stride == 0 || nd->stride > NH_NHM_MAX_STRIDE)
            return bad(err, fmt, i, "conv stride out of range");
        if (nd->pad[0] >= nd->kh || nd->pad[2] >= nd->kh || nd->pad[1] >= nd->kw ||
            nd->pad[3] >= nd->kw)
            return bad(err, fmt, i, "conv padding not smaller than the kernel");
        if (nd->groups == 0 || s.c % nd->groups || nd->out_c % nd->groups)
            return bad(err, fmt, i, "conv groups do not divide the channels");
        if (nd->aux > 1)
            return bad(err, fmt, i, "conv bias flag not 0 or 1");
        uint64_t ph = (uint64_t)s.h + nd->pad[0] + nd->pad[2];
        uint64_t pw = (uint64_t)s.w + nd->pad[1] + nd->pad[3];
        if (ph < nd->kh || pw < nd->kw)
            return bad(err, fmt, i, "conv kernel larger than the padded input");
        os->c = nd->out_c;
        os->h = (uint32_t)((ph - nd->kh) / nd->stride + 1);
        os->w = (uint32_t)((pw - nd->kw) / nd->stride + 1);
        want_w =
            (uint64_t)nd->out_c * (s.c / nd->groups) * nd->kh * nd->kw + (nd->aux ? nd->out_c : 0);
        break;
    }
    case NH_OP_INORM:
        if (!(nd->eps > 0.0f) || !isfinite(nd->eps) || nd->eps > 1.0f)
            return bad(err, fmt, i, "inorm eps not in (0, 1]");
        *os = s;
        want_w = 2ull * s.c;
        break;
    case NH_OP_ACT:
        if (nd->aux < NH_ACT_RELU || nd->aux > NH_ACT_HSIGMOID)
            return bad(err, fmt, i, "unknown activation");
        *os = s;
        break;
    case NH_OP_GAP:
        os->c = s.c;
        os->h = os->w = 1;
        break;
    case NH_OP_MUL: {
        nh_shape b = shapes[nd->in[1]];
        if (b.c != s.c || !((b.h == s.h && b.w == s.w) || (b.h == 1 && b.w == 1)))
            return bad(err, fmt, i, "mul operands do not broadcast");
        *os = s;
        break;
    }
    case NH_OP_ADD: {
        nh_shape b = shapes[nd->in[1]];
        if (b.c != s.c || b.h != s.h || b.w != s.w)
            return bad(err, fmt, i, "add operands differ in shape");
        *os = s;
        break;
    }
    }
    if (nd->w_len != want_w)
        return bad(err, fmt, i, "weight count does not match the op");
    if (nd->w_len == 0 && nd->w_off != 0)
        return bad(err, fmt, i, "weight offset set on a node without weights");
    if ((uint64_t)nd->w_off + nd->w_len > m->n_weights)
        return bad(err, fmt, i, "weights run past the weight table");
    if (nh_shape_size(*os) > NH_NHM_MAX_TENSOR)
        return bad(err, fmt, i, "output tensor too large");
    return NH_OK;
}

static nh_status check_text(const char *s, size_t cap, const char *what, nh_error *err)
{
    if (!memchr(s, '\0', cap))
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                            "%s is not NUL-terminated", what);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                                "%s has control characters", what);
    return NH_OK;
}

/* Everything but the fingerprint. */
static nh_status validate_fields(nh_model *m, nh_error *err)
{
    nh_status st;
    if ((st = check_text(m->name, sizeof m->name, "model name", err)) != NH_OK ||
        (st = check_text(m->version, sizeof m->version, "model version", err)) != NH_OK)
        return st;
    if (m->in_c == 0 || m->in_c > NH_NHM_MAX_CHANNELS || m->in_h == 0 ||
        m->in_h > NH_NHM_MAX_SIDE || m->in_w == 0 || m->in_w > NH_NHM_MAX_SIDE ||
        nh_shape_size((nh_shape){m->in_c, m->in_h, m->in_w}) > NH_NHM_MAX_TENSOR)
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                            "input size %ux%ux%u out of range", m->in_c, m->in_h, m->in_w);
    if (m->preprocess > NH_PRE_PM1 || (m->preprocess == NH_PRE_PM1 && m->in_c != 3))
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                            "unknown preprocessing mode %u for %u channels", m->preprocess,
                            m->in_c);
    if (m->n_nodes == 0 || m->n_nodes > NH_NHM_MAX_NODES || !m->nodes)
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                            "node count %u out of range", m->n_nodes);
    if (m->n_weights > NH_NHM_MAX_WEIGHTS || (m->n_weights && !m->weights))
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                            "weight count %u out of range", m->n_weights);
    if (m->hash_bits > NH_NHM_MAX_HASH_BITS || m->hash_bits % 8 || (m->hash_bits && !m->seed))
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                            "hash length %u bits not a multiple of 8 up to %u", m->hash_bits,
                            NH_NHM_MAX_HASH_BITS);
    for (uint32_t k = 0; k < m->n_weights; k++)
        if (!isfinite(m->weights[k]))
            return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                                "weight %u is not finite", k);
    nh_shape *shapes = calloc((size_t)m->n_nodes + 1, sizeof *shapes);
    if (!shapes)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    shapes[0] = (nh_shape){m->in_c, m->in_h, m->in_w};
    uint64_t next_w = 0;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        if ((st = check_node(m, i, shapes, &shapes[i + 1], err)) != NH_OK)
            goto fail;
        /* Weights are stored in node order, back to back: no overlap, no gap. */
        if (m->nodes[i].w_len && m->nodes[i].w_off != next_w) {
            st = bad(err, "node %u: %s", i, "weights not stored in node order");
            goto fail;
        }
        next_w += m->nodes[i].w_len;
    }
    if (next_w != m->n_weights) {
        st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                          "weight table has %u floats, the nodes use %llu", m->n_weights,
                          (unsigned long long)next_w);
        goto fail;
    }
    size_t last = nh_shape_size(shapes[m->n_nodes]);
    if (m->out_dim == 0 && !m->seed)
        m->out_dim = (uint32_t)last;
    if (last != m->out_dim) {
        st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                          "output dimension %u does not match the last node (%zu)", m->out_dim,
                          last);
        goto fail;
    }
    if (m->hash_bits && (uint64_t)m->hash_bits * m->out_dim > NH_NHM_MAX_WEIGHTS) {
        st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL, "seed too large");
        goto fail;
    }
    for (uint64_t k = 0; k < (uint64_t)m->hash_bits * m->out_dim; k++)
        if (!isfinite(m->seed[k])) {
            st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                              "seed value %llu is not finite", (unsigned long long)k);
            goto fail;
        }
    free(m->shapes);
    m->shapes = shapes;
    return NH_OK;
fail:
    free(shapes);
    return st;
}

static uint64_t align64(uint64_t v)
{
    return (v + 63) & ~(uint64_t)63;
}

/* Serialize without validation; fingerprint field written as given. */
static nh_status serialize(const nh_model *m, uint64_t fingerprint, uint8_t **out, size_t *len,
                           nh_error *err)
{
    uint64_t nodes_off = NH_NHM_HEADER_SIZE;
    uint64_t weights_off = align64(nodes_off + (uint64_t)m->n_nodes * NH_NHM_NODE_SIZE);
    unsigned wsz = m->weight_format == NH_NHM_WEIGHTS_F16 ? 2 : 4;
    uint64_t seed_off = align64(weights_off + (uint64_t)m->n_weights * wsz);
    uint64_t size = seed_off + (uint64_t)m->hash_bits * m->out_dim * 4;
    uint8_t *b = calloc(1, (size_t)size);
    if (!b)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    memcpy(b + H_MAGIC, NH_NHM_MAGIC, 8);
    put_u32(b + H_VERSION, NH_NHM_VERSION);
    put_u32(b + H_HEADER_SIZE, NH_NHM_HEADER_SIZE);
    put_u64(b + H_FILE_SIZE, size);
    put_u64(b + H_FINGERPRINT, fingerprint);
    put_u32(b + H_IN_C, m->in_c);
    put_u32(b + H_IN_H, m->in_h);
    put_u32(b + H_IN_W, m->in_w);
    put_u32(b + H_PREPROCESS, m->preprocess);
    put_u32(b + H_OUT_DIM, m->out_dim);
    put_u32(b + H_HASH_BITS, m->hash_bits);
    put_u32(b + H_N_NODES, m->n_nodes);
    put_u32(b + H_NODE_SIZE, NH_NHM_NODE_SIZE);
    put_u64(b + H_NODES_OFF, nodes_off);
    put_u64(b + H_WEIGHTS_OFF, weights_off);
    put_u64(b + H_N_WEIGHTS, m->n_weights);
    put_u64(b + H_SEED_OFF, seed_off);
    put_u32(b + H_WFORMAT, m->weight_format);
    memcpy(b + H_NAME, m->name, strnlen(m->name, NH_NHM_NAME_MAX - 1));
    memcpy(b + H_MVERSION, m->version, strnlen(m->version, NH_NHM_MVERSION_MAX - 1));
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const nh_node *nd = &m->nodes[i];
        uint8_t *p = b + nodes_off + (uint64_t)i * NH_NHM_NODE_SIZE;
        put_u32(p + 0, nd->op);
        put_u32(p + 4, nd->in[0]);
        put_u32(p + 8, nd->in[1]);
        put_u32(p + 12, nd->out_c);
        put_u32(p + 16, nd->kh);
        put_u32(p + 20, nd->kw);
        put_u32(p + 24, nd->stride);
        for (int k = 0; k < 4; k++)
            put_u32(p + 28 + 4 * k, nd->pad[k]);
        put_u32(p + 44, nd->groups);
        put_u32(p + 48, nd->aux);
        put_f32(p + 52, nd->eps);
        put_u32(p + 56, nd->w_off);
        put_u32(p + 60, nd->w_len);
    }
    for (uint32_t k = 0; k < m->n_weights; k++) {
        if (wsz == 2) {
            uint16_t h = f32_to_f16(m->weights[k]);
            b[weights_off + 2ull * k] = (uint8_t)h;
            b[weights_off + 2ull * k + 1] = (uint8_t)(h >> 8);
        } else {
            put_f32(b + weights_off + 4ull * k, m->weights[k]);
        }
    }
    for (uint64_t k = 0; k < (uint64_t)m->hash_bits * m->out_dim; k++)
        put_f32(b + seed_off + 4 * k, m->seed[k]);
    *out = b;
    *len = (size_t)size;
    return NH_OK;
}

nh_status nh_model_validate(nh_model *m, nh_error *err)
{
    nh_status st = validate_fields(m, err);
    if (st != NH_OK)
        return st;
    uint8_t *b = NULL;
    size_t len = 0;
    if ((st = serialize(m, 0, &b, &len, err)) != NH_OK)
        return st;
    m->fingerprint = XXH64(b, len, 0);
    free(b);
    return NH_OK;
}

nh_status nh_model_serialize(const nh_model *m, uint8_t **out, size_t *len, nh_error *err)
{
    if (!m->shapes)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL, "model not validated");
    return serialize(m, m->fingerprint, out, len, err);
}

nh_status nh_model_save(const nh_model *m, const char *path, nh_error *err)
{
    uint8_t *b = NULL;
    size_t len = 0;
    nh_status st = nh_model_serialize(m, &b, &len, err);
    if (st != NH_OK)
        return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        st = nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path, "cannot create: %s",
                          strerror(errno));
        goto cleanup;
    }
    if (fwrite(b, 1, len, f) != len) {
        st = nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path, "cannot write: %s",
                          strerror(errno));
        fclose(f);
        goto cleanup;
    }
    if (fclose(f) != 0)
        st = nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path, "cannot write: %s",
                          strerror(errno));
cleanup:
    free(b);
    return st;
}

static nh_status fmt_err(nh_error *err, const char *name, const char *what)
{
    return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, name, "not a valid model: %s",
                        what);
}

/* Is a text field of cap bytes zero from its first NUL to its end? (One without a NUL is
 * check_text's to report.) */
static int nul_padded(const uint8_t *p, size_t cap)
{
    const uint8_t *z = memchr(p, 0, cap);
    for (; z && z < p + cap; z++)
        if (*z)
            return 0;
    return 1;
}

/* [off, off + size) lies inside [lo, len)? All values < 2^64 without overflow. */
static int in_range(uint64_t off, uint64_t size, uint64_t lo, uint64_t len)
{
    return off >= lo && off <= len && size <= len - off;
}

nh_status nh_model_load_buffer(const void *data, size_t len, const char *name, nh_model **out,
                               nh_error *err)
{
    const uint8_t *b = data;
    nh_model *m = NULL;
    nh_status st = NH_OK;
    if (len < NH_NHM_HEADER_SIZE)
        return fmt_err(err, name, "shorter than the header");
    if (memcmp(b + H_MAGIC, NH_NHM_MAGIC, 8) != 0)
        return fmt_err(err, name, "bad magic (not an .nhm file)");
    if (get_u32(b + H_VERSION) != NH_NHM_VERSION)
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, name,
                            "unsupported model version %u (this build reads %u)",
                            get_u32(b + H_VERSION), NH_NHM_VERSION);
    if (get_u32(b + H_HEADER_SIZE) != NH_NHM_HEADER_SIZE)
        return fmt_err(err, name, "bad header size");
    if (get_u64(b + H_FILE_SIZE) != len)
        return fmt_err(err, name, "file size field does not match the file (truncated?)");
    if (get_u32(b + H_NODE_SIZE) != NH_NHM_NODE_SIZE)
        return fmt_err(err, name, "bad node record size");
    for (size_t k = H_RESERVED; k < NH_NHM_HEADER_SIZE; k++)
        if (b[k])
            return fmt_err(err, name, "reserved header bytes are not zero");
    uint32_t wformat = get_u32(b + H_WFORMAT);
    if (wformat != NH_NHM_WEIGHTS_F32 && wformat != NH_NHM_WEIGHTS_F16)
        return fmt_err(err, name, "unknown weight format");
    uint64_t wsz = wformat == NH_NHM_WEIGHTS_F16 ? 2 : 4;
    uint32_t n_nodes = get_u32(b + H_N_NODES);
    uint64_t n_weights = get_u64(b + H_N_WEIGHTS);
    uint32_t hash_bits = get_u32(b + H_HASH_BITS), out_dim = get_u32(b + H_OUT_DIM);
    uint64_t nodes_off = get_u64(b + H_NODES_OFF), weights_off = get_u64(b + H_WEIGHTS_OFF);
    uint64_t seed_off = get_u64(b + H_SEED_OFF);
    if (n_nodes == 0 || n_nodes > NH_NHM_MAX_NODES)
        return fmt_err(err, name, "node count out of range");
    if (n_weights > NH_NHM_MAX_WEIGHTS)
        return fmt_err(err, name, "weight count out of range");
    if (hash_bits > NH_NHM_MAX_HASH_BITS || out_dim == 0 || out_dim > NH_NHM_MAX_TENSOR)
        return fmt_err(err, name, "hash length or output dimension out of range");
    uint64_t nodes_size = (uint64_t)n_nodes * NH_NHM_NODE_SIZE;
    uint64_t weights_size = n_weights * wsz, seed_size = (uint64_t)hash_bits * out_dim * 4;
    if ((nodes_off | weights_off | seed_off) & 3)
        return fmt_err(err, name, "section offsets not 4-byte aligned");
    if (!in_range(nodes_off, nodes_size, NH_NHM_HEADER_SIZE, len))
        return fmt_err(err, name, "node table outside the file");
    if (!in_range(weights_off, weights_size, nodes_off + nodes_size, len))
        return fmt_err(err, name, "weights outside the file or overlapping the nodes");
    if (!in_range(seed_off, seed_size, weights_off + weights_size, len))
        return fmt_err(err, name, "seed outside the file or overlapping the weights");

    /* The checksum before anything else is believed: a flipped byte anywhere is refused. */
    uint8_t fp[8];
    memcpy(fp, b + H_FINGERPRINT, 8);
    XXH64_state_t *xs = XXH64_createState();
    if (!xs)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    static const uint8_t zero8[8];
    XXH64_reset(xs, 0);
    XXH64_update(xs, b, H_FINGERPRINT);
    XXH64_update(xs, zero8, 8);
    XXH64_update(xs, b + H_FINGERPRINT + 8, len - H_FINGERPRINT - 8);
    uint64_t h = XXH64_digest(xs);
    XXH64_freeState(xs);
    if (h != get_u64(fp))
        return fmt_err(err, name, "fingerprint mismatch (corrupt file)");

    if ((st = nh_model_new(&m, err)) != NH_OK)
        return st;
    memcpy(m->name, b + H_NAME, NH_NHM_NAME_MAX);
    memcpy(m->version, b + H_MVERSION, NH_NHM_MVERSION_MAX);
    m->in_c = get_u32(b + H_IN_C);
    m->in_h = get_u32(b + H_IN_H);
    m->in_w = get_u32(b + H_IN_W);
    m->preprocess = get_u32(b + H_PREPROCESS);
    m->out_dim = out_dim;
    m->hash_bits = hash_bits;
    m->n_nodes = n_nodes;
    m->n_weights = (uint32_t)n_weights;
    m->nodes = calloc(n_nodes, sizeof *m->nodes);
    m->weights = malloc(n_weights ? (size_t)n_weights * 4 : 1);
    m->seed = malloc(seed_size ? (size_t)seed_size : 1);
    if (!m->nodes || !m->weights || !m->seed) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, name, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < n_nodes; i++) {
        const uint8_t *p = b + nodes_off + (uint64_t)i * NH_NHM_NODE_SIZE;
        nh_node *nd = &m->nodes[i];
        nd->op = get_u32(p + 0);
        nd->in[0] = get_u32(p + 4);
        nd->in[1] = get_u32(p + 8);
        nd->out_c = get_u32(p + 12);
        nd->kh = get_u32(p + 16);
        nd->kw = get_u32(p + 20);
        nd->stride = get_u32(p + 24);
        for (int k = 0; k < 4; k++)
            nd->pad[k] = get_u32(p + 28 + 4 * k);
        nd->groups = get_u32(p + 44);
        nd->aux = get_u32(p + 48);
        nd->eps = get_f32(p + 52);
        nd->w_off = get_u32(p + 56);
        nd->w_len = get_u32(p + 60);
    }
    m->weight_format = wformat;
    for (uint64_t k = 0; k < n_weights; k++)
        m->weights[k] = wsz == 2 ? f16_to_f32((uint16_t)(b[weights_off + 2 * k] |
                                                          b[weights_off + 2 * k + 1] << 8))
                                 : get_f32(b + weights_off + 4 * k);
    for (uint64_t k = 0; k < seed_size / 4; k++)
        m->seed[k] = get_f32(b + seed_off + 4 * k);
    if ((st = validate_fields(m, err)) != NH_OK) {
        if (err)
            snprintf(err->path, sizeof err->path, "%s", name ? name : "");
        goto fail;
    }
    /* Canonical layout only: the file must be exactly what we would write. */
    if (!nul_padded(b + H_NAME, NH_NHM_NAME_MAX)) {
        st = fmt_err(err, name, "model name is not NUL-padded after its terminator");
        goto fail;
    }
    if (!nul_padded(b + H_MVERSION, NH_NHM_MVERSION_MAX)) {
        st = fmt_err(err, name, "model version is not NUL-padded after its terminator");
        goto fail;
    }
    if (nodes_off != NH_NHM_HEADER_SIZE || weights_off != align64(nodes_off + nodes_size) ||
        seed_off != align64(weights_off + weights_size) || len != seed_off + seed_size) {
        st = fmt_err(err, name, "sections not in canonical layout");
        goto fail;
    }
    for (uint64_t k = nodes_off + nodes_size; k < weights_off; k++)
        if (b[k]) {
            st = fmt_err(err, name, "padding bytes are not zero");
            goto fail;
        }
    for (uint64_t k = weights_off + weights_size; k < seed_off; k++)
        if (b[k]) {
            st = fmt_err(err, name, "padding bytes are not zero");
            goto fail;
        }
    m->fingerprint = h;
    *out = m;
    return NH_OK;
fail:
    nh_model_destroy(m);
    return st;
}

nh_status nh_model_load(const char *path, nh_model **out, nh_error *err)
{
    nh_status st = NH_OK;
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return nh_error_set(err, errno == ENOENT ? NH_ERR_NOT_FOUND : NH_ERR_IO, NH_FOREIGN_ERRNO,
                            errno, path, "cannot open: %s", strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        st = nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path, "cannot seek");
        goto cleanup;
    }
    long size = ftell(f);
    if (size < 0 || (unsigned long)size > (unsigned long)NH_NHM_MAX_WEIGHTS * 8ul) {
        st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, path, "file too large");
        goto cleanup;
    }
    rewind(f);
    buf = malloc(size ? (size_t)size : 1);
    if (!buf) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, path, "out of memory");
        goto cleanup;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        st = nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path, "cannot read");
        goto cleanup;
    }
    st = nh_model_load_buffer(buf, (size_t)size, path, out, err);
cleanup:
    free(buf);
    fclose(f);
    return st;
}

uint64_t nh_model_macs(const nh_model *m)
{
    uint64_t t = 0;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const nh_node *nd = &m->nodes[i];
        nh_shape is = m->shapes[nd->in[0]], os = m->shapes[i + 1];
        if (nd->op == NH_OP_CONV)
            t += (uint64_t)nh_shape_size(os) * (is.c / nd->groups) * nd->kh * nd->kw;
        else if (nd->op == NH_OP_INORM)
            t += 2 * (uint64_t)nh_shape_size(os);
        else
            t += nh_shape_size(os);
    }
    return t;
}
