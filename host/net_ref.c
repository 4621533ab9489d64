/*
 * nhash net: the plain-C reference runner. Straightforward loops, float accumulation in a
 * fixed order, statistics in double, built with -ffp-contract=off (nh_flags). It defines
 * what the OpenCL kernels are tested against; it is not meant to be fast.
 */
#include "nhash/net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void nh_ref_conv(const nh_node *nd, nh_shape is, nh_shape os, const float *w, size_t n,
                 const float *x, float *y)
{
    uint32_t g_in = is.c / nd->groups, g_out = nd->out_c / nd->groups;
    size_t ihw = (size_t)is.h * is.w, ohw = (size_t)os.h * os.w;
    const float *bias = nd->aux ? w + (size_t)nd->out_c * g_in * nd->kh * nd->kw : NULL;
    int s = (int)nd->stride, pt = (int)nd->pad[0], pl = (int)nd->pad[1];
    for (size_t b = 0; b < n; b++) {
        for (uint32_t co = 0; co < os.c; co++) {
            float *yo = y + (b * os.c + co) * ohw;
            uint32_t g = co / g_out;
            memset(yo, 0, ohw * sizeof *yo);
            for (uint32_t ci = 0; ci < g_in; ci++) {
                const float *xi = x + (b * is.c + g * g_in + ci) * ihw;
                for (uint32_t ky = 0; ky < nd->kh; ky++) {
                    for (uint32_t kx = 0; kx < nd->kw; kx++) {
                        float wv = w[(((size_t)co * g_in + ci) * nd->kh + ky) * nd->kw + kx];
                        /* Output columns whose input column lies inside the image. */
                        int off = (int)kx - pl;
                        int lo = off >= 0 ? 0 : (-off + s - 1) / s;
                        int hi = ((int)is.w - 1 - off) < 0 ? -1 : ((int)is.w - 1 - off) / s;
                        if (hi > (int)os.w - 1)
                            hi = (int)os.w - 1;
                        for (uint32_t oy = 0; oy < os.h; oy++) {
                            int iy = (int)oy * s + (int)ky - pt;
                            if (iy < 0 || iy >= (int)is.h)
                                continue;
                            const float *xr = xi + (size_t)iy * is.w;
                            float *yr = yo + (size_t)oy * os.w;
                            if (s == 1) {
                                for (int ox = lo; ox <= hi; ox++)
                                    yr[ox] += wv * xr[ox + off];
                            } else {
                                for (int ox = lo; ox <= hi; ox++)
                                    yr[ox] += wv * xr[ox * s + off];
                            }
                        }
                    }
                }
            }
            if (bias)
                for (size_t p = 0; p < ohw; p++)
                    yo[p] += bias[co];
        }
    }
}

void nh_ref_inorm(nh_shape s, const float *gamma, const float *beta, float eps, size_t n,
                  const float *x, float *y)
{
    size_t hw = (size_t)s.h * s.w;
    for (size_t b = 0; b < n; b++) {
        for (uint32_t c = 0; c < s.c; c++) {
            const float *xp = x + (b * s.c + c) * hw;
            float *yp = y + (b * s.c + c) * hw;
            double sum = 0.0;
            for (size_t p = 0; p < hw; p++)
                sum += xp[p];
            double mean = sum / (double)hw, ss = 0.0;
            for (size_t p = 0; p < hw; p++) {
                double d = xp[p] - mean;
                ss += d * d;
            }
            double var = ss / (double)hw;
            float scale = (float)((double)gamma[c] / sqrt(var + (double)eps));
            float m = (float)mean;
            for (size_t p = 0; p < hw; p++)
                yp[p] = (xp[p] - m) * scale + beta[c];
        }
    }
}

static float act1(uint32_t act, float v)
{
    float t;
    switch (act) {
    case NH_ACT_RELU:
        return v > 0.0f ? v : 0.0f;
    case NH_ACT_HSWISH:
        t = fminf(fmaxf(v + 3.0f, 0.0f), 6.0f);
        return v * t / 6.0f;
    case NH_ACT_HSIGMOID:
        t = fminf(fmaxf(v + 3.0f, 0.0f), 6.0f);
        return t / 6.0f;
    default:
        return v;
    }
}

void nh_ref_act(uint32_t act, size_t count, const float *x, float *y)
{
    for (size_t i = 0; i < count; i++)
        y[i] = act1(act, x[i]);
}

void nh_ref_gap(nh_shape s, size_t n, const float *x, float *y)
{
    size_t hw = (size_t)s.h * s.w;
    for (size_t b = 0; b < n; b++)
        for (uint32_t c = 0; c < s.c; c++) {
            const float *xp = x + (b * s.c + c) * hw;
            double sum = 0.0;
            for (size_t p = 0; p < hw; p++)
                sum += xp[p];
            y[b * s.c + c] = (float)(sum / (double)hw);
        }
}

void nh_ref_mul(nh_shape s, nh_shape s1, size_t n, const float *a, const float *b, float *y)
{
    size_t hw = (size_t)s.h * s.w;
    int bc = s1.h == 1 && s1.w == 1 && hw != 1;
    for (size_t i = 0; i < n; i++)
        for (uint32_t c = 0; c < s.c; c++) {
            size_t base = (i * s.c + c) * hw;
            for (size_t p = 0; p < hw; p++)
                y[base + p] = a[base + p] * (bc ? b[i * s.c + c] : b[base + p]);
        }
}

void nh_ref_add(size_t count, const float *a, const float *b, float *y)
{
    for (size_t i = 0; i < count; i++)
        y[i] = a[i] + b[i];
}

typedef struct ref_runner {
    nh_runner base;
    nh_net_plan plan;
    float **slots;
    float lut[256];
} ref_runner;

static void ref_destroy(nh_runner *r)
{
    ref_runner *rr = (ref_runner *)r;
    if (!rr)
        return;
    if (rr->slots)
        for (uint32_t k = 0; k < rr->plan.n_slots; k++)
            free(rr->slots[k]);
    free(rr->slots);
    nh_net_plan_free(&rr->plan);
    free(rr);
}

static nh_status ref_create(const nh_model *m, const nh_runner_opts *opts, nh_runner **out,
                            nh_error *err)
{
    nh_status st;
    ref_runner *rr = calloc(1, sizeof *rr);
    if (!rr)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    rr->base.backend = &nh_runner_ref;
    rr->base.model = m;
    rr->base.max_batch = opts->max_batch;
    if ((st = nh_net_plan_build(m, &rr->plan, err)) != NH_OK)
        goto fail;
    if (m->preprocess != NH_PRE_NONE &&
        (st = nh_net_preprocess_lut(m->preprocess, rr->lut, err)) != NH_OK)
        goto fail;
    rr->slots = calloc(rr->plan.n_slots, sizeof *rr->slots);
    if (!rr->slots)
        goto nomem;
    for (uint32_t k = 0; k < rr->plan.n_slots; k++) {
        rr->slots[k] = malloc(rr->plan.slot_floats[k] * opts->max_batch * sizeof(float));
        if (!rr->slots[k])
            goto nomem;
    }
    *out = &rr->base;
    return NH_OK;
nomem:
    st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
fail:
    ref_destroy(&rr->base);
    return st;
}

static void ref_forward(ref_runner *rr, size_t n, float *out)
{
    const nh_model *m = rr->base.model;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const nh_node *nd = &m->nodes[i];
        nh_shape is = m->shapes[nd->in[0]], os = m->shapes[i + 1];
        const float *x = rr->slots[rr->plan.slot[nd->in[0]]];
        const float *x1 = nd->in[1] != NH_NO_TENSOR ? rr->slots[rr->plan.slot[nd->in[1]]] : NULL;
        float *y = rr->slots[rr->plan.slot[i + 1]];
        const float *w = m->weights + nd->w_off;
        switch (nd->op) {
        case NH_OP_CONV:
            nh_ref_conv(nd, is, os, w, n, x, y);
            break;
        case NH_OP_INORM:
            nh_ref_inorm(is, w, w + is.c, nd->eps, n, x, y);
            break;
        case NH_OP_ACT:
            nh_ref_act(nd->aux, n * nh_shape_size(is), x, y);
            break;
        case NH_OP_GAP:
            nh_ref_gap(is, n, x, y);
            break;
        case NH_OP_MUL:
            nh_ref_mul(is, m->shapes[nd->in[1]], n, x, x1, y);
            break;
        case NH_OP_ADD:
            nh_ref_add(n * nh_shape_size(is), x, x1, y);
            break;
        }
    }
    memcpy(out, rr->slots[rr->plan.slot[m->n_nodes]], n * m->out_dim * sizeof(float));
}

static nh_status ref_run(nh_runner *r, const uint8_t *in, size_t n, float *out, nh_error *err)
{
    (void)err;
    ref_runner *rr = (ref_runner *)r;
    const nh_model *m = r->model;
    size_t hw = (size_t)m->in_h * m->in_w;
    float *x = rr->slots[rr->plan.slot[0]];
    for (size_t b = 0; b < n; b++)
        for (size_t p = 0; p < hw; p++)
            for (int c = 0; c < 3; c++)
                x[(b * 3 + (size_t)c) * hw + p] = rr->lut[in[(b * hw + p) * 3 + (size_t)c]];
    ref_forward(rr, n, out);
    return NH_OK;
}

static nh_status ref_run_f32(nh_runner *r, const float *in, size_t n, float *out, nh_error *err)
{
    (void)err;
    ref_runner *rr = (ref_runner *)r;
    memcpy(rr->slots[rr->plan.slot[0]], in, n * nh_shape_size(r->model->shapes[0]) * sizeof(float));
    ref_forward(rr, n, out);
    return NH_OK;
}

const nh_runner_backend nh_runner_ref = {
    "ref", ref_create, ref_run, ref_run_f32, ref_destroy,
};
