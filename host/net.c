/*
 * nhash net: the runner interface, the buffer plan shared by the runners, input
 * preprocessing and the seed projection to hashes. See nhash/net.h.
 */
#include "nhash/net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

nh_status nh_runner_create(const nh_runner_backend *b, const nh_model *m,
                           const nh_runner_opts *opts, nh_runner **out, nh_error *err)
{
    if (!b || !m || !m->shapes || !out)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL,
                            "runner needs a backend and a validated model");
    nh_runner_opts o = {1, NULL};
    if (opts)
        o = *opts;
    if (o.max_batch == 0)
        o.max_batch = 1;
    if (o.max_batch > 4096)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL,
                            "batch size %zu too large", o.max_batch);
    return b->create(m, &o, out, err);
}

static nh_status check_run(nh_runner *r, const void *in, size_t n, const float *out, nh_error *err)
{
    if (!r || (!in && n) || (!out && n))
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL, "null argument");
    if (n > r->max_batch)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL,
                            "batch of %zu images exceeds the runner's maximum %zu", n,
                            r->max_batch);
    return NH_OK;
}

nh_status nh_runner_run(nh_runner *r, const uint8_t *in, size_t n, float *out, nh_error *err)
{
    nh_status st = check_run(r, in, n, out, err);
    if (st != NH_OK)
        return st;
    if (r->model->preprocess == NH_PRE_NONE || r->model->in_c != 3)
        return nh_error_set(err, NH_ERR_UNSUPPORTED, NH_FOREIGN_NONE, 0, NULL,
                            "model has no uint8 preprocessing; use float input");
    return n ? r->backend->run(r, in, n, out, err) : NH_OK;
}

nh_status nh_runner_run_f32(nh_runner *r, const float *in, size_t n, float *out, nh_error *err)
{
    nh_status st = check_run(r, in, n, out, err);
    if (st != NH_OK)
        return st;
    return n ? r->backend->run_f32(r, in, n, out, err) : NH_OK;
}

void nh_runner_destroy(nh_runner *r)
{
    if (r)
        r->backend->destroy(r);
}

nh_status nh_net_preprocess_lut(uint32_t mode, float lut[256], nh_error *err)
{
    if (mode != NH_PRE_PM1)
        return nh_error_set(err, NH_ERR_UNSUPPORTED, NH_FOREIGN_NONE, 0, NULL,
                            "no uint8 preprocessing for mode %u", mode);
    /* float32 arithmetic, one rounding per operation, as numpy does on float32 arrays. */
    for (int v = 0; v < 256; v++) {
        volatile float t = (float)v / 255.0f;
        t = t * 2.0f;
        lut[v] = t - 1.0f;
    }
    return NH_OK;
}

nh_status nh_net_hash(const nh_model *m, const float *out, size_t n, uint8_t *hashes,
                      double *min_abs, double *scores, nh_error *err)
{
    if (m->hash_bits == 0 || !m->seed)
        return nh_error_set(err, NH_ERR_UNSUPPORTED, NH_FOREIGN_NONE, 0, NULL,
                            "model has no seed projection");
    size_t bytes = m->hash_bits / 8;
    for (size_t i = 0; i < n; i++) {
        const float *o = out + i * m->out_dim;
        uint8_t *h = hashes + i * bytes;
        memset(h, 0, bytes);
        double lo = INFINITY;
        for (uint32_t r = 0; r < m->hash_bits; r++) {
            const float *s = m->seed + (size_t)r * m->out_dim;
            double acc = 0.0;
            for (uint32_t k = 0; k < m->out_dim; k++)
                acc += (double)s[k] * (double)o[k];
            if (acc >= 0.0)
                h[r >> 3] |= (uint8_t)(0x80u >> (r & 7));
            if (fabs(acc) < lo)
                lo = fabs(acc);
            if (scores)
                scores[i * m->hash_bits + r] = acc;
        }
        if (min_abs)
            min_abs[i] = lo;
    }
    return NH_OK;
}

static int op_in_place(uint32_t op)
{
    return op == NH_OP_INORM || op == NH_OP_ACT || op == NH_OP_MUL || op == NH_OP_ADD;
}

nh_status nh_net_plan_build(const nh_model *m, nh_net_plan *plan, nh_error *err)
{
    nh_status st = NH_OK;
    uint32_t nt = m->n_nodes + 1;
    uint32_t *last = calloc(nt, sizeof *last);
    int64_t *occ = malloc(nt * sizeof *occ);
    memset(plan, 0, sizeof *plan);
    plan->slot = calloc(nt, sizeof *plan->slot);
    plan->slot_floats = calloc(nt, sizeof *plan->slot_floats);
    if (!last || !occ || !plan->slot || !plan->slot_floats) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        goto cleanup;
    }
    for (uint32_t i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < 2; k++)
            if (m->nodes[i].in[k] != NH_NO_TENSOR)
                last[m->nodes[i].in[k]] = i;
    last[m->n_nodes] = m->n_nodes; /* the output lives to the end */
    plan->slot[0] = 0;
    plan->slot_floats[0] = nh_shape_size(m->shapes[0]);
    occ[0] = 0;
    plan->n_slots = 1;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const nh_node *nd = &m->nodes[i];
        uint32_t t = i + 1;
        size_t need = nh_shape_size(m->shapes[t]);
        int64_t s = -1;
        if (op_in_place(nd->op)) {
            for (int k = 0; k < 2 && s < 0; k++) {
                uint32_t x = nd->in[k];
                if (x == NH_NO_TENSOR || last[x] != i || occ[plan->slot[x]] != (int64_t)x)
                    continue;
                if (nh_shape_size(m->shapes[x]) != need)
                    continue;
                /* MUL's broadcast operand and the other input must not share the slot. */
                uint32_t y = nd->in[1 - k];
                if (y != NH_NO_TENSOR && y != x && plan->slot[y] == plan->slot[x])
                    continue;
                s = plan->slot[x];
            }
        }
        if (s < 0) {
            for (uint32_t k = 0; k < plan->n_slots && s < 0; k++)
                if (occ[k] < 0)
                    s = k;
            if (s < 0) {
                s = plan->n_slots++;
                plan->slot_floats[s] = 0;
            }
        }
        if (plan->slot_floats[s] < need)
            plan->slot_floats[s] = need;
        plan->slot[t] = (uint32_t)s;
        /* Free inputs that die here (unless the output took their slot). */
        for (int k = 0; k < 2; k++) {
            uint32_t x = nd->in[k];
            if (x != NH_NO_TENSOR && last[x] == i && plan->slot[x] != (uint32_t)s &&
                occ[plan->slot[x]] == (int64_t)x)
                occ[plan->slot[x]] = -1;
        }
        occ[s] = t;
        if (last[t] <= i && t != m->n_nodes) /* never read: free at once */
            occ[s] = -1;
    }
cleanup:
    free(last);
    free(occ);
    if (st != NH_OK)
        nh_net_plan_free(plan);
    return st;
}

void nh_net_plan_free(nh_net_plan *plan)
{
    if (!plan)
        return;
    free(plan->slot);
    free(plan->slot_floats);
    memset(plan, 0, sizeof *plan);
}
