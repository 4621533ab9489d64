/*
 * nhash net: the OpenCL runner. One buffer per plan slot (sized for max_batch at create
 * time), all weights in one buffer, kernels from kernels/{util,act,norm,conv,head}.cl.
 * An activation that is the only consumer of an INORM, MUL, ADD or fully connected conv is
 * fused into that op's kernel, saving a pass over the tensor.
 */
#include "nhash/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    K_U8,
    K_CONV2D,
    K_CONV_DW,
    K_CONV_DW3,
    K_CONV_DW5,
    K_CONV_DW3W,
    K_CONV_DW5W,
    K_CONV1X1,
    K_FC,
    K_INORM,
    K_ACT,
    K_ADD,
    K_MUL,
    K_GAP,
    K_COUNT
};
static const char *const kernel_names[K_COUNT] = {
    "nh_u8_to_nchw",  "nh_conv2d",      "nh_conv_dw", "nh_conv_dw3_8", "nh_conv_dw5_8",
    "nh_conv_dw3_16", "nh_conv_dw5_16", "nh_conv1x1", "nh_fc",         "nh_inorm",
    "nh_act",         "nh_add",         "nh_mul",     "nh_gap",
};

typedef struct cl_runner {
    nh_runner base;
    nh_cl *cl;
    nh_net_plan plan;
    cl_program prog;
    cl_kernel k[K_COUNT];
    cl_mem *slots;   /* sub-buffers of parents, guard floats in */
    cl_mem *parents; /* each slot's whole buffer: guard + tensor + guard */
    cl_uint guard;   /* floats of slack before and after each tensor (see conv.cl) */
    cl_mem weights, input, lut;
    size_t in_wg;      /* work-group size of nh_inorm */
    size_t wg_x;       /* work-group width of the other kernels */
    size_t pw_v;       /* nh_conv1x1 tile width in pixels (x 4 channels) */
    size_t c2_v;       /* nh_conv2d pixels per work-item */
    size_t pw_co;      /* nh_conv1x1 output channels per work-item (4 or 8) */
    double prof[8][2]; /* NH_NET_PROFILE: CPU seconds per op kind, [larger, 1x1] */
    unsigned prof_calls;
    double *node_prof; /* NH_NET_PROFILE=2: CPU seconds per node */
    uint32_t *fuse; /* node -> activation fused into it (0 none) */
    uint8_t *skip;  /* node is an activation already fused */
} cl_runner;

static void cl_destroy(nh_runner *r)
{
    cl_runner *c = (cl_runner *)r;
    if (!c)
        return;
    if (c->slots)
        for (uint32_t i = 0; i < c->plan.n_slots; i++)
            if (c->slots[i])
                clReleaseMemObject(c->slots[i]);
    if (c->parents)
        for (uint32_t i = 0; i < c->plan.n_slots; i++)
            if (c->parents[i])
                clReleaseMemObject(c->parents[i]);
    free(c->slots);
    free(c->parents);
    if (c->weights)
        clReleaseMemObject(c->weights);
    if (c->input)
        clReleaseMemObject(c->input);
    if (c->lut)
        clReleaseMemObject(c->lut);
    for (int i = 0; i < K_COUNT; i++)
        if (c->k[i])
            clReleaseKernel(c->k[i]);
    if (c->prog)
        clReleaseProgram(c->prog);
    nh_net_plan_free(&c->plan);
    free(c->fuse);
    free(c->skip);
    free(c->node_prof);
    free(c);
}

static size_t round_up(size_t v, size_t m)
{
    return (v + m - 1) / m * m;
}

/* A work-group of up to max (a power of two) work-items along dimension 0, in which g[0] is
 * rounded up (kernels check their bounds). PoCL left to itself picks one-item-wide groups
 * when g[0] is prime (the stem's 23 vectors per row, 2025 / 16 pixels of a 1x1 conv), which
 * then run down the columns: measured 20% slower on the stem, 22% on the 1x1 convs. */
static void row_groups(size_t *g, size_t max, size_t *l)
{
    l[0] = l[1] = l[2] = 1;
    while (l[0] < max && l[0] < g[0])
        l[0] *= 2;
    g[0] = round_up(g[0], l[0]);
}

static nh_status make_buffer(nh_cl *cl, cl_mem_flags fl, size_t bytes, void *host, cl_mem *out,
                             nh_error *err)
{
    cl_int rc;
    *out = clCreateBuffer(nh_cl_context(cl), fl, bytes ? bytes : 4, host, &rc);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clCreateBuffer");
    return NH_OK;
}

static nh_status cl_create(const nh_model *m, const nh_runner_opts *opts, nh_runner **out,
                           nh_error *err)
{
    nh_status st;
    if (!opts->cl)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL,
                            "OpenCL runner needs an nh_cl context");
    cl_runner *c = calloc(1, sizeof *c);
    if (!c)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    c->base.backend = &nh_runner_cl;
    c->base.model = m;
    c->base.max_batch = opts->max_batch;
    c->cl = opts->cl;
    if ((st = nh_net_plan_build(m, &c->plan, err)) != NH_OK)
        goto fail;
    static const char *const files[] = {"util.cl", "act.cl", "norm.cl", "conv.cl", "head.cl"};
    /* Instance norm: a work-group reduction per plane on GPUs; on CPU devices one work-item
     * per plane, where barriers cost more than they share. */
    c->in_wg = (nh_cl_info(c->cl)->type & CL_DEVICE_TYPE_CPU) ? 1 : 64;
    if (getenv("NH_NET_IN_WG")) /* tests run the GPU shape on CPU devices too */
        c->in_wg = strtoul(getenv("NH_NET_IN_WG"), NULL, 10) == 1 ? 1 : 64;
    /* Work-group width: the implementation's choice unless NH_NET_WG says otherwise (an
     * experiment knob; explicit widths measured slower on PoCL). */
    c->wg_x = getenv("NH_NET_WG") ? strtoul(getenv("NH_NET_WG"), NULL, 10) : 0;
    if (c->wg_x > 256)
        c->wg_x = 0;
    c->pw_v = getenv("NH_NET_PW_V") ? strtoul(getenv("NH_NET_PW_V"), NULL, 10)
              : (nh_cl_info(c->cl)->type & CL_DEVICE_TYPE_CPU) ? 16
                                                               : 4;
    if (c->pw_v != 4 && c->pw_v != 8 && c->pw_v != 16)
        c->pw_v = 4;
    char options[512];
    c->c2_v = getenv("NH_NET_C2_V") ? strtoul(getenv("NH_NET_C2_V"), NULL, 10) : 8;
    if (c->c2_v != 16)
        c->c2_v = 8;
    /* NH_NET_CL_OPTIONS appends device compiler options (an experiment knob). */
    /* 8 output channels per 1x1 work-item on CPU devices (measured 1-3% faster than 4 on
     * PoCL with AVX-512), 4 elsewhere; NH_NET_PW_CO=4|8 chooses. */
    const char *pw_co = getenv("NH_NET_PW_CO");
    c->pw_co = pw_co ? (atoi(pw_co) == 8 ? 8 : 4) : c->pw_v == 16 ? 8 : 4;
    snprintf(options, sizeof options,
             "-DNH_IN_WG=%zu -DNH_PW_V=%zu -DNH_C2_V=%zu -DNH_PW_CO=%zu %.300s", c->in_wg, c->pw_v,
             c->c2_v, c->pw_co, getenv("NH_NET_CL_OPTIONS") ? getenv("NH_NET_CL_OPTIONS") : "");
    if ((st = nh_cl_program_build(c->cl, files, 5, options, &c->prog, err)) != NH_OK)
        goto fail;
    for (int i = 0; i < K_COUNT; i++)
        if ((st = nh_cl_kernel_create(c->prog, kernel_names[i], &c->k[i], err)) != NH_OK)
            goto fail;
    /* Kernels index a batch's tensor with 32-bit integers. */
    for (uint32_t i = 0; i < c->plan.n_slots; i++)
        if ((unsigned long long)c->plan.slot_floats[i] * opts->max_batch > 0xFFFFFFFFull ||
            (unsigned long long)m->in_h * m->in_w * 3 * opts->max_batch > 0xFFFFFFFFull) {
            st = nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL,
                              "batch of %zu images too large for this model on OpenCL",
                              opts->max_batch);
            goto fail;
        }
    c->slots = calloc(c->plan.n_slots, sizeof *c->slots);
    c->parents = calloc(c->plan.n_slots, sizeof *c->parents);
    c->fuse = calloc(m->n_nodes, sizeof *c->fuse);
    c->skip = calloc(m->n_nodes, sizeof *c->skip);
    uint32_t *uses = calloc((size_t)m->n_nodes + 1, sizeof *uses);
    if (!c->slots || !c->parents || !c->fuse || !c->skip || !uses) {
        free(uses);
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < 2; k++)
            if (m->nodes[i].in[k] != NH_NO_TENSOR)
                uses[m->nodes[i].in[k]]++;
    for (uint32_t i = 0; i + 1 < m->n_nodes; i++) {
        const nh_node *a = &m->nodes[i], *b = &m->nodes[i + 1];
        int fc = a->op == NH_OP_CONV && m->shapes[i + 1].h == 1 && m->shapes[i + 1].w == 1 &&
                 a->kh == 1 && a->kw == 1 && a->groups == 1 && m->shapes[a->in[0]].h == 1 &&
                 m->shapes[a->in[0]].w == 1;
        int fusable = a->op == NH_OP_INORM || a->op == NH_OP_MUL || a->op == NH_OP_ADD || fc;
        /* The fused kernel writes the activation's slot: it may alias an input only where
         * the op is elementwise over same-shaped tensors. */
        uint32_t ys = c->plan.slot[i + 2];
        for (int k = 0; k < 2 && fusable; k++) {
            uint32_t t = a->in[k];
            if (t == NH_NO_TENSOR || c->plan.slot[t] != ys)
                continue;
            int same = nh_shape_size(m->shapes[t]) == nh_shape_size(m->shapes[i + 1]);
            if (!(same && (a->op == NH_OP_INORM || a->op == NH_OP_ADD || a->op == NH_OP_MUL)))
                fusable = 0;
        }
        if (fusable && !c->skip[i] && b->op == NH_OP_ACT && b->in[0] == i + 1 && uses[i + 1] == 1) {
            c->fuse[i] = b->aux;
            c->skip[i + 1] = 1;
        }
    }
    free(uses);
    /* Every tensor sits guard floats into its buffer, with guard floats after it: the row
     * loads of the convolutions may run past a row's ends (conv.cl). The sub-buffer origin
     * must honour the device's base address alignment. */
    cl_uint align_bits = 0;
    if (clGetDeviceInfo(nh_cl_device(c->cl), CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits,
                        &align_bits, NULL) != CL_SUCCESS)
        align_bits = 0;
    /* A row load starts at most pad_left (< kw) floats before its row and, with 16 lanes
     * at stride 2, ends at most 32 + kw + pad_right floats past the last row's end. */
    uint64_t guard = 128;
    for (uint32_t i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == NH_OP_CONV && 2ull * m->nodes[i].kw + 48 > guard)
            guard = 2ull * m->nodes[i].kw + 48;
    if (guard > (1u << 20)) {
        st = nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL,
                          "convolution kernel too wide for the OpenCL runner");
        goto fail;
    }
    c->guard = (cl_uint)guard;
    if (align_bits >= 32 && align_bits / 32 <= 65536)
        c->guard = (cl_uint)round_up(c->guard, align_bits / 32);
    for (uint32_t i = 0; i < c->plan.n_slots; i++) {
        size_t bytes = c->plan.slot_floats[i] * opts->max_batch * sizeof(float);
        if ((st = make_buffer(c->cl, CL_MEM_READ_WRITE, bytes + 2 * c->guard * sizeof(float), NULL,
                              &c->parents[i], err)) != NH_OK)
            goto fail;
        cl_buffer_region reg = {c->guard * sizeof(float), bytes ? bytes : 4};
        cl_int rc;
        c->slots[i] = clCreateSubBuffer(c->parents[i], CL_MEM_READ_WRITE,
                                        CL_BUFFER_CREATE_TYPE_REGION, &reg, &rc);
        if (rc != CL_SUCCESS) {
            c->slots[i] = NULL;
            st = nh_cl_fail(err, rc, "clCreateSubBuffer");
            goto fail;
        }
    }
    if ((st = make_buffer(c->cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                          (size_t)m->n_weights * sizeof(float), m->n_weights ? m->weights : NULL,
                          &c->weights, err)) != NH_OK)
        goto fail;
    if (m->preprocess != NH_PRE_NONE) {
        float lut[256];
        if ((st = nh_net_preprocess_lut(m->preprocess, lut, err)) != NH_OK)
            goto fail;
        if ((st = make_buffer(c->cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof lut, lut,
                              &c->lut, err)) != NH_OK)
            goto fail;
        if ((st = make_buffer(c->cl, CL_MEM_READ_ONLY,
                              (size_t)m->in_h * m->in_w * 3 * opts->max_batch, NULL, &c->input,
                              err)) != NH_OK)
            goto fail;
    }
    *out = &c->base;
    return NH_OK;
fail:
    cl_destroy(&c->base);
    return st;
}

/* Set kernel arguments from a list: 'm' cl_mem, 'u' cl_uint, 'f' float. */
static cl_int set_args(cl_kernel k, const char *types, const void *const *vals)
{
    cl_int rc = CL_SUCCESS;
    for (cl_uint i = 0; types[i] && rc == CL_SUCCESS; i++) {
        size_t sz = types[i] == 'm'   ? sizeof(cl_mem)
                    : types[i] == 'u' ? sizeof(cl_uint)
                                      : sizeof(float);
        rc = clSetKernelArg(k, i, sz, vals[i]);
    }
    return rc;
}

/* Enqueue; where lws is NULL and wg_x is set, with a work-group of wg_x x 1 x 1 (dimension
 * 0 rounded up; kernels check their bounds). */
static nh_status enqueue(cl_runner *c, cl_kernel k, cl_uint dims, const size_t *gws,
                         const size_t *lws, const char *what, nh_error *err)
{
    size_t g[3], l[3] = {1, 1, 1};
    for (cl_uint d = 0; d < dims; d++)
        g[d] = gws[d];
    if (!lws && c->wg_x) {
        l[0] = c->wg_x;
        g[0] = round_up(g[0], l[0]);
        lws = l;
    }
    cl_int rc = clEnqueueNDRangeKernel(nh_cl_queue(c->cl), k, dims, NULL, g, lws, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, what);
    return NH_OK;
}

#define ARGS(...) ((const void *const[]){__VA_ARGS__})

static nh_status run_node(cl_runner *c, uint32_t i, size_t n, nh_error *err)
{
    const nh_model *m = c->base.model;
    const nh_node *nd = &m->nodes[i];
    nh_shape is = m->shapes[nd->in[0]];
    uint32_t out_t = c->fuse[i] ? i + 2 : i + 1;
    nh_shape os = m->shapes[i + 1];
    cl_mem x = c->slots[c->plan.slot[nd->in[0]]];
    cl_mem xg = c->parents[c->plan.slot[nd->in[0]]];
    cl_uint x_off = c->guard;
    cl_mem x1 = nd->in[1] != NH_NO_TENSOR ? c->slots[c->plan.slot[nd->in[1]]] : NULL;
    cl_mem y = c->slots[c->plan.slot[out_t]];
    cl_uint act = c->fuse[i], w_off = nd->w_off, ihw = is.h * is.w, ohw = os.h * os.w;
    cl_uint cc = is.c, oc = os.c, bias = nd->aux;
    cl_int rc;
    switch (nd->op) {
    case NH_OP_CONV: {
        if (ohw == 1 && ihw == 1 && nd->kh == 1 && nd->kw == 1 && nd->groups == 1) {
            rc = set_args(c->k[K_FC], "mmmuuuuu",
                          ARGS(&x, &y, &c->weights, &w_off, &cc, &oc, &bias, &act));
            if (rc != CL_SUCCESS)
                return nh_cl_fail(err, rc, "clSetKernelArg(nh_fc)");
            size_t g[2] = {oc, n};
            return enqueue(c, c->k[K_FC], 2, g, NULL, "nh_fc", err);
        }
        if (nd->kh == 1 && nd->kw == 1 && nd->groups == 1 && nd->stride == 1 && !nd->pad[0] &&
            !nd->pad[1] && !nd->pad[2] && !nd->pad[3]) {
            rc = set_args(c->k[K_CONV1X1], "mmmuuuuu",
                          ARGS(&x, &y, &c->weights, &w_off, &cc, &ihw, &oc, &bias));
            if (rc != CL_SUCCESS)
                return nh_cl_fail(err, rc, "clSetKernelArg(nh_conv1x1)");
            size_t g[3] = {(ihw + c->pw_v - 1) / c->pw_v, (oc + c->pw_co - 1) / c->pw_co, n};
            size_t l[3];
            row_groups(g, 16, l);
            return enqueue(c, c->k[K_CONV1X1], 3, g, c->wg_x ? NULL : l, "nh_conv1x1", err);
        }
        cl_uint h = is.h, wd = is.w, oh = os.h, ow = os.w, kh = nd->kh, kw = nd->kw;
        cl_uint s = nd->stride, pt = nd->pad[0], pl = nd->pad[1], gr = nd->groups;
        size_t g[3] = {(ow + 7) / 8, oh, n * cc};
        /* (nh_row reads strides 1 and 2 only; others go to the general kernel) */
        if (gr == cc && gr == oc && kh == kw && (kh == 3 || kh == 5) && s <= 2) {
            /* 16-pixel vectors on CPU devices (one AVX-512 register; measured faster even
             * on the 23- and 12-pixel rows, where lanes are wasted), 8 elsewhere. */
            int wide = c->pw_v == 16;
            cl_kernel k = c->k[kh == 3 ? (wide ? K_CONV_DW3W : K_CONV_DW3)
                                       : (wide ? K_CONV_DW5W : K_CONV_DW5)];
            if (wide)
                g[0] = (ow + 15) / 16;
            rc = set_args(k, "mummuuuuuuuuuu",
                          ARGS(&xg, &x_off, &y, &c->weights, &w_off, &cc, &h, &wd, &oh, &ow, &s,
                               &pt, &pl, &bias));
            if (rc != CL_SUCCESS)
                return nh_cl_fail(err, rc, "clSetKernelArg(nh_conv_dwK)");
            return enqueue(c, k, 3, g, NULL, "nh_conv_dwK", err);
        }
        if (gr == cc && gr == oc) {
            rc = set_args(c->k[K_CONV_DW], "mmmuuuuuuuuuuuu",
                          ARGS(&x, &y, &c->weights, &w_off, &cc, &h, &wd, &oh, &ow, &kh, &kw, &s,
                               &pt, &pl, &bias));
            if (rc != CL_SUCCESS)
                return nh_cl_fail(err, rc, "clSetKernelArg(nh_conv_dw)");
            g[0] = ow;
            return enqueue(c, c->k[K_CONV_DW], 3, g, NULL, "nh_conv_dw", err);
        }
        g[0] = (ow + c->c2_v - 1) / c->c2_v;
        g[2] = n * gr * ((oc / gr + 7) / 8);
        rc = set_args(c->k[K_CONV2D], "mummuuuuuuuuuuuuuu",
                      ARGS(&xg, &x_off, &y, &c->weights, &w_off, &cc, &h, &wd, &oc, &oh, &ow, &kh,
                           &kw, &s, &pt, &pl, &gr, &bias));
        if (rc != CL_SUCCESS)
            return nh_cl_fail(err, rc, "clSetKernelArg(nh_conv2d)");
        size_t l[3];
        row_groups(g, 32, l);
        return enqueue(c, c->k[K_CONV2D], 3, g, c->wg_x ? NULL : l, "nh_conv2d", err);
    }
    case NH_OP_INORM: {
        float eps = nd->eps;
        rc = set_args(c->k[K_INORM], "mmmuuufu",
                      ARGS(&x, &y, &c->weights, &w_off, &cc, &ihw, &eps, &act));
        if (rc != CL_SUCCESS)
            return nh_cl_fail(err, rc, "clSetKernelArg(nh_inorm)");
        size_t g[3] = {c->in_wg, cc, n}, l[3] = {c->in_wg, 1, 1};
        return enqueue(c, c->k[K_INORM], 3, g, l, "nh_inorm", err);
    }
    case NH_OP_ACT: {
        cl_uint count = (cl_uint)(n * nh_shape_size(is)), a = nd->aux;
        rc = set_args(c->k[K_ACT], "mmuu", ARGS(&x, &y, &count, &a));
        if (rc != CL_SUCCESS)
            return nh_cl_fail(err, rc, "clSetKernelArg(nh_act)");
        size_t g[1] = {round_up(count, 64)};
        return enqueue(c, c->k[K_ACT], 1, g, NULL, "nh_act", err);
    }
    case NH_OP_ADD: {
        cl_uint count = (cl_uint)(n * nh_shape_size(is));
        rc = set_args(c->k[K_ADD], "mmmuu", ARGS(&x, &x1, &y, &count, &act));
        if (rc != CL_SUCCESS)
            return nh_cl_fail(err, rc, "clSetKernelArg(nh_add)");
        size_t g[1] = {round_up(count, 64)};
        return enqueue(c, c->k[K_ADD], 1, g, NULL, "nh_add", err);
    }
    case NH_OP_MUL: {
        nh_shape s1 = m->shapes[nd->in[1]];
        cl_uint bc = s1.h == 1 && s1.w == 1 && ihw != 1;
        rc = set_args(c->k[K_MUL], "mmmuuuu", ARGS(&x, &x1, &y, &cc, &ihw, &bc, &act));
        if (rc != CL_SUCCESS)
            return nh_cl_fail(err, rc, "clSetKernelArg(nh_mul)");
        size_t g[3] = {(ihw + 15) / 16, cc, n};
        return enqueue(c, c->k[K_MUL], 3, g, NULL, "nh_mul", err);
    }
    case NH_OP_GAP: {
        rc = set_args(c->k[K_GAP], "mmuu", ARGS(&x, &y, &cc, &ihw));
        if (rc != CL_SUCCESS)
            return nh_cl_fail(err, rc, "clSetKernelArg(nh_gap)");
        size_t g[2] = {cc, n};
        return enqueue(c, c->k[K_GAP], 2, g, NULL, "nh_gap", err);
    }
    }
    return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL, "unknown op");
}

/* Process CPU seconds (all threads): steadier than wall time on a shared machine. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* NH_NET_PROFILE=1: wait for every node and print the CPU time per op kind to stderr
 * (columns: tensors larger than 1x1 / 1x1), cumulative, every 4 forward passes.
 * NH_NET_PROFILE=2: also each node's cumulative time, largest first (those over 1%). */
static void profile_node(cl_runner *c, uint32_t i, double dt, int per_node)
{
    const nh_model *m = c->base.model;
    const nh_node *nd = &m->nodes[i];
    int k = nd->op == NH_OP_CONV ? (nd->groups > 1 ? 7 : nd->kh == 1 ? 0 : 1) : (int)nd->op;
    c->prof[k][m->shapes[i + 1].h == 1] += dt;
    if (per_node && !c->node_prof)
        c->node_prof = calloc(m->n_nodes, sizeof *c->node_prof);
    if (c->node_prof)
        c->node_prof[i] += dt;
    if (i + 1 == m->n_nodes && ++c->prof_calls % 4 == 0) {
        static const char *const names[8] = {"conv1x1", "conv", "inorm", "act",
                                             "gap",     "mul",  "add",   "dwconv"};
        double total = 0;
        for (int j = 0; j < 8; j++) {
            fprintf(stderr, "%s %.3f/%.3f  ", names[j], c->prof[j][0], c->prof[j][1]);
            total += c->prof[j][0] + c->prof[j][1];
        }
        fprintf(stderr, "\n");
        if (!c->node_prof)
            return;
        uint8_t *done = calloc(m->n_nodes, 1);
        for (uint32_t r = 0; done && r < m->n_nodes; r++) {
            uint32_t best = UINT32_MAX;
            for (uint32_t j = 0; j < m->n_nodes; j++)
                if (!done[j] && (best == UINT32_MAX || c->node_prof[j] > c->node_prof[best]))
                    best = j;
            if (best == UINT32_MAX || c->node_prof[best] < 0.01 * total)
                break;
            done[best] = 1;
            const nh_node *b = &m->nodes[best];
            nh_shape is = m->shapes[b->in[0]], os = m->shapes[best + 1];
            fprintf(stderr, "  node %3u %-6s k%u g%-4u %ux%ux%u -> %ux%ux%u  %.3f s (%.1f%%)\n",
                    best, nh_op_name(b->op), b->kh, b->groups, is.c, is.h, is.w, os.c, os.h, os.w,
                    c->node_prof[best], 100.0 * c->node_prof[best] / total);
        }
        free(done);
    }
}

static nh_status forward(cl_runner *c, size_t n, float *out, nh_error *err)
{
    const nh_model *m = c->base.model;
    nh_status st;
    const char *pe = getenv("NH_NET_PROFILE");
    int prof = pe != NULL, per_node = pe && atoi(pe) >= 2;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        if (c->skip[i])
            continue;
        double t0 = prof ? cpu_now() : 0.0;
        if ((st = run_node(c, i, n, err)) != NH_OK)
            return st;
        if (prof) {
            clFinish(nh_cl_queue(c->cl));
            profile_node(c, i, cpu_now() - t0, per_node);
        }
    }
    cl_int rc = clEnqueueReadBuffer(nh_cl_queue(c->cl), c->slots[c->plan.slot[m->n_nodes]], CL_TRUE,
                                    0, n * m->out_dim * sizeof(float), out, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clEnqueueReadBuffer(output)");
    return NH_OK;
}

static nh_status cl_run(nh_runner *r, const uint8_t *in, size_t n, float *out, nh_error *err)
{
    cl_runner *c = (cl_runner *)r;
    const nh_model *m = r->model;
    cl_uint hw = m->in_h * m->in_w, total = (cl_uint)(hw * n);
    cl_int rc = clEnqueueWriteBuffer(nh_cl_queue(c->cl), c->input, CL_FALSE, 0, (size_t)total * 3,
                                     in, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clEnqueueWriteBuffer(input)");
    cl_mem x = c->slots[c->plan.slot[0]];
    rc = set_args(c->k[K_U8], "mmmuu", ARGS(&c->input, &x, &c->lut, &hw, &total));
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clSetKernelArg(nh_u8_to_nchw)");
    size_t g[1] = {round_up(total, 64)};
    nh_status st = enqueue(c, c->k[K_U8], 1, g, NULL, "nh_u8_to_nchw", err);
    if (st != NH_OK) {
        clFinish(nh_cl_queue(c->cl));
        return st;
    }
    /* The write is non-blocking: the read at the end of forward() waits for the queue,
     * and `in` stays borrowed until then. */
    st = forward(c, n, out, err);
    if (st != NH_OK)
        clFinish(nh_cl_queue(c->cl));
    return st;
}

static nh_status cl_run_f32(nh_runner *r, const float *in, size_t n, float *out, nh_error *err)
{
    cl_runner *c = (cl_runner *)r;
    size_t bytes = n * nh_shape_size(r->model->shapes[0]) * sizeof(float);
    cl_int rc = clEnqueueWriteBuffer(nh_cl_queue(c->cl), c->slots[c->plan.slot[0]], CL_TRUE, 0,
                                     bytes, in, 0, NULL, NULL);
    if (rc != CL_SUCCESS)
        return nh_cl_fail(err, rc, "clEnqueueWriteBuffer(input)");
    return forward(c, n, out, err);
}

const nh_runner_backend nh_runner_cl = {
    "opencl", cl_create, cl_run, cl_run_f32, cl_destroy,
};
