/*
 * The hashing core through its library API (nhash/pipeline.h): every file is opened once and
 * decoded once at full size, whatever kinds the job computes (the old design opened each file
 * three times and decoded it twice); the PDQ hashes derived from that one decode equal the
 * file-level reference path (nh_pdq_hash_file, which decodes on its own), in C and on the
 * OpenCL device; records list one hash per kind, with every dihedral variant when asked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nhash/decode.h"
#include "nhash/pdq.h"
#include "nhash/pipeline.h"

static char model[1200];
static char *const *paths;
static size_t npaths;

#define MAXREC 16
struct got {
    size_t n;
    nh_record rec[MAXREC];
    char path[MAXREC][256];
};

static int collect(const nh_record *r, void *user)
{
    struct got *g = user;
    if (g->n < MAXREC) {
        g->rec[g->n] = *r;
        snprintf(g->path[g->n], sizeof g->path[0], "%s", r->path);
        g->n++;
    }
    return 0;
}

static void run_job(nh_pipeline_opts *o, struct got *g, unsigned long d[3])
{
    nh_pipeline *p = NULL;
    nh_error err;
    nh_error_clear(&err);
    o->model_path = model;
    assert_int_equal(nh_pipeline_create(o, &p, &err), NH_OK);
    nh_input *in = NULL;
    assert_int_equal(nh_input_create(paths, npaths, 0, &in, &err), NH_OK);
    unsigned long before[3], after[3];
    nh_decode_counts(&before[0], &before[1], &before[2]);
    memset(g, 0, sizeof *g);
    nh_pipeline_stats st;
    assert_int_equal(nh_pipeline_run(p, in, collect, g, &st, &err), NH_OK);
    nh_decode_counts(&after[0], &after[1], &after[2]);
    for (int k = 0; k < 3; k++)
        d[k] = after[k] - before[k];
    nh_input_destroy(in);
    nh_pipeline_destroy(p);
}

/* Every kind, compat input: one open and one full decode per file, no other decode. */
static void test_one_open_one_decode(void **state)
{
    (void)state;
    nh_pipeline_opts o;
    nh_pipeline_opts_default(&o);
    o.kinds = NH_KIND_BIT(NH_KIND_NEURAL) | NH_KIND_BIT(NH_KIND_PDQ) | NH_KIND_BIT(NH_KIND_DIGEST);
    o.batch = 3;
    struct got g;
    unsigned long d[3];
    run_job(&o, &g, d);
    printf("%zu files: %lu opens, %lu full decodes, %lu shrink-on-load decodes\n", g.n, d[0], d[1],
           d[2]);
    assert_int_equal(g.n, npaths);
    assert_int_equal(d[0], npaths);
    assert_int_equal(d[1], npaths);
    assert_int_equal(d[2], 0);
    for (size_t i = 0; i < g.n; i++) {
        const nh_record *r = &g.rec[i];
        assert_int_equal(r->status, NH_OK);
        assert_int_equal(r->nhashes, 3);
        assert_non_null(nh_record_hash(r, NH_KIND_NEURAL, NH_VARIANT_ORIGINAL));
        assert_non_null(nh_record_hash(r, NH_KIND_PDQ, NH_VARIANT_ORIGINAL));
        assert_non_null(nh_record_hash(r, NH_KIND_DIGEST, NH_VARIANT_ORIGINAL));
        assert_true(r->src_width > 0 && r->src_height > 0);
    }
    /* A digest-only job decodes nothing (it streams the bytes). */
    o.kinds = NH_KIND_BIT(NH_KIND_DIGEST);
    run_job(&o, &g, d);
    assert_int_equal(d[0], npaths);
    assert_int_equal(d[1] + d[2], 0);
}

/* PDQ from the pipeline's one decode = PDQ of the file by its own decode, in C and on the
 * OpenCL device, all 8 variants. */
static void test_pdq_equals_file_path(void **state)
{
    (void)state;
    nh_pdq_scratch *s = nh_pdq_scratch_new();
    uint8_t *pix = malloc(NH_PDQ_FILE_PIXEL_BYTES);
    assert_non_null(s);
    assert_non_null(pix);
    const nh_pdq_backend be[2] = {NH_PDQ_BACKEND_C, NH_PDQ_BACKEND_CL};
    for (int k = 0; k < 2; k++) {
        nh_pipeline_opts o;
        nh_pipeline_opts_default(&o);
        o.kinds = NH_KIND_BIT(NH_KIND_NEURAL) | NH_KIND_BIT(NH_KIND_PDQ);
        o.pdq_backend = be[k];
        o.pdq_dihedral = 1;
        struct got g;
        unsigned long d[3];
        run_job(&o, &g, d);
        assert_int_equal(g.n, npaths);
        for (size_t i = 0; i < g.n; i++) {
            uint8_t want[8 * 32];
            int q = -1;
            nh_error err;
            nh_error_clear(&err);
            assert_int_equal(nh_pdq_hash_file(g.path[i], NH_PDQ_DIHEDRAL, pix, s, want, &q, NULL,
                                              NULL, &err),
                             NH_OK);
            for (int v = 0; v < NH_VARIANTS; v++) {
                const nh_hash *h = nh_record_hash(&g.rec[i], NH_KIND_PDQ, (nh_variant)v);
                assert_non_null(h);
                assert_memory_equal(h->bytes, want + 32 * v, 32);
                assert_int_equal(h->quality, q);
            }
        }
    }
    free(pix);
    nh_pdq_scratch_free(s);
}

int main(void)
{
    static char bufs[4][1200];
    static char *list[4];
    const char *src = getenv("NH_SOURCE_DIR");
    if (!src)
        src = ".";
    const char *names[4] = {"samples/astronaut.jpg", "samples/chelsea.webp", "samples/camera.png",
                            "tests/data/pdq/pixels/bridge-mods_shrink-a-lot.png"};
    for (int i = 0; i < 4; i++) {
        snprintf(bufs[i], sizeof bufs[i], "%s/%s", src, names[i]);
        list[i] = bufs[i];
    }
    paths = list;
    npaths = 4;
    snprintf(model, sizeof model, "%s/models/nh_test.nhm", src);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_open_one_decode),
        cmocka_unit_test(test_pdq_equals_file_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
