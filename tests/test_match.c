/*
 * nh_match: the audit's matching policy on records made by hand (hashes at known Hamming
 * distances from the set's entries, by flipping chosen bits), so every expected result
 * follows from the construction: radius boundaries per kind, one neural kind per model,
 * PDQ's quality cut, dihedral and mirror variants reported once at their best distance,
 * digests exactly, and the archive's threshold count.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nhash/match.h"
#include "nhdb/nhdb.h"

#define FP_A 0x1122334455667788ULL
#define FP_B 0x8877665544332211ULL

static char dir[64];
static nh_db *db;
static nh_db_reader *rd;

/* Deterministic bytes (xorshift) so entries are far apart (~half the bits differ). */
static void fill(uint8_t *b, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)x;
    }
}

/* Flip the first d bits. */
static void flip(uint8_t *b, unsigned d)
{
    for (unsigned i = 0; i < d; i++)
        b[i / 8] ^= (uint8_t)(0x80u >> (i % 8));
}

static void add(const nh_kind *k, uint64_t seed, int quality, const char *source)
{
    uint8_t h[NH_HASH_MAX_BYTES];
    fill(h, nh_kind_bits(k) / 8, seed);
    nh_db_entry e = {.kind = *k, .hash = h, .quality = quality, .source = source};
    assert_int_equal(nh_db_add(db, &e, NULL), NH_OK);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/nh_test_match_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (nh_db_open(dir, NH_DB_OPEN_CREATE | NH_DB_OPEN_NOSYNC, NULL, &db, NULL) != NH_OK)
        return -1;
    nh_kind na = nh_kind_neural(FP_A, 96), nb = nh_kind_neural(FP_B, 96);
    nh_kind pdq = nh_kind_of(NH_KIND_PDQ), dig = nh_kind_of(NH_KIND_DIGEST);
    nh_db_batch_begin(db, NULL);
    add(&na, 1, -1, "neural-a-1");
    add(&nb, 1, -1, "neural-b-1"); /* same bytes, another model */
    add(&pdq, 2, 90, "pdq-2");
    add(&pdq, 3, 40, "pdq-3-lowq");
    add(&pdq, 4, 100, "pdq-4");
    add(&dig, 5, -1, "digest-5");
    if (nh_db_batch_commit(db, NULL, NULL, NULL) != NH_OK)
        return -1;
    return nh_db_reader_create(db, &rd, NULL) == NH_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nh_db_reader_destroy(rd);
    nh_db_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static nh_hash *put(nh_record *r, nh_kind k, uint64_t seed, unsigned dist, nh_variant v, int q)
{
    nh_hash *h = &r->hashes[r->nhashes++];
    memset(h, 0, sizeof *h);
    h->kind = k;
    h->variant = v;
    h->quality = q;
    fill(h->bytes, nh_kind_bits(&k) / 8, seed);
    flip(h->bytes, dist);
    return h;
}

#define MAXM 16
struct got {
    size_t n;
    nh_match m[MAXM];
    char src[MAXM][32];
};

static int collect(const nh_match *m, void *user)
{
    struct got *g = user;
    if (g->n < MAXM) {
        g->m[g->n] = *m;
        snprintf(g->src[g->n], sizeof g->src[0], "%s", m->source);
        g->n++;
    }
    return 0;
}

static const nh_match_opts radii = {.radius_neural = 12, .radius_pdq = 31};

static void run_match(const nh_record *r, const nh_kind *neural, struct got *g, size_t *reliable)
{
    memset(g, 0, sizeof *g);
    size_t n = 0;
    assert_int_equal(nh_match_record(rd, neural, &radii, r, collect, g, &n, reliable, NULL), NH_OK);
    assert_int_equal(n, g->n);
}

/* Distance equal to the radius matches, one more does not; per kind. */
static void test_radius_boundaries(void **state)
{
    (void)state;
    nh_kind na = nh_kind_neural(FP_A, 96);
    struct got g;
    size_t rel;
    for (unsigned d = 11; d <= 13; d++) {
        nh_record r = {.path = "x"};
        put(&r, na, 1, d, NH_VARIANT_ORIGINAL, -1);
        put(&r, nh_kind_of(NH_KIND_PDQ), 4, d + 19, NH_VARIANT_ORIGINAL, 100); /* 30..32 */
        run_match(&r, &na, &g, &rel);
        size_t want = (d <= 12) + (d + 19 <= 31);
        assert_int_equal(g.n, want);
        assert_int_equal(rel, want);
        for (size_t i = 0; i < g.n; i++) {
            assert_true(g.m[i].distance <= g.m[i].radius);
            assert_int_equal(g.m[i].has_variant, 0);
        }
        if (d <= 12) {
            assert_int_equal(g.m[0].kind, NH_KIND_NEURAL);
            assert_int_equal(g.m[0].distance, d);
            assert_string_equal(g.src[0], "neural-a-1"); /* never model B's entry */
        }
    }
}

/* A neural hash of a model the set has no entries of matches nothing, even bit-equal. */
static void test_other_model(void **state)
{
    (void)state;
    nh_kind nc = nh_kind_neural(0x0102030405060708ULL, 96);
    nh_record r = {.path = "x"};
    put(&r, nc, 1, 0, NH_VARIANT_ORIGINAL, -1);
    struct got g;
    size_t rel;
    run_match(&r, &nc, &g, &rel);
    assert_int_equal(g.n, 0);
}

/* PDQ under quality 50, the entry's or the query's, is reported unreliable and not counted. */
static void test_pdq_quality(void **state)
{
    (void)state;
    struct got g;
    size_t rel;
    nh_record r = {.path = "x"};
    put(&r, nh_kind_of(NH_KIND_PDQ), 3, 0, NH_VARIANT_ORIGINAL, 100); /* entry has quality 40 */
    run_match(&r, NULL, &g, &rel);
    assert_int_equal(g.n, 1);
    assert_int_equal(rel, 0);
    assert_true(g.m[0].unreliable);
    assert_int_equal(g.m[0].quality, 40);
    nh_record q = {.path = "y"};
    put(&q, nh_kind_of(NH_KIND_PDQ), 2, 5, NH_VARIANT_ORIGINAL, 49); /* query quality 49 */
    run_match(&q, NULL, &g, &rel);
    assert_int_equal(g.n, 1);
    assert_int_equal(rel, 0);
    assert_true(g.m[0].unreliable);
    q.hashes[0].quality = 50;
    run_match(&q, NULL, &g, &rel);
    assert_int_equal(rel, 1);
    assert_false(g.m[0].unreliable);
}

/* Dihedral variants: one report per entry, at the best distance, naming that variant. */
static void test_dihedral_best_variant(void **state)
{
    (void)state;
    nh_kind pdq = nh_kind_of(NH_KIND_PDQ);
    nh_record r = {.path = "x"};
    put(&r, pdq, 4, 25, NH_VARIANT_ORIGINAL, 100);
    for (int v = 1; v < NH_VARIANTS; v++)
        put(&r, pdq, 100 + (uint64_t)v, 0, (nh_variant)v, 100); /* unrelated */
    put(&r, pdq, 4, 3, NH_VARIANT_FLIPX, 100)->variant = NH_VARIANT_FLIPX;
    /* the record's flipx is the last one pushed; drop the unrelated flipx */
    r.hashes[NH_VARIANT_FLIPX] = r.hashes[r.nhashes - 1];
    r.nhashes--;
    struct got g;
    size_t rel;
    run_match(&r, NULL, &g, &rel);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.src[0], "pdq-4");
    assert_int_equal(g.m[0].distance, 3);
    assert_true(g.m[0].has_variant);
    assert_string_equal(nh_variant_name(g.m[0].variant), "flipx");
}

/* The neural mirror pass: the entry once, at the mirror's distance when it is nearer. */
static void test_neural_mirror(void **state)
{
    (void)state;
    nh_kind na = nh_kind_neural(FP_A, 96);
    nh_record r = {.path = "x"};
    put(&r, na, 1, 10, NH_VARIANT_ORIGINAL, -1);
    put(&r, na, 1, 2, NH_VARIANT_FLIPX, -1);
    struct got g;
    size_t rel;
    run_match(&r, &na, &g, &rel);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.m[0].distance, 2);
    assert_int_equal(g.m[0].variant, NH_VARIANT_FLIPX);
    r.hashes[1].bytes[11] ^= 0xFF; /* mirror now 10 bits away: the original wins the tie */
    run_match(&r, &na, &g, &rel);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.m[0].distance, 10);
    assert_int_equal(g.m[0].variant, NH_VARIANT_ORIGINAL);
}

/* Digests match exactly or not at all; a failed record matches nothing. */
static void test_digest_exact(void **state)
{
    (void)state;
    nh_kind dig = nh_kind_of(NH_KIND_DIGEST);
    struct got g;
    size_t rel;
    nh_record r = {.path = "x"};
    put(&r, dig, 5, 0, NH_VARIANT_ORIGINAL, -1);
    run_match(&r, NULL, &g, &rel);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.m[0].kind, NH_KIND_DIGEST);
    r.hashes[0].bytes[15] ^= 1;
    run_match(&r, NULL, &g, &rel);
    assert_int_equal(g.n, 0);
    r.hashes[0].bytes[15] ^= 1;
    r.status = NH_ERR_DECODE;
    run_match(&r, NULL, &g, &rel);
    assert_int_equal(g.n, 0);
}

/* The archive's count: files with a reliable match, against the threshold. */
static void test_tally(void **state)
{
    (void)state;
    nh_match_tally t = {.threshold = 2};
    nh_record ok = {.path = "a"}, bad = {.path = "b", .status = NH_ERR_DECODE};
    nh_match_tally_add(&t, &ok, 3, 0); /* unreliable only */
    assert_false(nh_match_tally_reached(&t));
    nh_match_tally_add(&t, &ok, 2, 1);
    nh_match_tally_add(&t, &bad, 0, 0);
    assert_false(nh_match_tally_reached(&t));
    nh_match_tally_add(&t, &ok, 1, 1);
    assert_true(nh_match_tally_reached(&t));
    assert_int_equal(t.files, 4);
    assert_int_equal(t.failed, 1);
    assert_int_equal(t.matched_files, 2);
    assert_int_equal(t.matches, 6);
    assert_int_equal(t.unreliable, 4);
    nh_match_tally never = {.threshold = 0, .matched_files = 100};
    assert_false(nh_match_tally_reached(&never));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_radius_boundaries), cmocka_unit_test(test_other_model),
        cmocka_unit_test(test_pdq_quality),       cmocka_unit_test(test_dihedral_best_variant),
        cmocka_unit_test(test_neural_mirror),     cmocka_unit_test(test_digest_exact),
        cmocka_unit_test(test_tally),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
