/*
 * nhash net: ONNX -> nhash model. Parses the protobuf with protobuf-c (host/onnx_min.proto
 * declares the few ONNX messages read) and maps the graph onto nhash's ops, recognising
 * the patterns that torch.onnx.export and the community conversion of Apple's model
 * produce:
 *
 *   Conv (pads, auto_pad, group) and a separate zero Pad folded into it; depthwise convs
 *   split into per-channel convs (Split -> Conv x C -> Concat) joined back into one;
 *   InstanceNormalization; Relu; HardSwish / HardSigmoid and their decompositions into
 *   Add / Clip / Min / Max / Relu / Div / Mul; GlobalAveragePool and ReduceMean over H, W;
 *   broadcast Mul; Add (residual, or a bias after MatMul); Gemm / MatMul as 1x1 convs;
 *   Flatten / Reshape / Squeeze / Unsqueeze / Identity / Dropout as no-ops on C x 1 x 1.
 *
 * Anything else is refused with the node's name and op type.
 *
 * Elementwise decompositions are tracked symbolically: a value is either a tensor or
 *   k * x^p * clip(x + a, lo, hi)^t   (x a tensor, p in {0,1,2}, t in {0,1})
 * and becomes a HardSigmoid (a=3, [0,6], k=1/6, p=0) or HardSwish (same, p=1) node when
 * something else consumes it.
 */
#include "nhash/net.h"
#include "nhash/nhm.h"
#include "onnx_min.pb-c.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum vkind { V_CONST, V_TENSOR, V_LAZY, V_PAD, V_SLICE, V_PCONV };

/*
 * Bounds on what a small file can make the importer allocate. Constants read from the file
 * cost about what they take in it, but folding creates new ones (ConstantOfShape, Reshape,
 * Concat, Transpose ...) whose size the file only names: a few KB could ask for GiBs. Real
 * models fold shape arithmetic (tens of values), so 2^24 floats (64 MiB) in all is far above
 * their need; the network's weights are copies of constants, at most twice what the file and
 * folding hold plus 2^20 (a broadcast bias, scale and B of an instance norm ...).
 */
#define NH_ONNX_MAX_FOLDED (1u << 24)
#define NH_ONNX_WEIGHT_SLACK (1u << 20)

typedef struct value {
    char *name;
    int kind;
    /* V_CONST */
    float *data;
    size_t count;
    int64_t dims[8];
    int ndims;
    /* V_TENSOR / V_LAZY / V_PAD / V_SLICE: the tensor below */
    uint32_t t;
    /* V_LAZY */
    float k, a, lo, hi;
    int xpow, term;
    /* V_PAD: t, l, b, r */
    uint32_t pad[4];
    /* V_SLICE: channels [c0, c0 + cn) of t; V_PCONV: a conv on such a slice */
    uint32_t c0, cn;
    nh_node pconv; /* V_PCONV: node template, weights in data/count */
} value;

typedef struct importer {
    value *v;
    size_t nv, capv;
    nh_node *nodes;
    uint32_t n_nodes, cap_nodes;
    float *w;
    size_t nw, capw;
    size_t file_elems; /* floats of the constants read from the file */
    size_t folded;     /* floats of the constants made by folding */
    nh_shape *shapes;  /* n_nodes + 1 */
    const NhOnnx__GraphProto *g;
    nh_error *err;
    const NhOnnx__NodeProto *cur;
    size_t cur_idx;
} importer;

static nh_status nomem(importer *im)
{
    return nh_error_set(im->err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
}

static nh_status refuse(importer *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static nh_status refuse(importer *im, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!im->cur)
        return nh_error_set(im->err, NH_ERR_UNSUPPORTED, NH_FOREIGN_NONE, 0, NULL, "%s", msg);
    return nh_error_set(im->err, NH_ERR_UNSUPPORTED, NH_FOREIGN_NONE, 0, NULL,
                        "node %zu '%s' (%s): %s", im->cur_idx, im->cur->name ? im->cur->name : "",
                        im->cur->op_type ? im->cur->op_type : "?", msg);
}

static value *find(importer *im, const char *name)
{
    for (size_t i = im->nv; i-- > 0;)
        if (!strcmp(im->v[i].name, name))
            return &im->v[i];
    return NULL;
}

/* Make room for k more values, so pointers into im->v stay valid while a node is mapped. */
static int reserve(importer *im, size_t k)
{
    if (im->nv + k > im->capv) {
        size_t cap = (im->nv + k) * 2;
        value *v2 = realloc(im->v, cap * sizeof *v2);
        if (!v2)
            return 0;
        im->v = v2;
        im->capv = cap;
    }
    return 1;
}

static value *add_value(importer *im, const char *name)
{
    if (im->nv == im->capv) {
        size_t cap = im->capv ? im->capv * 2 : 256;
        value *v2 = realloc(im->v, cap * sizeof *v2);
        if (!v2)
            return NULL;
        im->v = v2;
        im->capv = cap;
    }
    value *v = &im->v[im->nv];
    memset(v, 0, sizeof *v);
    v->name = strdup(name ? name : "");
    if (!v->name)
        return NULL;
    im->nv++;
    return v;
}

/* Append a node; its output tensor id is returned in *t. */
static nh_status emit(importer *im, const nh_node *nd, const float *w, size_t wn, uint32_t *t)
{
    if (im->n_nodes >= NH_NHM_MAX_NODES)
        return refuse(im, "graph has more than %s nhash nodes", "4096");
    if (im->n_nodes == im->cap_nodes) {
        uint32_t cap = im->cap_nodes ? im->cap_nodes * 2 : 128;
        nh_node *n2 = realloc(im->nodes, cap * sizeof *n2);
        nh_shape *s2 = realloc(im->shapes, (cap + 1) * sizeof *s2);
        if (n2)
            im->nodes = n2;
        if (s2)
            im->shapes = s2;
        if (!n2 || !s2)
            return nomem(im);
        im->cap_nodes = cap;
    }
    if (im->nw + wn > NH_NHM_MAX_WEIGHTS)
        return refuse(im, "%s", "too many weights");
    if (im->nw + wn > 2 * (im->file_elems + im->folded) + NH_ONNX_WEIGHT_SLACK)
        return refuse(im,
                      "network weights (%zu floats) would exceed twice the constants of the "
                      "file and of folding (%zu) plus %u",
                      im->nw + wn, im->file_elems + im->folded, NH_ONNX_WEIGHT_SLACK);
    if (im->nw + wn > im->capw) {
        size_t cap = (im->nw + wn) * 2;
        if (cap > NH_NHM_MAX_WEIGHTS)
            cap = NH_NHM_MAX_WEIGHTS;
        float *w2 = realloc(im->w, cap * sizeof *w2);
        if (!w2)
            return nomem(im);
        im->w = w2;
        im->capw = cap;
    }
    nh_node n = *nd;
    n.w_off = wn ? (uint32_t)im->nw : 0;
    n.w_len = (uint32_t)wn;
    if (wn)
        memcpy(im->w + im->nw, w, wn * sizeof *w);
    im->nw += wn;
    if (n.in[1] == 0 && n.op != NH_OP_MUL && n.op != NH_OP_ADD)
        n.in[1] = NH_NO_TENSOR;
    /* Shape of the new tensor, checked as the loader would. */
    nh_shape s = im->shapes[n.in[0]], o = s;
    switch (n.op) {
    case NH_OP_CONV: {
        uint32_t ph = s.h + n.pad[0] + n.pad[2], pw = s.w + n.pad[1] + n.pad[3];
        if (n.groups == 0 || s.c % n.groups || n.out_c % n.groups || ph < n.kh || pw < n.kw ||
            n.stride == 0)
            return refuse(im, "%s", "convolution does not fit its input");
        o.c = n.out_c;
        o.h = (ph - n.kh) / n.stride + 1;
        o.w = (pw - n.kw) / n.stride + 1;
        break;
    }
    case NH_OP_GAP:
        o.h = o.w = 1;
        break;
    default:
        break;
    }
    im->nodes[im->n_nodes] = n;
    im->shapes[im->n_nodes + 1] = o;
    *t = ++im->n_nodes;
    return NH_OK;
}

/* Constant data of a TensorProto as floats. */
static nh_status tensor_floats(importer *im, const NhOnnx__TensorProto *tp, value *v)
{
    size_t count = 1;
    if (tp->n_dims > 8)
        return refuse(im, "%s", "constant with more than 8 dimensions");
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0 || tp->dims[i] > (int64_t)NH_NHM_MAX_WEIGHTS)
            return refuse(im, "%s", "constant with a bad dimension");
        v->dims[i] = tp->dims[i];
        count *= (size_t)tp->dims[i];
        if (count > NH_NHM_MAX_WEIGHTS)
            return refuse(im, "%s", "constant too large");
    }
    v->ndims = (int)tp->n_dims;
    if (tp->has_data_location && tp->data_location == 1)
        return refuse(im, "%s",
                      "external tensor data is not supported (save the model in one file)");
    int dt = tp->has_data_type ? tp->data_type : 0;
    size_t esz = dt == 1 ? 4 : dt == 6 ? 4 : dt == 7 ? 8 : dt == 11 ? 8 : 0;
    if (!esz)
        return refuse(im, "constant of unsupported data type %s (float, int32, int64, double only)",
                      dt == 10 ? "float16" : "other");
    /* The data is checked against the dimensions before the dimensions are believed. */
    size_t have = tp->has_raw_data ? tp->raw_data.len / esz
                  : dt == 1        ? tp->n_float_data
                  : dt == 6        ? tp->n_int32_data
                  : dt == 7        ? tp->n_int64_data
                                   : tp->n_double_data;
    if (tp->has_raw_data && tp->raw_data.len != count * esz)
        return refuse(im, "%s", "raw_data size does not match the dimensions");
    if (have != count)
        return refuse(im, "%s", "constant data count does not match the dimensions");
    v->data = malloc((count ? count : 1) * sizeof(float));
    if (!v->data)
        return nomem(im);
    v->count = count;
    im->file_elems += count;
    if (tp->has_raw_data) {
        const uint8_t *p = tp->raw_data.data;
        for (size_t i = 0; i < count; i++, p += esz) {
            uint64_t u = 0;
            for (size_t b = 0; b < esz; b++)
                u |= (uint64_t)p[b] << (8 * b);
            if (dt == 1) {
                uint32_t u32 = (uint32_t)u;
                memcpy(&v->data[i], &u32, 4);
            } else if (dt == 6) {
                v->data[i] = (float)(int32_t)(uint32_t)u;
            } else if (dt == 7) {
                v->data[i] = (float)(int64_t)u;
            } else {
                double d;
                memcpy(&d, &u, 8);
                v->data[i] = (float)d;
            }
        }
        return NH_OK;
    }
    for (size_t i = 0; i < count; i++)
        v->data[i] = dt == 1   ? tp->float_data[i]
                     : dt == 6 ? (float)tp->int32_data[i]
                     : dt == 7 ? (float)tp->int64_data[i]
                               : (float)tp->double_data[i];
    return NH_OK;
}

static const NhOnnx__AttributeProto *attr(const NhOnnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name))
            return n->attribute[i];
    return NULL;
}

static int64_t attr_i(const NhOnnx__NodeProto *n, const char *name, int64_t def)
{
    const NhOnnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : def;
}

static float attr_f(const NhOnnx__NodeProto *n, const char *name, float def)
{
    const NhOnnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : def;
}

static const char *attr_s(const NhOnnx__NodeProto *n, const char *name, char *buf, size_t cap)
{
    const NhOnnx__AttributeProto *a = attr(n, name);
    if (!a || !a->has_s)
        return NULL;
    size_t l = a->s.len < cap - 1 ? a->s.len : cap - 1;
    memcpy(buf, a->s.data, l);
    buf[l] = '\0';
    return buf;
}

/* Input k of the current node, or NULL if absent/empty. */
static value *in_val(importer *im, size_t k)
{
    const NhOnnx__NodeProto *n = im->cur;
    if (k >= n->n_input || !n->input[k] || !n->input[k][0])
        return NULL;
    return find(im, n->input[k]);
}

static int near(float a, float b, float tol)
{
    return fabsf(a - b) <= tol;
}

/* A constant's value as a whole number in [lo, hi] (|lo|, |hi| <= 2^53): 0 when it is not
 * finite, not whole or out of range, where converting it would be undefined behaviour. */
static int whole(float f, int64_t lo, int64_t hi, int64_t *out)
{
    double d = f;
    if (!(d >= (double)lo && d <= (double)hi) || d != trunc(d))
        return 0;
    *out = (int64_t)d;
    return 1;
}

/* Turn a value into a tensor id, emitting an activation node for a lazy value. */
static nh_status materialize(importer *im, value *v, uint32_t *t)
{
    switch (v->kind) {
    case V_TENSOR:
        *t = v->t;
        return NH_OK;
    case V_LAZY: {
        nh_node nd = {0};
        nd.op = NH_OP_ACT;
        nd.in[0] = v->t;
        if (!v->term && v->xpow == 1 && v->k == 1.0f) {
            *t = v->t;
            return NH_OK;
        }
        if (v->term && near(v->a, 3.0f, 1e-5f) && v->lo == 0.0f && near(v->hi, 6.0f, 1e-5f) &&
            near(v->k, 1.0f / 6.0f, 1e-6f) && v->xpow <= 1)
            nd.aux = v->xpow ? NH_ACT_HSWISH : NH_ACT_HSIGMOID;
        else if (v->term && v->a == 0.0f && v->lo == 0.0f && isinf(v->hi) && v->k == 1.0f &&
                 v->xpow == 0)
            nd.aux = NH_ACT_RELU;
        else
            return refuse(im,
                          "elementwise expression on '%s' is not ReLU, HardSigmoid or HardSwish",
                          v->name);
        nh_status st = emit(im, &nd, NULL, 0, t);
        if (st == NH_OK) {
            v->kind = V_TENSOR;
            v->t = *t;
        }
        return st;
    }
    case V_CONST:
        return refuse(im, "constant '%s' used as a network tensor", v->name);
    default:
        return refuse(im, "'%s' (a pad, split or partial conv) is used by an unsupported op",
                      v->name);
    }
}

static value *out_value(importer *im, size_t k)
{
    const NhOnnx__NodeProto *n = im->cur;
    if (k >= n->n_output)
        return NULL;
    return add_value(im, n->output[k]);
}

static int is_scalar(const value *v)
{
    return v && v->kind == V_CONST && v->count == 1;
}

static nh_status out_tensor(importer *im, uint32_t t)
{
    value *o = out_value(im, 0);
    if (!o)
        return nomem(im);
    o->kind = V_TENSOR;
    o->t = t;
    return NH_OK;
}

static nh_status out_lazy(importer *im, const value *src)
{
    value tmp = *src;
    value *o = out_value(im, 0);
    if (!o)
        return nomem(im);
    char *name = o->name;
    *o = tmp;
    o->name = name;
    o->data = NULL;
    o->kind = V_LAZY;
    return NH_OK;
}

static value lazy_of_tensor(uint32_t t)
{
    value l;
    memset(&l, 0, sizeof l);
    l.kind = V_LAZY;
    l.t = t;
    l.k = 1.0f;
    l.xpow = 1;
    l.lo = -INFINITY;
    l.hi = INFINITY;
    return l;
}

static nh_status op_conv(importer *im)
{
    const NhOnnx__NodeProto *n = im->cur;
    value *x = in_val(im, 0), *w = in_val(im, 1), *b = in_val(im, 2);
    if (!x || !w || w->kind != V_CONST || w->ndims != 4 || (b && (b->kind != V_CONST)))
        return refuse(im, "%s", "needs a tensor input and constant 4-d weights");
    const NhOnnx__AttributeProto *a;
    nh_node nd = {0};
    nd.op = NH_OP_CONV;
    nd.out_c = (uint32_t)w->dims[0];
    nd.kh = (uint32_t)w->dims[2];
    nd.kw = (uint32_t)w->dims[3];
    nd.groups = (uint32_t)attr_i(n, "group", 1);
    nd.stride = 1;
    if ((a = attr(n, "strides"))) {
        if (a->n_ints != 2 || a->ints[0] != a->ints[1] || a->ints[0] < 1 || a->ints[0] > 4)
            return refuse(im, "%s", "strides must be equal and 1..4");
        nd.stride = (uint32_t)a->ints[0];
    }
    if ((a = attr(n, "dilations")))
        for (size_t i = 0; i < a->n_ints; i++)
            if (a->ints[i] != 1)
                return refuse(im, "%s", "dilated convolutions are not supported");
    if ((a = attr(n, "pads"))) {
        if (a->n_ints != 4)
            return refuse(im, "%s", "pads must have 4 values");
        for (int i = 0; i < 4; i++) {
            if (a->ints[i] < 0 || a->ints[i] > 15)
                return refuse(im, "%s", "pads out of range");
        }
        nd.pad[0] = (uint32_t)a->ints[0];
        nd.pad[1] = (uint32_t)a->ints[1];
        nd.pad[2] = (uint32_t)a->ints[2];
        nd.pad[3] = (uint32_t)a->ints[3];
    }
    if (nd.kh == 0 || nd.kw == 0 || nd.kh > NH_NHM_MAX_KERNEL || nd.kw > NH_NHM_MAX_KERNEL ||
        nd.groups == 0 || nd.out_c == 0)
        return refuse(im, "%s", "kernel size, groups or channels out of range");
    size_t nweights = w->count;
    if (b && b->count != nd.out_c)
        return refuse(im, "%s", "bias length differs from the output channels");

    uint32_t in_t;
    value base = *x;
    value *src = x; /* materialised in place, so a shared lazy value is computed once */
    if (x->kind == V_PAD) {
        for (int i = 0; i < 4; i++)
            nd.pad[i] += x->pad[i];
        base.kind = V_TENSOR;
        src = &base;
    } else if (x->kind == V_SLICE) {
        /* One part of a split depthwise conv: kept until the Concat joins the parts. */
        if (nd.groups != 1 && nd.groups != x->cn)
            return refuse(im, "%s", "conv on a split part must be per-channel");
        if ((uint32_t)w->dims[1] * nd.groups != x->cn || nd.out_c != x->cn)
            return refuse(im, "%s", "conv on a split part must map its channels one to one");
        value *o = out_value(im, 0);
        if (!o)
            return nomem(im);
        o->kind = V_PCONV;
        o->t = x->t;
        o->c0 = x->c0;
        o->cn = x->cn;
        o->pconv = nd;
        o->pconv.aux = b ? 1 : 0;
        o->count = nweights + (b ? b->count : 0);
        o->data = malloc(o->count * sizeof(float));
        if (!o->data)
            return nomem(im);
        memcpy(o->data, w->data, nweights * sizeof(float));
        if (b)
            memcpy(o->data + nweights, b->data, b->count * sizeof(float));
        return NH_OK;
    }
    nh_status st = materialize(im, src, &in_t);
    if (st != NH_OK)
        return st;
    nh_shape s = im->shapes[in_t];
    char buf[32];
    const char *ap = attr_s(n, "auto_pad", buf, sizeof buf);
    if (ap && (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER"))) {
        uint32_t p[2];
        uint32_t sz[2] = {s.h, s.w}, k[2] = {nd.kh, nd.kw};
        for (int i = 0; i < 2; i++) {
            uint32_t o = (sz[i] + nd.stride - 1) / nd.stride;
            int64_t tot = (int64_t)(o - 1) * nd.stride + k[i] - sz[i];
            p[i] = tot > 0 ? (uint32_t)tot : 0;
        }
        int upper = !strcmp(ap, "SAME_UPPER");
        nd.pad[0] = upper ? p[0] / 2 : p[0] - p[0] / 2;
        nd.pad[2] = p[0] - nd.pad[0];
        nd.pad[1] = upper ? p[1] / 2 : p[1] - p[1] / 2;
        nd.pad[3] = p[1] - nd.pad[1];
    } else if (ap && strcmp(ap, "NOTSET") && strcmp(ap, "VALID")) {
        return refuse(im, "unsupported auto_pad %s", ap);
    }
    if ((uint64_t)w->dims[1] * nd.groups != s.c)
        return refuse(im, "%s", "weight input channels do not match the input");
    nd.in[0] = in_t;
    nd.aux = b ? 1 : 0;
    float *wb = malloc((nweights + nd.out_c) * sizeof(float));
    if (!wb)
        return nomem(im);
    memcpy(wb, w->data, nweights * sizeof(float));
    if (b)
        memcpy(wb + nweights, b->data, nd.out_c * sizeof(float));
    uint32_t t;
    st = emit(im, &nd, wb, nweights + (b ? nd.out_c : 0), &t);
    free(wb);
    return st == NH_OK ? out_tensor(im, t) : st;
}

static nh_status op_concat(importer *im)
{
    const NhOnnx__NodeProto *n = im->cur;
    if (attr_i(n, "axis", 0) != 1 || n->n_input == 0)
        return refuse(im, "%s",
                      "only channel concatenation of a split depthwise conv is supported");
    value *first = in_val(im, 0);
    if (!first || first->kind != V_PCONV)
        return refuse(im, "%s",
                      "only channel concatenation of a split depthwise conv is supported");
    uint32_t src = first->t, c = 0;
    nh_node nd = first->pconv;
    int bias = (int)nd.aux;
    size_t kk = (size_t)nd.kh * nd.kw;
    for (size_t i = 0; i < n->n_input; i++) {
        value *p = in_val(im, i);
        if (!p || p->kind != V_PCONV || p->t != src || p->c0 != c || p->pconv.kh != nd.kh ||
            p->pconv.kw != nd.kw || p->pconv.stride != nd.stride ||
            memcmp(p->pconv.pad, nd.pad, sizeof nd.pad) || (int)p->pconv.aux != bias)
            return refuse(im, "%s", "parts of a split conv differ or are out of order");
        c += p->cn;
    }
    uint32_t in_t = src;
    if (c != im->shapes[in_t].c)
        return refuse(im, "%s", "split conv parts do not cover every channel");
    float *wb = malloc(((size_t)c * kk + c) * sizeof(float));
    if (!wb)
        return nomem(im);
    for (size_t i = 0; i < n->n_input; i++) {
        value *p = in_val(im, i);
        memcpy(wb + (size_t)p->c0 * kk, p->data, (size_t)p->cn * kk * sizeof(float));
        if (bias)
            memcpy(wb + (size_t)c * kk + p->c0, p->data + (size_t)p->cn * kk,
                   p->cn * sizeof(float));
    }
    nd.in[0] = in_t;
    nd.out_c = c;
    nd.groups = c;
    uint32_t t;
    nh_status st = emit(im, &nd, wb, (size_t)c * kk + (bias ? c : 0), &t);
    free(wb);
    return st == NH_OK ? out_tensor(im, t) : st;
}

static nh_status op_split(importer *im)
{
    const NhOnnx__NodeProto *n = im->cur;
    value *x = in_val(im, 0);
    if (!x || attr_i(n, "axis", 0) != 1)
        return refuse(im, "%s", "only channel splits are supported");
    uint32_t t;
    nh_status st = materialize(im, x, &t);
    if (st != NH_OK)
        return st;
    uint32_t c = im->shapes[t].c, c0 = 0;
    const NhOnnx__AttributeProto *a = attr(n, "split");
    value *sp = in_val(im, 1);
    for (size_t k = 0; k < n->n_output; k++) {
        int64_t cn;
        if (a && a->n_ints == n->n_output)
            cn = a->ints[k];
        else if (sp && sp->kind == V_CONST && sp->count == n->n_output) {
            if (!whole(sp->data[k], 0, c, &cn))
                return refuse(im, "split size %zu (%g) is not a whole number of channels 0..%u", k,
                              (double)sp->data[k], c);
        } else if (c % n->n_output == 0)
            cn = c / (uint32_t)n->n_output;
        else
            return refuse(im, "%s", "split sizes unknown");
        if (cn <= 0 || cn > c - c0)
            return refuse(im, "%s", "split sizes exceed the channels");
        value *o = out_value(im, k);
        if (!o)
            return nomem(im);
        o->kind = V_SLICE;
        o->t = t;
        o->c0 = c0;
        o->cn = (uint32_t)cn;
        c0 += (uint32_t)cn;
    }
    return NH_OK;
}

static nh_status op_pad(importer *im)
{
    const NhOnnx__NodeProto *n = im->cur;
    value *x = in_val(im, 0), *p = in_val(im, 1), *cv = in_val(im, 2);
    if (!x)
        return refuse(im, "%s", "missing input 0 (data)");
    char buf[32];
    const char *mode = attr_s(n, "mode", buf, sizeof buf);
    if (mode && strcmp(mode, "constant"))
        return refuse(im, "pad mode %s is not supported", mode);
    if ((cv && (!is_scalar(cv) || cv->data[0] != 0.0f)) || attr_f(n, "value", 0.0f) != 0.0f)
        return refuse(im, "%s", "only zero padding is supported");
    float pads[8];
    const NhOnnx__AttributeProto *a = attr(n, "pads");
    if (p && p->kind == V_CONST && p->count == 8)
        memcpy(pads, p->data, sizeof pads);
    else if (a && a->n_ints == 8)
        for (int i = 0; i < 8; i++)
            pads[i] = (float)a->ints[i];
    else
        return refuse(im, "%s", "pads must be a constant of 8 values");
    if (pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0)
        return refuse(im, "%s", "padding of batch or channel axes");
    for (int i = 2; i < 8; i++)
        if (!(pads[i] >= 0 && pads[i] <= 15))
            return refuse(im, "%s", "pads out of range");
    uint32_t t;
    nh_status st = materialize(im, x, &t);
    if (st != NH_OK)
        return st;
    value *o = out_value(im, 0);
    if (!o)
        return nomem(im);
    o->kind = V_PAD;
    o->t = t;
    o->pad[0] = (uint32_t)pads[2];
    o->pad[1] = (uint32_t)pads[3];
    o->pad[2] = (uint32_t)pads[6];
    o->pad[3] = (uint32_t)pads[7];
    return NH_OK;
}

static nh_status op_simple(importer *im, uint32_t op, uint32_t aux, const float *w, size_t wn,
                           float eps)
{
    value *x = in_val(im, 0);
    if (!x)
        return refuse(im, "%s", "missing input");
    uint32_t t;
    nh_status st = materialize(im, x, &t);
    if (st != NH_OK)
        return st;
    nh_node nd = {0};
    nd.op = op;
    nd.in[0] = t;
    nd.aux = aux;
    nd.eps = eps;
    if (op == NH_OP_INORM && wn != 2 * (size_t)im->shapes[t].c)
        return refuse(im, "%s", "scale/bias length differs from the channels");
    st = emit(im, &nd, w, wn, &t);
    return st == NH_OK ? out_tensor(im, t) : st;
}

static nh_status op_inorm(importer *im)
{
    value *s = in_val(im, 1), *b = in_val(im, 2);
    if (!s || !b || s->kind != V_CONST || b->kind != V_CONST || s->count != b->count)
        return refuse(im, "%s", "scale and B must be constants of equal length");
    float *w = malloc(2 * s->count * sizeof(float) + 1);
    if (!w)
        return nomem(im);
    memcpy(w, s->data, s->count * sizeof(float));
    memcpy(w + s->count, b->data, b->count * sizeof(float));
    nh_status st =
        op_simple(im, NH_OP_INORM, 0, w, 2 * s->count, attr_f(im->cur, "epsilon", 1e-5f));
    free(w);
    return st;
}

/* Relu / Clip / Min / Max: narrow the clip of a lazy x + a, or a plain ReLU. */
static nh_status op_clip(importer *im, float lo, float hi)
{
    value *x = in_val(im, 0);
    if (!x)
        return refuse(im, "%s", "missing input");
    if (x->kind == V_LAZY && x->term && x->k == 1.0f && x->xpow == 0) {
        value l = *x;
        l.lo = fmaxf(l.lo, lo);
        l.hi = fminf(l.hi, hi);
        return out_lazy(im, &l);
    }
    if (lo == 0.0f && isinf(hi) && hi > 0)
        return op_simple(im, NH_OP_ACT, NH_ACT_RELU, NULL, 0, 0.0f);
    if (x->kind == V_TENSOR) {
        value l = lazy_of_tensor(x->t);
        l.xpow = 0;
        l.term = 1;
        l.a = 0.0f;
        l.lo = lo;
        l.hi = hi;
        return out_lazy(im, &l);
    }
    return refuse(im, "%s", "clip of an expression that is not x + a");
}

static nh_status op_arith(importer *im, const char *op)
{
    value *a = in_val(im, 0), *b = in_val(im, 1);
    if (!a || !b)
        return refuse(im, "%s", "missing input");
    int add = !strcmp(op, "Add"), sub = !strcmp(op, "Sub"), mul = !strcmp(op, "Mul");
    if (a->kind == V_CONST && b->kind != V_CONST && !sub && strcmp(op, "Div")) {
        value *tmp = a;
        a = b;
        b = tmp;
    }
    if (is_scalar(b)) {
        float c = b->data[0];
        value l = a->kind == V_TENSOR ? lazy_of_tensor(a->t) : *a;
        if (l.kind != V_LAZY)
            return refuse(im, "%s", "arithmetic on an unsupported value");
        if (add || sub) {
            if (sub)
                c = -c;
            if (l.term ? (l.k != 1.0f || l.xpow || !isinf(l.lo) || !isinf(l.hi))
                       : (l.k != 1.0f || l.xpow != 1))
                return refuse(im, "%s", "scalar add on an expression that is not x + a");
            l.term = 1;
            l.xpow = 0;
            l.a += c;
            return out_lazy(im, &l);
        }
        if (c == 0.0f && !mul)
            return refuse(im, "%s", "division by zero");
        l.k = mul ? l.k * c : l.k / c;
        return out_lazy(im, &l);
    }
    if (b->kind == V_CONST) {
        /* Add of a bias vector after a MatMul / bias-free conv. */
        uint32_t t;
        if (!add || a->kind != V_TENSOR)
            return refuse(im, "%s", "only a bias vector may be added as a constant");
        t = a->t;
        nh_node *p = t >= 1 ? &im->nodes[t - 1] : NULL;
        if (!p || p->op != NH_OP_CONV || p->aux || b->count != p->out_c || t != im->n_nodes)
            return refuse(im, "%s", "constant add does not follow a bias-free conv or MatMul");
        if (im->nw + b->count > im->capw) {
            size_t cap = (im->nw + b->count) * 2;
            float *w2 = realloc(im->w, cap * sizeof *w2);
            if (!w2)
                return nomem(im);
            im->w = w2;
            im->capw = cap;
        }
        memcpy(im->w + im->nw, b->data, b->count * sizeof(float));
        im->nw += b->count;
        p->w_len += (uint32_t)b->count;
        p->aux = 1;
        return out_tensor(im, t);
    }
    if (mul) {
        /* x * f(x): the HardSwish pattern. */
        value *l = a->kind == V_LAZY ? a : b->kind == V_LAZY ? b : NULL;
        value *o = l == a ? b : a;
        if (l && (o->kind == V_TENSOR || o->kind == V_LAZY) && o->t == l->t &&
            (o->kind == V_TENSOR || !(o->term && l->term))) {
            value r = *l;
            if (o->kind == V_TENSOR) {
                r.xpow += 1;
            } else {
                r.xpow += o->xpow;
                r.k *= o->k;
                if (o->term) {
                    r.term = 1;
                    r.a = o->a;
                    r.lo = o->lo;
                    r.hi = o->hi;
                }
            }
            if (r.xpow <= 2)
                return out_lazy(im, &r);
        }
    }
    if (!mul && !add)
        return refuse(im, "%s", "tensor-tensor arithmetic other than Add and Mul");
    uint32_t ta, tb;
    nh_status st;
    if ((st = materialize(im, a, &ta)) != NH_OK || (st = materialize(im, b, &tb)) != NH_OK)
        return st;
    nh_shape sa = im->shapes[ta], sb = im->shapes[tb];
    nh_node nd = {0};
    nd.op = mul ? NH_OP_MUL : NH_OP_ADD;
    nd.in[0] = ta;
    nd.in[1] = tb;
    if (mul && sa.h * sa.w == 1 && sb.h * sb.w != 1) {
        nd.in[0] = tb;
        nd.in[1] = ta;
        sa = sb;
        sb = im->shapes[ta];
    }
    if (sa.c != sb.c || !((sa.h == sb.h && sa.w == sb.w) || (mul && sb.h == 1 && sb.w == 1)))
        return refuse(im, "%s", "operand shapes do not broadcast");
    uint32_t t;
    st = emit(im, &nd, NULL, 0, &t);
    return st == NH_OK ? out_tensor(im, t) : st;
}

/* Gemm / MatMul on a C x 1 x 1 tensor -> 1x1 conv. */
static nh_status op_gemm(importer *im, int gemm)
{
    const NhOnnx__NodeProto *n = im->cur;
    value *x = in_val(im, 0), *w = in_val(im, 1), *c = in_val(im, 2);
    if (!x || !w || w->kind != V_CONST || w->ndims != 2 || (c && c->kind != V_CONST))
        return refuse(im, "%s", "needs a tensor input and a constant 2-d weight");
    uint32_t t;
    nh_status st = materialize(im, x, &t);
    if (st != NH_OK)
        return st;
    nh_shape s = im->shapes[t];
    if (s.h != 1 || s.w != 1)
        return refuse(im, "%s", "input is not a flat vector (C x 1 x 1)");
    int transA = gemm ? (int)attr_i(n, "transA", 0) : 0;
    int transB = gemm ? (int)attr_i(n, "transB", 0) : 0;
    float alpha = gemm ? attr_f(n, "alpha", 1.0f) : 1.0f,
          beta = gemm ? attr_f(n, "beta", 1.0f) : 1.0f;
    if (transA)
        return refuse(im, "%s", "transA is not supported");
    uint32_t in = (uint32_t)(transB ? w->dims[1] : w->dims[0]);
    uint32_t out = (uint32_t)(transB ? w->dims[0] : w->dims[1]);
    if (in != s.c || out == 0)
        return refuse(im, "%s", "weight shape does not match the input");
    if (c && c->count != out && c->count != 1)
        return refuse(im, "%s", "bias C must be a vector of the output size");
    float *wb = malloc(((size_t)in * out + out) * sizeof(float));
    if (!wb)
        return nomem(im);
    for (uint32_t o = 0; o < out; o++)
        for (uint32_t i = 0; i < in; i++) {
            float v = transB ? w->data[(size_t)o * in + i] : w->data[(size_t)i * out + o];
            wb[(size_t)o * in + i] = alpha == 1.0f ? v : alpha * v;
        }
    if (c)
        for (uint32_t o = 0; o < out; o++) {
            float v = c->data[c->count == 1 ? 0 : o];
            wb[(size_t)in * out + o] = beta == 1.0f ? v : beta * v;
        }
    nh_node nd = {0};
    nd.op = NH_OP_CONV;
    nd.in[0] = t;
    nd.out_c = out;
    nd.kh = nd.kw = nd.stride = nd.groups = 1;
    nd.aux = c ? 1 : 0;
    st = emit(im, &nd, wb, (size_t)in * out + (c ? out : 0), &t);
    free(wb);
    return st == NH_OK ? out_tensor(im, t) : st;
}

/* Ops that only rename a value (shapes are C x H x W per image throughout). */
static nh_status op_alias(importer *im, int flat_only)
{
    value *x = in_val(im, 0);
    if (!x)
        return refuse(im, "%s", "missing input");
    uint32_t t;
    nh_status st = materialize(im, x, &t);
    if (st != NH_OK)
        return st;
    if (flat_only && (im->shapes[t].h != 1 || im->shapes[t].w != 1))
        return refuse(im, "%s", "reshape of a tensor that is not C x 1 x 1");
    return out_tensor(im, t);
}

static nh_status op_const(importer *im)
{
    const NhOnnx__AttributeProto *a = attr(im->cur, "value");
    value *o = out_value(im, 0);
    if (!o)
        return nomem(im);
    o->kind = V_CONST;
    if (a && a->t)
        return tensor_floats(im, a->t, o);
    if ((a = attr(im->cur, "value_float")) && a->has_f) {
        o->data = malloc(sizeof(float));
        if (!o->data)
            return nomem(im);
        o->data[0] = a->f;
        o->count = 1;
        im->file_elems += 1;
        return NH_OK;
    }
    if ((a = attr(im->cur, "value_ints")) || (a = attr(im->cur, "value_int"))) {
        size_t cnt = a->n_ints ? a->n_ints : 1;
        o->data = malloc(cnt * sizeof(float));
        if (!o->data)
            return nomem(im);
        for (size_t i = 0; i < cnt; i++)
            o->data[i] = a->n_ints ? (float)a->ints[i] : (float)a->i;
        o->count = cnt;
        im->file_elems += cnt;
        o->ndims = 1;
        o->dims[0] = (int64_t)cnt;
        return NH_OK;
    }
    return refuse(im, "%s", "unsupported Constant attribute");
}

/* ---- constant folding: shape arithmetic exporters leave in graphs (torch's F.pad) ---- */

static size_t dims_count(const int64_t *d, int nd)
{
    size_t c = 1;
    for (int i = 0; i < nd; i++)
        c *= (size_t)d[i];
    return c;
}

/* New constant output 0 with the given dims, zero-filled for the caller to fill; counted
 * against NH_ONNX_MAX_FOLDED. */
static nh_status out_const(importer *im, const int64_t *dims, int nd, value **out)
{
    size_t c = 1;
    for (int i = 0; i < nd; i++) {
        if (dims[i] < 0)
            return refuse(im, "folded constant has dimension %d of %lld", i, (long long)dims[i]);
        if (dims[i] <= (int64_t)NH_ONNX_MAX_FOLDED)
            c *= (size_t)dims[i]; /* both <= 2^24 */
        if (dims[i] > (int64_t)NH_ONNX_MAX_FOLDED || c > NH_ONNX_MAX_FOLDED)
            return refuse(im,
                          "folded constant is over the limit of %u floats (dimension %d is %lld)",
                          NH_ONNX_MAX_FOLDED, i, (long long)dims[i]);
    }
    if (c > NH_ONNX_MAX_FOLDED - im->folded)
        return refuse(im,
                      "constant folding would make more than %u floats in all (%zu made, %zu "
                      "more asked)",
                      NH_ONNX_MAX_FOLDED, im->folded, c);
    value *o = out_value(im, 0);
    if (!o)
        return nomem(im);
    o->kind = V_CONST;
    o->ndims = nd;
    memcpy(o->dims, dims, (size_t)nd * sizeof *dims);
    o->data = calloc(c ? c : 1, sizeof(float));
    if (!o->data)
        return nomem(im);
    o->count = c;
    im->folded += c;
    *out = o;
    return NH_OK;
}

static nh_status fold_fail(importer *im)
{
    return refuse(im, "%s", "constant folding failed (bad shape)");
}

/* Is every (non-empty) input of the current node a constant? */
static int all_const(importer *im)
{
    for (size_t k = 0; k < im->cur->n_input; k++) {
        value *v = in_val(im, k);
        if (im->cur->input[k][0] && (!v || v->kind != V_CONST))
            return 0;
    }
    return 1;
}

static nh_status fold_constant_of_shape(importer *im, const value *x)
{
    const NhOnnx__AttributeProto *a = attr(im->cur, "value");
    float fill = 0.0f;
    if (a && a->t) {
        value tmp;
        memset(&tmp, 0, sizeof tmp);
        nh_status st = tensor_floats(im, a->t, &tmp);
        if (st == NH_OK && tmp.count != 1)
            st = refuse(im, "value has %zu elements, not one", tmp.count);
        if (st == NH_OK)
            fill = tmp.data[0];
        free(tmp.data);
        if (st != NH_OK)
            return st;
    }
    int64_t d[8];
    if (x->count > 8)
        return refuse(im, "shape has %zu dimensions (8 at most)", x->count);
    for (size_t i = 0; i < x->count; i++)
        if (!whole(x->data[i], 0, INT64_C(1) << 40, &d[i]))
            return refuse(im, "shape value %zu (%g) is not a dimension", i, (double)x->data[i]);
    value *o;
    nh_status st = out_const(im, d, (int)x->count, &o);
    if (st != NH_OK)
        return st;
    for (size_t i = 0; i < o->count; i++)
        o->data[i] = fill;
    return NH_OK;
}

static nh_status fold_reshape(importer *im, const char *op, const value *x)
{
    int64_t d[8];
    int nd = 0;
    value *sh = in_val(im, 1);
    if (!strcmp(op, "Reshape")) {
        if (!sh || sh->count > 8)
            return fold_fail(im);
        int neg = -1;
        size_t known = 1;
        for (size_t i = 0; i < sh->count; i++) {
            if (!whole(sh->data[i], -1, INT64_C(1) << 40, &d[i]))
                return refuse(im, "shape value %zu (%g) is not a dimension or -1", i,
                              (double)sh->data[i]);
            if (d[i] == 0 && (int)i < x->ndims)
                d[i] = x->dims[i];
            if (d[i] == -1 && neg >= 0)
                return refuse(im, "%s", "shape has two -1 dimensions");
            if (d[i] == -1)
                neg = (int)i;
            else if (d[i] > (int64_t)NH_ONNX_MAX_FOLDED || known > NH_ONNX_MAX_FOLDED)
                return refuse(im,
                              "folded constant is over the limit of %u floats (dimension %zu is "
                              "%lld)",
                              NH_ONNX_MAX_FOLDED, i, (long long)d[i]);
            else
                known *= (size_t)d[i];
        }
        nd = (int)sh->count;
        if (neg >= 0)
            d[neg] = known ? (int64_t)(x->count / known) : 0;
    } else if (!strcmp(op, "Flatten")) {
        d[0] = 1;
        d[1] = (int64_t)x->count;
        nd = 2;
    } else {
        /* Squeeze / Unsqueeze of a constant: only the count matters to nhash's uses. */
        d[0] = (int64_t)x->count;
        nd = 1;
    }
    if (dims_count(d, nd) != x->count)
        return fold_fail(im);
    value *o;
    nh_status st = out_const(im, d, nd, &o);
    if (st != NH_OK)
        return st;
    memcpy(o->data, x->data, x->count * sizeof(float));
    return NH_OK;
}

static nh_status fold_concat(importer *im, const value *x)
{
    const NhOnnx__NodeProto *n = im->cur;
    int64_t axis = attr_i(n, "axis", 0);
    int nd = x->ndims;
    if (nd == 0)
        return fold_fail(im);
    if (axis < 0)
        axis += nd;
    if (axis < 0 || axis >= nd)
        return fold_fail(im);
    int64_t d[8];
    memcpy(d, x->dims, sizeof d);
    d[axis] = 0;
    for (size_t k = 0; k < n->n_input; k++) {
        value *v = in_val(im, k);
        if (!v || v->ndims != nd)
            return fold_fail(im);
        for (int i = 0; i < nd; i++)
            if (i != axis && v->dims[i] != x->dims[i])
                return fold_fail(im);
        d[axis] += v->dims[axis];
    }
    size_t outer = dims_count(x->dims, (int)axis);
    size_t inner = dims_count(x->dims + axis + 1, nd - (int)axis - 1);
    /* Inputs read before the output is added (pointers stay valid: reserved). */
    value *o;
    nh_status st = out_const(im, d, nd, &o);
    if (st != NH_OK)
        return st;
    size_t pos = 0;
    for (size_t b = 0; b < outer; b++)
        for (size_t k = 0; k < n->n_input; k++) {
            value *v = in_val(im, k);
            size_t chunk = (size_t)v->dims[axis] * inner;
            memcpy(o->data + pos, v->data + b * chunk, chunk * sizeof(float));
            pos += chunk;
        }
    return NH_OK;
}

static nh_status fold_transpose(importer *im, const value *x)
{
    const NhOnnx__AttributeProto *a = attr(im->cur, "perm");
    int nd = x->ndims;
    if (nd < 1 || nd > 8)
        return fold_fail(im);
    if (a && a->n_ints != (size_t)nd)
        return refuse(im, "perm has %zu axes for %d dimensions", a->n_ints, nd);
    int perm[8];
    unsigned seen = 0;
    int64_t d[8] = {0};
    for (int i = 0; i < nd; i++) {
        int64_t p = a ? a->ints[i] : nd - 1 - i;
        if (p < 0 || p >= nd)
            return refuse(im, "perm axis %lld is not 0..%d", (long long)p, nd - 1);
        if (seen & (1u << p))
            return refuse(im, "perm repeats axis %lld", (long long)p);
        seen |= 1u << p;
        perm[i] = (int)p;
        d[i] = x->dims[perm[i]];
    }
    value *o;
    nh_status st = out_const(im, d, nd, &o);
    if (st != NH_OK)
        return st;
    size_t stride[8];
    for (int i = nd - 1, s = 1; i >= 0; i--) {
        stride[i] = (size_t)s;
        s *= (int)x->dims[i];
    }
    for (size_t j = 0; j < o->count; j++) {
        size_t r = j, src = 0;
        for (int i = nd - 1; i >= 0; i--) {
            size_t idx = r % (size_t)d[i];
            r /= (size_t)d[i];
            src += idx * stride[perm[i]];
        }
        o->data[j] = x->data[src];
    }
    return NH_OK;
}

/* A Slice start or end: clamped far outside any dimension (exporters write INT64_MAX). */
static int slice_bound(float f, int64_t *out)
{
    if (isnan(f))
        return 0;
    *out = f < -1e15f ? -(INT64_C(1) << 50) : f > 1e15f ? INT64_C(1) << 50 : (int64_t)f;
    return 1;
}

static nh_status fold_slice(importer *im, const value *x)
{
    value *st_ = in_val(im, 1), *en = in_val(im, 2), *ax = in_val(im, 3), *sp = in_val(im, 4);
    int nd = x->ndims;
    int64_t start[8], step[8], d[8];
    for (int i = 0; i < nd; i++) {
        start[i] = 0;
        step[i] = 1;
        d[i] = x->dims[i];
    }
    if (!st_ || !en || st_->count != en->count || st_->count > (size_t)nd)
        return fold_fail(im);
    if ((ax && ax->count != st_->count) || (sp && sp->count != st_->count))
        return refuse(im, "%s", "axes or steps differ in length from starts");
    for (size_t k = 0; k < st_->count; k++) {
        int64_t axis = k, s = 1, b, e;
        if (ax && !whole(ax->data[k], -nd, nd - 1, &axis))
            return refuse(im, "axis %zu (%g) is not -%d..%d", k, (double)ax->data[k], nd, nd - 1);
        if (axis < 0)
            axis += nd;
        /* Steps beyond +-2^40 take one element, as 2^40 does; the bound keeps -s defined. */
        if (sp && !whole(sp->data[k], -(INT64_C(1) << 40), INT64_C(1) << 40, &s))
            return refuse(im, "step %zu (%g) is not a whole number in +-2^40", k,
                          (double)sp->data[k]);
        if (!slice_bound(st_->data[k], &b) || !slice_bound(en->data[k], &e))
            return refuse(im, "start or end %zu is not a number", k);
        int64_t dim = x->dims[axis];
        if (s == 0)
            return refuse(im, "step %zu is zero", k);
        if (b < 0)
            b += dim;
        if (e < 0)
            e += dim;
        if (s > 0) {
            b = b < 0 ? 0 : b > dim ? dim : b;
            e = e < 0 ? 0 : e > dim ? dim : e;
            d[axis] = e > b ? (e - b + s - 1) / s : 0;
        } else {
            b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            d[axis] = b > e ? (b - e + (-s) - 1) / (-s) : 0;
        }
        start[axis] = b;
        step[axis] = s;
    }
    value *o;
    nh_status st = out_const(im, d, nd, &o);
    if (st != NH_OK)
        return st;
    size_t stride[8];
    for (int i = nd - 1, s = 1; i >= 0; i--) {
        stride[i] = (size_t)s;
        s *= (int)x->dims[i];
    }
    for (size_t j = 0; j < o->count; j++) {
        size_t r = j, src = 0;
        for (int i = nd - 1; i >= 0; i--) {
            int64_t idx = (int64_t)(r % (size_t)d[i]);
            r /= (size_t)d[i];
            src += (size_t)(start[i] + idx * step[i]) * stride[i];
        }
        o->data[j] = x->data[src];
    }
    return NH_OK;
}

static nh_status fold_arith(importer *im, const char *op, const value *x)
{
    value *y = in_val(im, 1);
    if (!y || (y->count != x->count && y->count != 1))
        return fold_fail(im);
    value *o;
    nh_status st = out_const(im, x->dims, x->ndims, &o);
    if (st != NH_OK)
        return st;
    for (size_t i = 0; i < x->count; i++) {
        float b = y->data[y->count == 1 ? 0 : i];
        o->data[i] = op[0] == 'A'   ? x->data[i] + b
                     : op[0] == 'S' ? x->data[i] - b
                     : op[0] == 'M' ? x->data[i] * b
                                    : x->data[i] / b;
    }
    return NH_OK;
}

/* A node whose inputs are all constants: its output is computed now (x is input 0). */
static nh_status fold_node(importer *im, const char *op)
{
    const value *x = in_val(im, 0);
    if (!strcmp(op, "ConstantOfShape"))
        return fold_constant_of_shape(im, x);
    if (!strcmp(op, "Cast") || !strcmp(op, "Identity")) {
        value *o;
        nh_status st = out_const(im, x->dims, x->ndims, &o);
        if (st == NH_OK)
            memcpy(o->data, x->data, x->count * sizeof(float));
        return st;
    }
    if (!strcmp(op, "Reshape") || !strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze") ||
        !strcmp(op, "Flatten"))
        return fold_reshape(im, op, x);
    if (!strcmp(op, "Concat"))
        return fold_concat(im, x);
    if (!strcmp(op, "Transpose"))
        return fold_transpose(im, x);
    if (!strcmp(op, "Slice"))
        return fold_slice(im, x);
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div"))
        return fold_arith(im, op, x);
    return refuse(im, "%s", "unsupported operator on constants");
}

static nh_status op_node(importer *im)
{
    const char *op = im->cur->op_type ? im->cur->op_type : "";
    if (im->cur->n_input > 0 && strcmp(op, "Constant") && all_const(im) && in_val(im, 0))
        return fold_node(im, op);
    if (!strcmp(op, "Shape")) {
        value *x = in_val(im, 0);
        uint32_t t;
        nh_status st = x ? materialize(im, x, &t) : refuse(im, "%s", "missing input");
        if (st != NH_OK)
            return st;
        int64_t d[1] = {4};
        value *o;
        if ((st = out_const(im, d, 1, &o)) != NH_OK)
            return st;
        o->data[0] = 1.0f; /* batch: nhash runs images one tensor each */
        o->data[1] = (float)im->shapes[t].c;
        o->data[2] = (float)im->shapes[t].h;
        o->data[3] = (float)im->shapes[t].w;
        return NH_OK;
    }
    if (im->cur->domain && im->cur->domain[0] && strcmp(im->cur->domain, "ai.onnx"))
        return refuse(im, "operator domain '%s' is not supported", im->cur->domain);
    if (!strcmp(op, "Conv"))
        return op_conv(im);
    if (!strcmp(op, "Pad"))
        return op_pad(im);
    if (!strcmp(op, "Split"))
        return op_split(im);
    if (!strcmp(op, "Concat"))
        return op_concat(im);
    if (!strcmp(op, "InstanceNormalization"))
        return op_inorm(im);
    if (!strcmp(op, "Relu"))
        return op_clip(im, 0.0f, INFINITY);
    if (!strcmp(op, "Clip")) {
        value *lo = in_val(im, 1), *hi = in_val(im, 2);
        if ((lo && !is_scalar(lo)) || (hi && !is_scalar(hi)))
            return refuse(im, "%s", "Clip bounds must be constant scalars");
        float l = lo ? lo->data[0] : attr_f(im->cur, "min", -INFINITY);
        float h = hi ? hi->data[0] : attr_f(im->cur, "max", INFINITY);
        return op_clip(im, l, h);
    }
    if (!strcmp(op, "Max") || !strcmp(op, "Min")) {
        value *b = in_val(im, 1);
        if (im->cur->n_input != 2 || !is_scalar(b))
            return refuse(im, "%s", "only Max/Min with a constant scalar are supported");
        return !strcmp(op, "Max") ? op_clip(im, b->data[0], INFINITY)
                                  : op_clip(im, -INFINITY, b->data[0]);
    }
    if (!strcmp(op, "HardSwish"))
        return op_simple(im, NH_OP_ACT, NH_ACT_HSWISH, NULL, 0, 0.0f);
    if (!strcmp(op, "HardSigmoid")) {
        float alpha = attr_f(im->cur, "alpha", 0.2f), beta = attr_f(im->cur, "beta", 0.5f);
        value *x = in_val(im, 0);
        if (!x || x->kind != V_TENSOR || alpha <= 0.0f)
            return refuse(im, "%s", "HardSigmoid of an unsupported value");
        value l = lazy_of_tensor(x->t);
        l.xpow = 0;
        l.term = 1;
        l.a = beta / alpha;
        l.lo = 0.0f;
        l.hi = 1.0f / alpha;
        l.k = alpha;
        return out_lazy(im, &l);
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div"))
        return op_arith(im, op);
    if (!strcmp(op, "GlobalAveragePool"))
        return op_simple(im, NH_OP_GAP, 0, NULL, 0, 0.0f);
    if (!strcmp(op, "ReduceMean")) {
        const NhOnnx__AttributeProto *a = attr(im->cur, "axes");
        value *ax = in_val(im, 1);
        size_t na = a ? a->n_ints : ax && ax->kind == V_CONST ? ax->count : 0;
        int ok = na == 2;
        for (size_t i = 0; ok && i < 2; i++) {
            int64_t v = 0;
            ok = a ? (v = a->ints[i], 1) : whole(ax->data[i], -8, 8, &v);
            ok = ok && (v == 2 || v == 3 || v == -1 || v == -2);
        }
        if (!ok)
            return refuse(im, "%s", "only ReduceMean over H and W is supported");
        return op_simple(im, NH_OP_GAP, 0, NULL, 0, 0.0f);
    }
    if (!strcmp(op, "Gemm"))
        return op_gemm(im, 1);
    if (!strcmp(op, "MatMul"))
        return op_gemm(im, 0);
    if (!strcmp(op, "Flatten") || !strcmp(op, "Reshape") || !strcmp(op, "Squeeze") ||
        !strcmp(op, "Unsqueeze"))
        return op_alias(im, 1);
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout"))
        return op_alias(im, 0);
    if (!strcmp(op, "Constant"))
        return op_const(im);
    return refuse(im, "%s", "unsupported operator");
}

static void importer_free(importer *im)
{
    for (size_t i = 0; i < im->nv; i++) {
        free(im->v[i].name);
        free(im->v[i].data);
    }
    free(im->v);
    free(im->nodes);
    free(im->w);
    free(im->shapes);
}

nh_status nh_onnx_import(const void *onnx, size_t onnx_len, const float *seed, uint32_t seed_rows,
                         const nh_onnx_opts *opts, nh_model **out, nh_error *err)
{
    nh_status st = NH_OK;
    importer im;
    memset(&im, 0, sizeof im);
    im.err = err;
    nh_model *m = NULL;
    NhOnnx__ModelProto *mp = nh_onnx__model_proto__unpack(NULL, onnx_len, onnx);
    if (!mp)
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                            "not an ONNX model (protobuf parse failed)");
    const NhOnnx__GraphProto *g = mp->graph;
    if (!g || g->n_node == 0 || g->n_output == 0) {
        st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL, "ONNX model has no graph");
        goto cleanup;
    }
    im.g = g;
    uint32_t in_h = opts && opts->in_h ? opts->in_h : 360,
             in_w = opts && opts->in_w ? opts->in_w : 360;
    im.cap_nodes = 128;
    im.nodes = calloc(im.cap_nodes, sizeof *im.nodes);
    im.shapes = calloc(im.cap_nodes + 1, sizeof *im.shapes);
    if (!im.nodes || !im.shapes) {
        st = nomem(&im);
        goto cleanup;
    }
    im.shapes[0] = (nh_shape){3, in_h, in_w};
    for (size_t i = 0; i < g->n_initializer; i++) {
        value *v = add_value(&im, g->initializer[i]->name);
        if (!v) {
            st = nomem(&im);
            goto cleanup;
        }
        v->kind = V_CONST;
        if ((st = tensor_floats(&im, g->initializer[i], v)) != NH_OK)
            goto cleanup;
    }
    size_t n_inputs = 0;
    for (size_t i = 0; i < g->n_input; i++) {
        if (!g->input[i]->name || find(&im, g->input[i]->name))
            continue; /* an initializer listed as input (IR < 4) */
        value *v = add_value(&im, g->input[i]->name);
        if (!v) {
            st = nomem(&im);
            goto cleanup;
        }
        v->kind = V_TENSOR;
        v->t = 0;
        n_inputs++;
    }
    if (n_inputs != 1) {
        st = nh_error_set(err, NH_ERR_UNSUPPORTED, NH_FOREIGN_NONE, 0, NULL,
                          "ONNX graph has %zu inputs; one image input is supported", n_inputs);
        goto cleanup;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        im.cur = g->node[i];
        im.cur_idx = i;
        if (!reserve(&im, im.cur->n_output + 1)) {
            st = nomem(&im);
            goto cleanup;
        }
        for (size_t k = 0; k < im.cur->n_input; k++)
            if (im.cur->input[k] && im.cur->input[k][0] && !find(&im, im.cur->input[k])) {
                st = refuse(&im, "input '%s' is not defined before use", im.cur->input[k]);
                goto cleanup;
            }
        if (getenv("NH_ONNX_TRACE")) {
            fprintf(stderr, "onnx %zu %s:", i, im.cur->op_type);
            for (size_t k = 0; k < im.cur->n_input; k++) {
                value *v = find(&im, im.cur->input[k]);
                fprintf(stderr, " %s[%d]", im.cur->input[k], v ? v->kind : -1);
            }
            fprintf(stderr, "\n");
        }
        if ((st = op_node(&im)) != NH_OK)
            goto cleanup;
    }
    im.cur = NULL;
    value *ov = g->output[0]->name ? find(&im, g->output[0]->name) : NULL;
    uint32_t out_t;
    if (!ov) {
        st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                          "graph output is never produced");
        goto cleanup;
    }
    if ((st = materialize(&im, ov, &out_t)) != NH_OK)
        goto cleanup;
    if (out_t != im.n_nodes || out_t == 0) {
        st = nh_error_set(err, NH_ERR_UNSUPPORTED, NH_FOREIGN_NONE, 0, NULL,
                          "graph output is not produced by the last operation");
        goto cleanup;
    }
    if ((st = nh_model_new(&m, err)) != NH_OK)
        goto cleanup;
    snprintf(m->name, sizeof m->name, "%s",
             opts && opts->name ? opts->name : (g->name ? g->name : "onnx"));
    snprintf(m->version, sizeof m->version, "%s", opts && opts->version ? opts->version : "1");
    m->in_c = 3;
    m->in_h = in_h;
    m->in_w = in_w;
    m->preprocess = NH_PRE_PM1;
    m->n_nodes = im.n_nodes;
    m->nodes = im.nodes;
    im.nodes = NULL;
    m->n_weights = (uint32_t)im.nw;
    m->weights = im.w ? im.w : malloc(1);
    im.w = NULL;
    m->out_dim = (uint32_t)nh_shape_size(im.shapes[out_t]);
    if (seed && seed_rows) {
        m->hash_bits = seed_rows;
        size_t sn = (size_t)seed_rows * m->out_dim;
        m->seed = malloc(sn * sizeof(float));
        if (!m->seed) {
            st = nomem(&im);
            goto cleanup;
        }
        memcpy(m->seed, seed, sn * sizeof(float));
    }
    if ((st = nh_model_validate(m, err)) != NH_OK)
        goto cleanup;
    *out = m;
    m = NULL;
cleanup:
    nh_model_destroy(m);
    importer_free(&im);
    nh_onnx__model_proto__free_unpacked(mp, NULL);
    return st;
}

nh_status nh_onnx_read_seed(const void *data, size_t len, uint32_t out_dim, float **seed,
                            uint32_t *rows, nh_error *err)
{
    if (out_dim == 0 || len < 128 || (len - 128) % ((size_t)out_dim * 4) != 0)
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                            "seed file is not a 128-byte header plus rows of %u float32", out_dim);
    size_t r = (len - 128) / ((size_t)out_dim * 4);
    if (r == 0 || r % 8 || r > NH_NHM_MAX_HASH_BITS)
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, NULL,
                            "seed has %zu rows; need a multiple of 8 up to %u", r,
                            NH_NHM_MAX_HASH_BITS);
    float *s = malloc(r * out_dim * sizeof(float));
    if (!s)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    const uint8_t *p = (const uint8_t *)data + 128;
    for (size_t i = 0; i < r * out_dim; i++, p += 4) {
        uint32_t u =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&s[i], &u, 4);
    }
    *seed = s;
    *rows = (uint32_t)r;
    return NH_OK;
}
