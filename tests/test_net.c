/*
 * net: the .nhm format, ONNX import, the C reference and OpenCL runners, hashes.
 *
 * - every OpenCL kernel against the C reference on random inputs, several sizes and batch
 *   sizes (tolerances stated per case, relative to the largest reference value);
 * - the whole network against onnxruntime's outputs (tests/data/net/expected.tsv, made by
 *   scripts/net/make_fixtures.py): max |diff| / max |ref| <= 1e-4 and hashes within one bit,
 *   for both runners;
 * - batch results equal single-image results;
 * - import -> save -> load round trip, byte for byte;
 * - the loader refuses truncated, flipped and hostile files.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "nhash/decode.h"
#include "nhash/net.h"
#include "sha256.h"

static nh_cl *g_cl;
static nh_model *g_model; /* models/nh_test.nhm */

#define MAX_FIX 16
typedef struct fixture {
    char name[64], source[256], sha[65], hash[25];
    double min_abs;
    float out[128];
} fixture;
static fixture g_fix[MAX_FIX];
static size_t g_nfix;

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void err_print(const char *what, const nh_error *err)
{
    char buf[2048];
    fprintf(stderr, "%s: %s\n", what, nh_error_format(err, buf, sizeof buf));
}

static int load_fixtures(void)
{
    const char *dir = getenv("NH_FIXTURE_DIR");
    char *p = path_join(dir ? dir : "tests/data", "net/expected.tsv");
    FILE *f = fopen(p, "r");
    free(p);
    if (!f)
        return -1;
    static char line[16384];
    while (fgets(line, sizeof line, f) && g_nfix < MAX_FIX) {
        if (line[0] == '#')
            continue;
        fixture *x = &g_fix[g_nfix];
        char *save = NULL, *tok = strtok_r(line, "\t", &save);
        int field = 0;
        for (; tok && field < 5; field++, tok = strtok_r(NULL, "\t", &save)) {
            if (field == 0)
                snprintf(x->name, sizeof x->name, "%s", tok);
            else if (field == 1)
                snprintf(x->source, sizeof x->source, "%s", tok);
            else if (field == 2)
                snprintf(x->sha, sizeof x->sha, "%s", tok);
            else if (field == 3)
                snprintf(x->hash, sizeof x->hash, "%s", tok);
            else
                x->min_abs = strtod(tok, NULL);
        }
        if (!tok)
            continue;
        char *s = tok;
        for (int k = 0; k < 128; k++)
            x->out[k] = strtof(s, &s);
        g_nfix++;
    }
    fclose(f);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    nh_error err;
    nh_error_clear(&err);
    if (nh_cl_create(NULL, NULL, &g_cl, &err) != NH_OK) {
        err_print("no OpenCL device", &err);
        return -1;
    }
    /* The committed test model is models/nh_test.nhm (binary16 weights, exactly the network
     * scripts/net/make_fixtures.py exported); when the 7 MB ONNX it came from is present too
     * (after running that script), importing it must give the same model. */
    const char *src = getenv("NH_SOURCE_DIR");
    char *pn = path_join(src ? src : ".", "models/nh_test.nhm");
    if (nh_model_load(pn, &g_model, &err) != NH_OK) {
        err_print("models/nh_test.nhm", &err);
        free(pn);
        return -1;
    }
    free(pn);
    char *po = path_join(src ? src : ".", "models/nh_test.onnx");
    char *ps = path_join(src ? src : ".", "models/nh_test_seed.dat");
    size_t lo = 0, ls = 0;
    uint8_t *onnx = read_file(po, &lo), *seedf = read_file(ps, &ls);
    free(po);
    free(ps);
    if (onnx && seedf) {
        float *seed = NULL;
        uint32_t rows = 0;
        nh_model *im = NULL;
        double max_rel = 1;
        nh_onnx_opts o = {0, 0, "nh_test", "1"};
        if (nh_onnx_read_seed(seedf, ls, 128, &seed, &rows, &err) != NH_OK ||
            nh_onnx_import(onnx, lo, seed, rows, &o, &im, &err) != NH_OK ||
            nh_model_to_f16(im, &max_rel, &err) != NH_OK || nh_model_validate(im, &err) != NH_OK) {
            err_print("import", &err);
            return -1;
        }
        uint8_t *b1 = NULL;
        size_t l1 = 0;
        nh_model_serialize(im, &b1, &l1, &err);
        nh_model *again = NULL;
        nh_model_load_buffer(b1, l1, "import", &again, &err);
        int same = again && again->fingerprint == g_model->fingerprint && max_rel == 0;
        printf("models/nh_test.onnx imported: %s models/nh_test.nhm\n",
               same ? "identical to" : "DIFFERENT from");
        nh_model_destroy(again);
        free(b1);
        free(seed);
        nh_model_destroy(im);
        if (!same)
            return -1;
    } else {
        printf("models/nh_test.onnx absent (made by scripts/net/make_fixtures.py, not committed): "
               "testing the committed models/nh_test.nhm\n");
    }
    free(onnx);
    free(seedf);
    if (load_fixtures() != 0 || g_nfix == 0) {
        fprintf(stderr, "no fixtures in NH_FIXTURE_DIR/net/expected.tsv\n");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nh_model_destroy(g_model);
    nh_cl_destroy(g_cl);
    return 0;
}

/* ---- random single-op models: each kernel against the C reference ---- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static float frand(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

/* Nonzero random values: never exactly zero, so a kernel that skips work shows. */
static float frand_nz(void)
{
    float v = frand();
    return v == 0.0f ? 0.5f : v;
}

typedef struct case_model {
    nh_model *m;
    uint32_t nw;
} case_model;

static void cm_init(case_model *c, uint32_t ic, uint32_t ih, uint32_t iw)
{
    nh_error err;
    nh_error_clear(&err);
    assert_int_equal(nh_model_new(&c->m, &err), NH_OK);
    snprintf(c->m->name, sizeof c->m->name, "case");
    c->m->in_c = ic;
    c->m->in_h = ih;
    c->m->in_w = iw;
    c->m->nodes = calloc(16, sizeof(nh_node));
    c->m->weights = calloc(1u << 21, sizeof(float));
    assert_non_null(c->m->nodes);
    assert_non_null(c->m->weights);
    c->nw = 0;
}

/* Append a node with nweights random weights (gamma around 1 for norms). */
static uint32_t cm_add(case_model *c, nh_node nd, uint32_t nweights)
{
    nd.w_off = nweights ? c->nw : 0;
    nd.w_len = nweights;
    if (nd.op != NH_OP_MUL && nd.op != NH_OP_ADD)
        nd.in[1] = NH_NO_TENSOR;
    for (uint32_t k = 0; k < nweights; k++)
        c->m->weights[c->nw + k] = frand_nz() * 0.5f;
    if (nd.op == NH_OP_INORM)
        for (uint32_t k = 0; k < nweights / 2; k++)
            c->m->weights[c->nw + k] += 1.0f;
    c->nw += nweights;
    c->m->nodes[c->m->n_nodes] = nd;
    return ++c->m->n_nodes;
}

static void cm_finish(case_model *c)
{
    nh_error err;
    nh_error_clear(&err);
    c->m->n_weights = c->nw;
    if (!c->m->seed)
        c->m->out_dim = 0; /* filled from the last node */
    if (nh_model_validate(c->m, &err) != NH_OK)
        err_print("case model", &err);
    assert_int_equal(err.status, NH_OK);
}

/* Run a case model on both runners at batch n and compare. tol: max |diff| / max |ref|. */
static double cm_compare(case_model *c, size_t n, double tol, const char *what)
{
    nh_error err;
    nh_error_clear(&err);
    nh_model *m = c->m;
    size_t in_n = nh_shape_size(m->shapes[0]) * n, out_n = (size_t)m->out_dim * n;
    float *x = malloc(in_n * sizeof *x), *a = malloc(out_n * sizeof *a),
          *b = malloc(out_n * sizeof *b);
    assert_non_null(x);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t i = 0; i < in_n; i++)
        x[i] = frand_nz() * 3.0f;
    nh_runner *rr = NULL, *rc = NULL;
    nh_runner_opts o = {n, g_cl};
    assert_int_equal(nh_runner_create(&nh_runner_ref, m, &o, &rr, &err), NH_OK);
    if (nh_runner_create(&nh_runner_cl, m, &o, &rc, &err) != NH_OK)
        err_print("cl runner", &err);
    assert_int_equal(err.status, NH_OK);
    assert_int_equal(nh_runner_run_f32(rr, x, n, a, &err), NH_OK);
    assert_int_equal(nh_runner_run_f32(rc, x, n, b, &err), NH_OK);
    double maxref = 0.0, maxdiff = 0.0;
    for (size_t i = 0; i < out_n; i++) {
        assert_false(isnan(a[i]) || isnan(b[i]));
        maxref = fmax(maxref, fabs(a[i]));
        maxdiff = fmax(maxdiff, fabs((double)a[i] - b[i]));
    }
    double rel = maxdiff / (maxref > 0 ? maxref : 1.0);
    printf("  %-34s batch %zu: max|ref| %.3g, max rel diff %.2e (tol %.0e)\n", what, n, maxref, rel,
           tol);
    assert_true(maxref > 0.0);
    assert_true(rel <= tol);
    nh_runner_destroy(rr);
    nh_runner_destroy(rc);
    free(x);
    free(a);
    free(b);
    return rel;
}

static nh_node conv_node(uint32_t in, uint32_t oc, uint32_t k, uint32_t s, uint32_t pt, uint32_t pl,
                         uint32_t pb, uint32_t pr, uint32_t groups, uint32_t bias)
{
    nh_node nd = {0};
    nd.op = NH_OP_CONV;
    nd.in[0] = in;
    nd.out_c = oc;
    nd.kh = nd.kw = k;
    nd.stride = s;
    nd.pad[0] = pt;
    nd.pad[1] = pl;
    nd.pad[2] = pb;
    nd.pad[3] = pr;
    nd.groups = groups;
    nd.aux = bias;
    return nd;
}

static nh_node simple_node(uint32_t op, uint32_t in0, uint32_t in1, uint32_t aux, float eps)
{
    nh_node nd = {0};
    nd.op = op;
    nd.in[0] = in0;
    nd.in[1] = in1;
    nd.aux = aux;
    nd.eps = eps;
    return nd;
}

static void test_kernel_conv(void **state)
{
    (void)state;
    static const size_t batches[] = {1, 3};
    for (size_t bi = 0; bi < 2; bi++) {
        size_t n = batches[bi];
        case_model c;
        /* Stem: 3x3 s2, TF-SAME asymmetric pad on an even input. */
        cm_init(&c, 3, 36, 36);
        cm_add(&c, conv_node(0, 16, 3, 2, 0, 0, 1, 1, 1, 0), 16 * 3 * 9);
        cm_finish(&c);
        cm_compare(&c, n, 1e-5, "conv2d 3x3 s2 3->16 36x36");
        nh_model_destroy(c.m);
        /* General conv with bias and odd size. */
        cm_init(&c, 5, 17, 13);
        cm_add(&c, conv_node(0, 7, 3, 1, 1, 1, 1, 1, 1, 1), 7 * 5 * 9 + 7);
        cm_finish(&c);
        cm_compare(&c, n, 1e-5, "conv2d 3x3 s1 5->7 17x13 bias");
        nh_model_destroy(c.m);
        /* Grouped conv (2 groups of 3 -> 5 channels) and stride 3: the blocked and gather
         * paths of nh_conv2d. */
        cm_init(&c, 6, 20, 19);
        cm_add(&c, conv_node(0, 10, 3, 1, 1, 0, 1, 2, 2, 1), 10 * 3 * 9 + 10);
        cm_finish(&c);
        cm_compare(&c, n, 1e-5, "conv2d 3x3 g2 6->10 20x19 bias");
        nh_model_destroy(c.m);
        cm_init(&c, 4, 26, 26);
        cm_add(&c, conv_node(0, 12, 5, 3, 2, 2, 2, 2, 1, 0), 12 * 4 * 25);
        cm_finish(&c);
        cm_compare(&c, n, 1e-5, "conv2d 5x5 s3 4->12 26x26");
        nh_model_destroy(c.m);
        /* Depthwise with a kernel size other than 3 and 5 (generic kernel). */
        cm_init(&c, 8, 15, 15);
        cm_add(&c, conv_node(0, 8, 7, 2, 3, 3, 3, 3, 8, 1), 8 * 49 + 8);
        cm_finish(&c);
        cm_compare(&c, n, 1e-5, "dwconv 7x7 s2 c8 15x15 bias");
        nh_model_destroy(c.m);
        /* 3x3 at stride 3: the generic kernel too (the unrolled ones read strides 1, 2). */
        cm_init(&c, 8, 16, 16);
        cm_add(&c, conv_node(0, 8, 3, 3, 1, 1, 1, 1, 8, 1), 8 * 9 + 8);
        cm_finish(&c);
        cm_compare(&c, n, 1e-5, "dwconv 3x3 s3 c8 16x16 bias");
        nh_model_destroy(c.m);
        /* Pointwise GEMM: pixel tails (45x45 = 2025) and channel tails (out 22). */
        static const uint32_t pw[][3] = {{16, 56, 45}, {24, 22, 23}, {72, 432, 12}, {40, 216, 7}};
        for (size_t k = 0; k < 4; k++) {
            char what[96];
            cm_init(&c, pw[k][0], pw[k][2], pw[k][2]);
            cm_add(&c, conv_node(0, pw[k][1], 1, 1, 0, 0, 0, 0, 1, k & 1),
                   pw[k][1] * pw[k][0] + (k & 1 ? pw[k][1] : 0));
            cm_finish(&c);
            snprintf(what, sizeof what, "conv1x1 %u->%u %ux%u%s", pw[k][0], pw[k][1], pw[k][2],
                     pw[k][2], k & 1 ? " bias" : "");
            cm_compare(&c, n, 1e-5, what);
            nh_model_destroy(c.m);
        }
        /* Depthwise 3x3 / 5x5, stride 1 and 2, symmetric and asymmetric pads. */
        static const uint32_t dw[][6] = {{16, 30, 3, 2, 0, 1},
                                         {24, 45, 3, 1, 1, 1},
                                         {72, 45, 5, 2, 2, 2},
                                         {32, 23, 5, 1, 2, 2},
                                         {216, 23, 5, 2, 2, 2}};
        for (size_t k = 0; k < 5; k++) {
            char what[96];
            uint32_t ch = dw[k][0], sz = dw[k][1], ks = dw[k][2], s = dw[k][3];
            cm_init(&c, ch, sz, sz);
            cm_add(&c, conv_node(0, ch, ks, s, dw[k][4], dw[k][4], dw[k][5], dw[k][5], ch, 0),
                   ch * ks * ks);
            cm_finish(&c);
            snprintf(what, sizeof what, "dwconv %ux%u s%u c%u %ux%u", ks, ks, s, ch, sz, sz);
            cm_compare(&c, n, 1e-5, what);
            nh_model_destroy(c.m);
        }
        /* Fully connected (head GEMVs) with a fused activation. */
        cm_init(&c, 432, 1, 1);
        uint32_t t = cm_add(&c, conv_node(0, 1280, 1, 1, 0, 0, 0, 0, 1, 1), 1280 * 432 + 1280);
        t = cm_add(&c, simple_node(NH_OP_ACT, t, 0, NH_ACT_HSWISH, 0), 0);
        t = cm_add(&c, conv_node(t, 500, 1, 1, 0, 0, 0, 0, 1, 1), 500 * 1280 + 500);
        t = cm_add(&c, simple_node(NH_OP_ACT, t, 0, NH_ACT_RELU, 0), 0);
        cm_add(&c, conv_node(t, 128, 1, 1, 0, 0, 0, 0, 1, 1), 128 * 500 + 128);
        cm_finish(&c);
        cm_compare(&c, n, 1e-5, "head fc 432->1280->500->128");
        nh_model_destroy(c.m);
    }
}

static void test_kernel_norm_act(void **state)
{
    (void)state;
    static const size_t batches[] = {1, 2, 5};
    static const uint32_t sizes[][2] = {{16, 90}, {56, 45}, {184, 23}, {432, 12}, {3, 1}};
    for (size_t bi = 0; bi < 3; bi++)
        for (size_t si = 0; si < 5; si++)
            for (uint32_t act = 0; act <= NH_ACT_HSIGMOID; act++) {
                case_model c;
                char what[96];
                uint32_t ch = sizes[si][0], sz = sizes[si][1];
                if (sz == 1 && act)
                    continue;
                cm_init(&c, ch, sz, sz + 1);
                uint32_t t = cm_add(&c, simple_node(NH_OP_INORM, 0, 0, 0, 1e-6f), 2 * ch);
                if (act)
                    cm_add(&c, simple_node(NH_OP_ACT, t, 0, act, 0), 0);
                cm_finish(&c);
                snprintf(what, sizeof what, "inorm+%s c%u %ux%u", nh_act_name(act), ch, sz, sz + 1);
                cm_compare(&c, batches[bi], 1e-5, what);
                nh_model_destroy(c.m);
            }
    /* Standalone activations (not fusable: the conv output feeds them), GAP, SE, add. */
    for (size_t bi = 0; bi < 3; bi++) {
        size_t n = batches[bi];
        for (uint32_t act = 1; act <= NH_ACT_HSIGMOID; act++) {
            case_model c;
            char what[96];
            cm_init(&c, 8, 19, 21);
            uint32_t t = cm_add(&c, conv_node(0, 8, 1, 1, 0, 0, 0, 0, 1, 0), 64);
            cm_add(&c, simple_node(NH_OP_ACT, t, 0, act, 0), 0);
            cm_finish(&c);
            snprintf(what, sizeof what, "act %s after conv", nh_act_name(act));
            cm_compare(&c, n, 1e-5, what);
            nh_model_destroy(c.m);
        }
        case_model c;
        /* SE: gap -> fc+relu -> fc+hsigmoid -> broadcast mul + hswish, then residual add. */
        cm_init(&c, 72, 23, 23);
        uint32_t g = cm_add(&c, simple_node(NH_OP_GAP, 0, 0, 0, 0), 0);
        uint32_t t = cm_add(&c, conv_node(g, 18, 1, 1, 0, 0, 0, 0, 1, 1), 18 * 72 + 18);
        t = cm_add(&c, simple_node(NH_OP_ACT, t, 0, NH_ACT_RELU, 0), 0);
        t = cm_add(&c, conv_node(t, 72, 1, 1, 0, 0, 0, 0, 1, 1), 72 * 18 + 72);
        t = cm_add(&c, simple_node(NH_OP_ACT, t, 0, NH_ACT_HSIGMOID, 0), 0);
        t = cm_add(&c, simple_node(NH_OP_MUL, 0, t, 0, 0), 0);
        t = cm_add(&c, simple_node(NH_OP_ACT, t, 0, NH_ACT_HSWISH, 0), 0);
        cm_add(&c, simple_node(NH_OP_ADD, t, 0, 0, 0), 0);
        cm_finish(&c);
        cm_compare(&c, n, 1e-5, "se + hswish + residual add");
        nh_model_destroy(c.m);
        cm_init(&c, 40, 23, 23);
        t = cm_add(&c, conv_node(0, 40, 1, 1, 0, 0, 0, 0, 1, 0), 1600);
        cm_add(&c, simple_node(NH_OP_MUL, t, 0, 0, 0), 0);
        cm_finish(&c);
        cm_compare(&c, n, 1e-5, "elementwise mul");
        nh_model_destroy(c.m);
    }
}

/* ---- the whole network against onnxruntime ---- */

static void synth(int k, uint8_t *rgb)
{
    for (int y = 0; y < 360; y++)
        for (int x = 0; x < 360; x++)
            for (int c = 0; c < 3; c++)
                rgb[((size_t)y * 360 + x) * 3 + c] =
                    (uint8_t)((x * (3 + 2 * k) + y * (5 + k) + c * 77 + ((x * y) >> (4 + k))) &
                              255);
}

/* Decode the fixture images (Pillow-compatible) into rgb; returns how many are usable. */
static size_t fixture_images(uint8_t *rgb, size_t *idx)
{
    const char *data = getenv("NH_DATA_DIR");
    nh_decode_opts o;
    nh_decode_opts_default(&o);
    size_t n = 0, img = 360 * 360 * 3;
    for (size_t i = 0; i < g_nfix; i++) {
        uint8_t *dst = rgb + n * img;
        if (!strncmp(g_fix[i].source, "synth:", 6)) {
            synth(atoi(g_fix[i].source + 6), dst);
        } else {
            if (!data)
                continue;
            char *p = path_join(data, g_fix[i].source);
            nh_error err;
            nh_error_clear(&err);
            nh_status st = nh_decode_file(p, &o, dst, NULL, &err);
            free(p);
            if (st != NH_OK) {
                printf("  %s: not available (%s), skipped\n", g_fix[i].name, err.msg);
                continue;
            }
        }
        char hex[65];
        nh_test_sha256_hex(dst, img, hex);
        if (strcmp(hex, g_fix[i].sha) != 0) {
            printf("  %s: decoded pixels differ from Pillow's, skipped\n", g_fix[i].name);
            continue;
        }
        idx[n++] = i;
    }
    return n;
}

static void check_network(const nh_runner_backend *b, size_t batch)
{
    nh_error err;
    nh_error_clear(&err);
    size_t img = 360 * 360 * 3, idx[MAX_FIX];
    uint8_t *rgb = malloc(img * MAX_FIX);
    float *out = malloc(sizeof(float) * 128 * MAX_FIX);
    assert_non_null(rgb);
    assert_non_null(out);
    size_t n = fixture_images(rgb, idx);
    assert_true(n >= 2); /* the synthetic images at least */
    nh_runner *r = NULL;
    nh_runner_opts o = {batch, g_cl};
    assert_int_equal(nh_runner_create(b, g_model, &o, &r, &err), NH_OK);
    for (size_t i = 0; i < n; i += batch) {
        size_t k = n - i < batch ? n - i : batch;
        if (nh_runner_run(r, rgb + i * img, k, out + i * 128, &err) != NH_OK)
            err_print("run", &err);
        assert_int_equal(err.status, NH_OK);
    }
    uint8_t hashes[MAX_FIX * 12];
    double minabs[MAX_FIX];
    assert_int_equal(nh_net_hash(g_model, out, n, hashes, minabs, NULL, &err), NH_OK);
    double worst = 0.0;
    unsigned worst_bits = 0;
    for (size_t i = 0; i < n; i++) {
        const fixture *f = &g_fix[idx[i]];
        double maxref = 0.0, maxdiff = 0.0;
        for (int k = 0; k < 128; k++) {
            assert_false(isnan(out[i * 128 + k]));
            maxref = fmax(maxref, fabs(f->out[k]));
            maxdiff = fmax(maxdiff, fabs((double)out[i * 128 + k] - f->out[k]));
        }
        uint8_t want[12];
        assert_int_equal(nh_hex_decode(f->hash, 24, want, 12), NH_OK);
        unsigned bits = nh_hamming(want, hashes + i * 12, 12);
        char hex[25];
        nh_hex_encode(hashes + i * 12, 12, hex);
        printf("  %-6s %-10s rel err %.2e  hash %s  %u bit(s) off  min|score| %.2e (ort %.2e)\n",
               b->name, f->name, maxdiff / maxref, hex, bits, minabs[i], f->min_abs);
        worst = fmax(worst, maxdiff / maxref);
        worst_bits = bits > worst_bits ? bits : worst_bits;
        assert_true(maxdiff / maxref <= 1e-4);
        assert_true(bits <= 1);
    }
    printf("  %s batch %zu: %zu images, worst rel err %.2e, worst %u bit(s)\n", b->name, batch, n,
           worst, worst_bits);
    nh_runner_destroy(r);
    free(rgb);
    free(out);
}

static void test_network_ref(void **state)
{
    (void)state;
    check_network(&nh_runner_ref, 4);
}

static void test_network_cl(void **state)
{
    (void)state;
    check_network(&nh_runner_cl, 8);
}

/* The kernel shapes chosen for GPUs (work-group reductions in instance norm, 4-pixel
 * pointwise tiles), run on whatever device this is. */
static void test_network_cl_gpu_shapes(void **state)
{
    (void)state;
    setenv("NH_NET_IN_WG", "64", 1);
    setenv("NH_NET_PW_V", "4", 1);
    check_network(&nh_runner_cl, 3);
    unsetenv("NH_NET_IN_WG");
    unsetenv("NH_NET_PW_V");
}

static void test_batch_equals_single(void **state)
{
    (void)state;
    nh_error err;
    nh_error_clear(&err);
    size_t img = 360 * 360 * 3, n = 5;
    uint8_t *rgb = malloc(img * n);
    float *a = malloc(sizeof(float) * 128 * n), *b = malloc(sizeof(float) * 128 * n);
    assert_non_null(rgb);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        synth((int)i, rgb + i * img);
    nh_runner *r = NULL;
    nh_runner_opts o = {n, g_cl};
    assert_int_equal(nh_runner_create(&nh_runner_cl, g_model, &o, &r, &err), NH_OK);
    assert_int_equal(nh_runner_run(r, rgb, n, a, &err), NH_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(nh_runner_run(r, rgb + i * img, 1, b + i * 128, &err), NH_OK);
    /* Same kernels, same per-value summation order: identical, not just close. */
    assert_memory_equal(a, b, sizeof(float) * 128 * n);
    /* Too large a batch is refused, not overrun. */
    assert_int_equal(nh_runner_run(r, rgb, n + 1, a, &err), NH_ERR_INVALID);
    nh_runner_destroy(r);
    free(rgb);
    free(a);
    free(b);
}

/* ---- the file format ---- */

static void test_roundtrip(void **state)
{
    (void)state;
    nh_error err;
    nh_error_clear(&err);
    uint8_t *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    assert_int_equal(nh_model_serialize(g_model, &b1, &l1, &err), NH_OK);
    nh_model *m = NULL;
    assert_int_equal(nh_model_load_buffer(b1, l1, "mem", &m, &err), NH_OK);
    assert_int_equal(m->fingerprint, g_model->fingerprint);
    assert_int_equal(m->n_nodes, g_model->n_nodes);
    assert_int_equal(m->hash_bits, 96);
    assert_int_equal(m->out_dim, 128);
    assert_string_equal(m->name, "nh_test");
    assert_int_equal(nh_model_serialize(m, &b2, &l2, &err), NH_OK);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    /* The graph is the documented architecture: 1.80 M weights plus the 96 x 128 seed. */
    printf("  %u nodes, %u weights, %.1f M multiply-adds, fingerprint %016llx\n", m->n_nodes,
           m->n_weights, (double)nh_model_macs(m) / 1e6, (unsigned long long)m->fingerprint);
    assert_true(m->n_weights > 1790000 && m->n_weights < 1810000);
    nh_model_destroy(m);
    free(b1);
    free(b2);
}

/* Rewrite the fingerprint so a mutation reaches the field checks behind it. */
static void refingerprint(uint8_t *b, size_t len)
{
    memset(b + 24, 0, 8);
    uint64_t h = XXH64(b, len, 0);
    for (int k = 0; k < 8; k++)
        b[24 + k] = (uint8_t)(h >> (8 * k));
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static nh_status load_mut(const uint8_t *orig, size_t len, size_t off, uint32_t v, int refp)
{
    uint8_t *b = malloc(len);
    assert_non_null(b);
    memcpy(b, orig, len);
    put32(b + off, v);
    if (refp)
        refingerprint(b, len);
    nh_error err;
    nh_error_clear(&err);
    nh_model *m = NULL;
    nh_status st = nh_model_load_buffer(b, len, "mut", &m, &err);
    if (st == NH_OK)
        nh_model_destroy(m);
    else
        assert_true(strlen(err.msg) > 0);
    free(b);
    return st;
}

static void test_loader_rejects(void **state)
{
    (void)state;
    nh_error err;
    nh_error_clear(&err);
    /* A small but complete model keeps this fast: the SE block case. */
    case_model c;
    cm_init(&c, 8, 5, 5);
    uint32_t t = cm_add(&c, conv_node(0, 8, 3, 2, 1, 1, 1, 1, 1, 1), 8 * 8 * 9 + 8);
    t = cm_add(&c, simple_node(NH_OP_INORM, t, 0, 0, 1e-6f), 16);
    uint32_t g = cm_add(&c, simple_node(NH_OP_GAP, t, 0, 0, 0), 0);
    uint32_t s = cm_add(&c, simple_node(NH_OP_ACT, g, 0, NH_ACT_HSIGMOID, 0), 0);
    t = cm_add(&c, simple_node(NH_OP_MUL, t, s, 0, 0), 0);
    t = cm_add(&c, simple_node(NH_OP_ADD, t, t, 0, 0), 0);
    cm_add(&c, simple_node(NH_OP_GAP, t, 0, 0, 0), 0);
    c.m->hash_bits = 16;
    c.m->out_dim = 8;
    c.m->seed = malloc(16 * 8 * sizeof(float));
    for (int k = 0; k < 16 * 8; k++)
        c.m->seed[k] = frand_nz();
    cm_finish(&c);
    uint8_t *b = NULL;
    size_t len = 0;
    assert_int_equal(nh_model_serialize(c.m, &b, &len, &err), NH_OK);
    nh_model *m = NULL;
    assert_int_equal(nh_model_load_buffer(b, len, "ok", &m, &err), NH_OK);
    nh_model_destroy(m);

    /* Truncation at every length. */
    for (size_t l = 0; l < len; l++) {
        m = NULL;
        assert_int_not_equal(nh_model_load_buffer(b, l, "trunc", &m, &err), NH_OK);
        assert_null(m);
    }
    /* One extra byte. */
    uint8_t *big = calloc(1, len + 1);
    memcpy(big, b, len);
    assert_int_equal(nh_model_load_buffer(big, len + 1, "long", &m, &err), NH_ERR_FORMAT);
    free(big);
    /* Any flipped bit is caught (the fingerprint at least). */
    for (size_t off = 0; off < len; off++) {
        b[off] ^= (uint8_t)(1u << (off % 8));
        m = NULL;
        assert_int_equal(nh_model_load_buffer(b, len, "flip", &m, &err), NH_ERR_FORMAT);
        b[off] ^= (uint8_t)(1u << (off % 8));
    }
    /* Hostile values behind a valid fingerprint: each field check on its own. */
    static const struct {
        size_t off;
        uint32_t v;
    } hdr[] = {{8, 2},       {12, 128}, {16, 0},           {32, 0},  {32, 70000},       {36, 0},
               {40, 5000},   {44, 7},   {48, 9},           {52, 12}, {52, 1u << 20},    {56, 0},
               {56, 100000}, {56, 8},   {60, 32},          {64, 4},  {64, 0xffffff00u}, {68, 1},
               {72, 3},      {72, 0},   {80, 0xffffffffu}, {84, 1},  {88, 0},           {92, 1},
               {200, 1}};
    for (size_t k = 0; k < sizeof hdr / sizeof hdr[0]; k++) {
        if (load_mut(b, len, hdr[k].off, hdr[k].v, 1) == NH_OK)
            fail_msg("header field at %zu = %u accepted", hdr[k].off, hdr[k].v);
    }
    /* Node fields: op, inputs, shapes, weight ranges; node 0 is the conv, 1 the norm. */
    static const struct {
        size_t node, field;
        uint32_t v;
    } nf[] = {{0, 0, 0},
              {0, 0, 7},
              {0, 4, 1},
              {0, 4, 0xffffffffu},
              {0, 8, 0},
              {0, 12, 0},
              {0, 12, 1u << 20},
              {0, 16, 0},
              {0, 16, 16},
              {0, 24, 0},
              {0, 24, 9},
              {0, 28, 3},
              {0, 40, 5},
              {0, 44, 3},
              {0, 44, 0},
              {0, 48, 2},
              {0, 52, 0x3f800000u},
              {0, 56, 1},
              {0, 60, 5},
              {0, 60, 0},
              {0, 56, 0xfffffff0u},
              {1, 52, 0},
              {1, 52, 0x7fc00000u},
              {1, 52, 0xbf800000u},
              {1, 12, 8},
              {1, 60, 15},
              {3, 48, 9},
              {3, 48, 0},
              {4, 8, 0xffffffffu},
              {4, 8, 6},
              {4, 8, 0},
              {5, 8, 3},
              {6, 4, 9}};
    for (size_t k = 0; k < sizeof nf / sizeof nf[0]; k++) {
        if (load_mut(b, len, 256 + nf[k].node * 64 + nf[k].field, nf[k].v, 1) == NH_OK)
            fail_msg("node %zu field %zu = %u accepted", nf[k].node, nf[k].field, nf[k].v);
    }
    /* Non-finite weight and seed values. */
    uint64_t woff = 0, soff = 0;
    for (int k = 0; k < 8; k++) {
        woff |= (uint64_t)b[72 + k] << (8 * k);
        soff |= (uint64_t)b[88 + k] << (8 * k);
    }
    assert_int_equal(load_mut(b, len, (size_t)woff + 8, 0x7f800000u, 1), NH_ERR_FORMAT);
    assert_int_equal(load_mut(b, len, (size_t)soff + 4, 0x7fc00000u, 1), NH_ERR_FORMAT);
    /* Random mutations behind a valid fingerprint: whatever the loader accepts must run
     * safely (ASan/UBSan builds check the runs). */
    for (int it = 0; it < 3000; it++) {
        uint8_t *mb = malloc(len);
        assert_non_null(mb);
        memcpy(mb, b, len);
        int flips = 1 + (int)(g_rng % 3);
        for (int f = 0; f < flips; f++) {
            frand();
            size_t off = (size_t)(g_rng % (len < 700 ? len : 700)); /* header, nodes, weights */
            frand();
            mb[off] =
                (g_rng & 1) ? (uint8_t)(g_rng >> 8) : (uint8_t)(mb[off] ^ (1u << (g_rng >> 8 & 7)));
        }
        refingerprint(mb, len);
        m = NULL;
        if (nh_model_load_buffer(mb, len, "fuzz", &m, &err) == NH_OK) {
            nh_runner *r = NULL;
            nh_runner_opts o = {2, NULL};
            size_t in_n = nh_shape_size(m->shapes[0]) * 2;
            float *x = calloc(in_n, sizeof *x), *y = calloc((size_t)m->out_dim * 2, sizeof *y);
            assert_non_null(x);
            assert_non_null(y);
            for (size_t k = 0; k < in_n; k++)
                x[k] = frand_nz();
            assert_int_equal(nh_runner_create(&nh_runner_ref, m, &o, &r, &err), NH_OK);
            assert_int_equal(nh_runner_run_f32(r, x, 2, y, &err), NH_OK);
            nh_runner_destroy(r);
            free(x);
            free(y);
            nh_model_destroy(m);
        }
        free(mb);
    }
    /* Not a model at all. */
    assert_int_equal(nh_model_load_buffer("hello", 5, "tiny", &m, &err), NH_ERR_FORMAT);
    assert_int_equal(nh_model_load("/nonexistent/x.nhm", &m, &err), NH_ERR_NOT_FOUND);
    free(b);
    nh_model_destroy(c.m);
}

static void test_hash_bits(void **state)
{
    (void)state;
    /* bit i = score i >= 0, bit 0 the MSB; exact zero gives 1; min |score| reported. */
    nh_model m;
    memset(&m, 0, sizeof m);
    m.out_dim = 2;
    m.hash_bits = 16;
    float seed[32], out[2] = {1.0f, 0.0f};
    for (int r = 0; r < 16; r++) {
        seed[2 * r] = (r % 3 == 0) ? -1.0f : (r % 3 == 1) ? 0.0f : 0.25f * (float)r;
        seed[2 * r + 1] = 7.0f;
    }
    m.seed = seed;
    uint8_t h[2];
    double mn, sc[16];
    nh_error err;
    nh_error_clear(&err);
    assert_int_equal(nh_net_hash(&m, out, 1, h, &mn, sc, &err), NH_OK);
    /* rows 0,3,6,9,12,15 negative -> 0; others >= 0 -> 1 */
    assert_int_equal(h[0], 0x6d); /* 0110 1101 */
    assert_int_equal(h[1], 0xb6); /* 1011 0110 */
    assert_true(mn == 0.0);
    assert_true(sc[2] == 0.5);
}

static void test_import_refuses(void **state)
{
    (void)state;
    nh_error err;
    nh_error_clear(&err);
    nh_model *m = NULL;
    assert_int_equal(nh_onnx_import("\xff\xff\xff", 3, NULL, 0, NULL, &m, &err), NH_ERR_FORMAT);
    uint32_t rows;
    float *seed;
    uint8_t small[100] = {0};
    assert_int_equal(nh_onnx_read_seed(small, sizeof small, 128, &seed, &rows, &err),
                     NH_ERR_FORMAT);
    /* An unsupported op is refused with the node's name and op type. */
    const char *src = getenv("NH_SOURCE_DIR");
    char *p = path_join(src ? src : ".", "models/nh_unsupported.onnx");
    size_t len = 0;
    uint8_t *onnx = read_file(p, &len);
    assert_non_null(onnx);
    nh_onnx_opts o = {32, 32, NULL, NULL};
    assert_int_equal(nh_onnx_import(onnx, len, NULL, 0, &o, &m, &err), NH_ERR_UNSUPPORTED);
    printf("  refused: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "(Softmax)"));
    assert_non_null(strstr(err.msg, "unsupported operator"));
    /* Mutated protobuf: any status, never a crash (ASan builds check). */
    for (int it = 0; it < 300; it++) {
        uint8_t *mb = malloc(len);
        assert_non_null(mb);
        memcpy(mb, onnx, len);
        for (int f = 0; f < 4; f++) {
            frand();
            mb[g_rng % len] = (uint8_t)(g_rng >> 24);
        }
        nh_error_clear(&err);
        m = NULL;
        if (nh_onnx_import(mb, len, NULL, 0, &o, &m, &err) == NH_OK)
            nh_model_destroy(m);
        free(mb);
    }
    /* Truncated protobuf: refused, never a crash. */
    for (size_t cut = 1; cut < len; cut += len / 37 + 1) {
        nh_error_clear(&err);
        nh_status st = nh_onnx_import(onnx, cut, NULL, 0, &o, &m, &err);
        assert_int_not_equal(st, NH_OK);
    }
    free(onnx);
    free(p);
}

/* The op patterns of other exporters (scripts/net/make_pattern_fixtures.py): separate Pad,
 * decomposed HardSwish/HardSigmoid, split depthwise conv, ReduceMean, MatMul + Add. */
static void test_import_patterns(void **state)
{
    (void)state;
    nh_error err;
    nh_error_clear(&err);
    const char *src = getenv("NH_SOURCE_DIR"), *fix = getenv("NH_FIXTURE_DIR");
    char *po = path_join(src ? src : ".", "models/nh_patterns.onnx");
    char *pi = path_join(fix ? fix : "tests/data", "net/patterns_input.bin");
    char *pe = path_join(fix ? fix : "tests/data", "net/patterns_expected.bin");
    size_t lo = 0, li = 0, le = 0;
    uint8_t *onnx = read_file(po, &lo), *in = read_file(pi, &li), *exp = read_file(pe, &le);
    assert_non_null(onnx);
    assert_non_null(in);
    assert_non_null(exp);
    size_t n = le / (16 * 4);
    assert_int_equal(li, n * 3 * 32 * 32 * 4);
    nh_model *m = NULL;
    nh_onnx_opts o = {32, 32, "patterns", "1"};
    if (nh_onnx_import(onnx, lo, NULL, 0, &o, &m, &err) != NH_OK)
        err_print("import", &err);
    assert_int_equal(err.status, NH_OK);
    assert_int_equal(m->out_dim, 16);
    unsigned acts[4] = {0}, dw = 0;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        if (m->nodes[i].op == NH_OP_ACT)
            acts[m->nodes[i].aux]++;
        if (m->nodes[i].op == NH_OP_CONV && m->nodes[i].groups == 8)
            dw++;
    }
    /* hswish twice (decomposed, x * HardSigmoid), hsigmoid once (decomposed), relu twice. */
    assert_int_equal(acts[NH_ACT_HSWISH], 2);
    assert_int_equal(acts[NH_ACT_HSIGMOID], 1);
    assert_int_equal(acts[NH_ACT_RELU], 2);
    assert_int_equal(dw, 1);
    const nh_runner_backend *bs[2] = {&nh_runner_ref, &nh_runner_cl};
    float out[64 * 16];
    for (int b = 0; b < 2; b++) {
        nh_runner *r = NULL;
        nh_runner_opts ro = {n, g_cl};
        assert_int_equal(nh_runner_create(bs[b], m, &ro, &r, &err), NH_OK);
        assert_int_equal(nh_runner_run_f32(r, (const float *)in, n, out, &err), NH_OK);
        double maxref = 0, maxdiff = 0;
        for (size_t k = 0; k < n * 16; k++) {
            float e;
            memcpy(&e, exp + 4 * k, 4);
            maxref = fmax(maxref, fabs(e));
            maxdiff = fmax(maxdiff, fabs((double)e - out[k]));
        }
        printf("  %-6s patterns model: %u nodes, max rel err %.2e vs onnxruntime\n", bs[b]->name,
               m->n_nodes, maxdiff / maxref);
        assert_true(maxdiff / maxref <= 1e-5);
        nh_runner_destroy(r);
    }
    nh_model_destroy(m);
    /* Mutated protobuf of a model that maps every pattern: any status, never a crash. */
    for (int it = 0; it < 400; it++) {
        uint8_t *mb = malloc(lo);
        assert_non_null(mb);
        memcpy(mb, onnx, lo);
        for (int f = 0; f < 3; f++) {
            frand();
            mb[g_rng % lo] = (uint8_t)(g_rng >> 24);
        }
        nh_error_clear(&err);
        m = NULL;
        if (nh_onnx_import(mb, lo, NULL, 0, &o, &m, &err) == NH_OK)
            nh_model_destroy(m);
        free(mb);
    }
    free(onnx);
    free(in);
    free(exp);
    free(po);
    free(pi);
    free(pe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_bits),           cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_loader_rejects),      cmocka_unit_test(test_import_refuses),
        cmocka_unit_test(test_import_patterns),     cmocka_unit_test(test_kernel_conv),
        cmocka_unit_test(test_kernel_norm_act),     cmocka_unit_test(test_network_ref),
        cmocka_unit_test(test_network_cl),          cmocka_unit_test(test_network_cl_gpu_shapes),
        cmocka_unit_test(test_batch_equals_single),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
