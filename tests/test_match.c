/*
 * nh_match: the audit's matching policy on records made by hand (hashes at known Hamming
 * distances from the set's entries, by flipping chosen bits), so every expected result
 * follows from the construction: radius boundaries per kind, one neural kind per model,
 * PDQ's quality cut, dihedral and mirror variants reported once at their best distance,
 * digests exactly, the joining of a file's matches by known image and their confirmation
 * (digest, or neural and PDQ together), and the archive's threshold count under each rule.
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

/* An entry of a known image: its file digest is fill(seed) bytes, 0 = none. */
static void add_known(const nh_kind *k, uint64_t seed, int quality, const char *source,
                      uint64_t digest_seed)
{
    uint8_t h[NH_HASH_MAX_BYTES], d[16];
    fill(h, nh_kind_bits(k) / 8, seed);
    fill(d, 16, digest_seed);
    nh_db_entry e = {.kind = *k, .hash = h, .quality = quality, .source = source,
                     .digest = digest_seed ? d : NULL};
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
    /* Known images with both perceptual kinds. k1: joined by its digest (sources differ, as
     * when one image was added from two paths); k2: no digest, joined by source; k3: the
     * neural and PDQ entries are two images (two digests) that share nothing; k4: its PDQ
     * entry has quality 40; k5: a neural entry carrying digest 55. */
    add_known(&na, 11, -1, "k1.jpg", 1001);
    add_known(&pdq, 12, 90, "copy-of-k1.jpg", 1001);
    add_known(&na, 21, -1, "k2.jpg", 0);
    add_known(&pdq, 22, 90, "k2.jpg", 0);
    add_known(&na, 31, -1, "k3.jpg", 3001);
    add_known(&pdq, 32, 90, "k3.jpg", 3002);
    add_known(&na, 41, -1, "k4.jpg", 4001);
    add_known(&pdq, 42, 40, "k4.jpg", 4001);
    add_known(&na, 51, -1, "k5.jpg", 55);
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

#define MAXK 8
struct known_got {
    size_t n;
    nh_match_status status[MAXK];
    unsigned by[MAXK], nev[MAXK];
    char src[MAXK][32];
    int has_digest[MAXK];
};

static int collect_known(const nh_match_known *k, void *user)
{
    struct known_got *g = user;
    if (g->n < MAXK) {
        g->status[g->n] = k->status;
        g->by[g->n] = k->confirmed_by;
        g->nev[g->n] = (unsigned)k->n;
        g->has_digest[g->n] = k->digest != NULL;
        snprintf(g->src[g->n], sizeof g->src[0], "%s", k->source);
        for (size_t i = 0; i < k->n; i++)
            assert_true(k->ev[i].distance <= k->ev[i].radius);
        g->n++;
    }
    return 0;
}

static void run_file(const nh_record *r, struct known_got *g, nh_match_result *res)
{
    nh_kind na = nh_kind_neural(FP_A, 96);
    memset(g, 0, sizeof *g);
    assert_int_equal(nh_match_file(rd, &na, &radii, r, collect_known, g, res, NULL), NH_OK);
    assert_int_equal(res->known, g->n);
    assert_int_equal(res->known, res->confirmed + res->unconfirmed + res->unreliable);
}

/* Neural and PDQ within their radii confirm a known image, whether it is joined by digest
 * or by source; one kind alone, or the two kinds on two different images, does not. */
static void test_confirmed_by_two_kinds(void **state)
{
    (void)state;
    nh_kind na = nh_kind_neural(FP_A, 96), pdq = nh_kind_of(NH_KIND_PDQ);
    struct known_got g;
    nh_match_result res;
    /* k1 by digest: neural at the radius, PDQ at the radius */
    nh_record r = {.path = "x"};
    put(&r, na, 11, 12, NH_VARIANT_ORIGINAL, -1);
    put(&r, pdq, 12, 31, NH_VARIANT_ORIGINAL, 100);
    run_file(&r, &g, &res);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.status[0], NH_MATCH_CONFIRMED);
    assert_int_equal(g.by[0], NH_CONFIRM_PERCEPTUAL);
    assert_int_equal(g.nev[0], 2);
    assert_true(g.has_digest[0]);
    assert_string_equal(g.src[0], "k1.jpg");
    /* one bit past PDQ's radius: neural alone, unconfirmed */
    r.nhashes = 0;
    put(&r, na, 11, 12, NH_VARIANT_ORIGINAL, -1);
    put(&r, pdq, 12, 32, NH_VARIANT_ORIGINAL, 100);
    run_file(&r, &g, &res);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.status[0], NH_MATCH_UNCONFIRMED);
    assert_int_equal(g.by[0], 0);
    assert_int_equal(res.unconfirmed, 1);
    /* k2 by source */
    r.nhashes = 0;
    put(&r, na, 21, 0, NH_VARIANT_ORIGINAL, -1);
    put(&r, pdq, 22, 0, NH_VARIANT_ORIGINAL, 100);
    run_file(&r, &g, &res);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.status[0], NH_MATCH_CONFIRMED);
    assert_false(g.has_digest[0]);
    /* k3: neural matches one image, PDQ another: two unconfirmed matches */
    r.nhashes = 0;
    put(&r, na, 31, 0, NH_VARIANT_ORIGINAL, -1);
    put(&r, pdq, 32, 0, NH_VARIANT_ORIGINAL, 100);
    run_file(&r, &g, &res);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.status[0], NH_MATCH_UNCONFIRMED);
    assert_int_equal(g.status[1], NH_MATCH_UNCONFIRMED);
    assert_int_equal(res.confirmed, 0);
    /* k1's neural hash and k2's PDQ hash (a crafted neural collision beside a real PDQ match
     * of another image) confirm neither */
    r.nhashes = 0;
    put(&r, na, 11, 0, NH_VARIANT_ORIGINAL, -1);
    put(&r, pdq, 22, 0, NH_VARIANT_ORIGINAL, 100);
    run_file(&r, &g, &res);
    assert_int_equal(g.n, 2);
    assert_int_equal(res.confirmed, 0);
}

/* PDQ of low quality neither confirms nor counts; alone it is an unreliable match. */
static void test_unreliable_never_confirms(void **state)
{
    (void)state;
    nh_kind na = nh_kind_neural(FP_A, 96), pdq = nh_kind_of(NH_KIND_PDQ);
    struct known_got g;
    nh_match_result res;
    nh_record r = {.path = "x"};
    put(&r, na, 41, 0, NH_VARIANT_ORIGINAL, -1);
    put(&r, pdq, 42, 0, NH_VARIANT_ORIGINAL, 100); /* the entry's quality is 40 */
    run_file(&r, &g, &res);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.status[0], NH_MATCH_UNCONFIRMED);
    r.nhashes = 0;
    put(&r, pdq, 42, 0, NH_VARIANT_ORIGINAL, 100);
    run_file(&r, &g, &res);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.status[0], NH_MATCH_UNRELIABLE);
    assert_int_equal(res.unreliable, 1);
    /* a reliable pair whose query PDQ is of quality 49 is not confirmed either */
    r.nhashes = 0;
    put(&r, na, 11, 0, NH_VARIANT_ORIGINAL, -1);
    put(&r, pdq, 12, 0, NH_VARIANT_ORIGINAL, 49);
    run_file(&r, &g, &res);
    assert_int_equal(g.status[0], NH_MATCH_UNCONFIRMED);
}

/* The file's digest equal to a known image's confirms it, through a digest entry or the
 * digest a perceptual entry carries; confirmed matches are reported first. */
static void test_confirmed_by_digest(void **state)
{
    (void)state;
    nh_kind na = nh_kind_neural(FP_A, 96), dig = nh_kind_of(NH_KIND_DIGEST);
    struct known_got g;
    nh_match_result res;
    nh_record r = {.path = "x"};
    put(&r, na, 51, 0, NH_VARIANT_ORIGINAL, -1);                         /* k5 */
    put(&r, nh_kind_of(NH_KIND_PDQ), 32, 3, NH_VARIANT_ORIGINAL, 100); /* k3's PDQ entry */
    nh_hash *d = put(&r, dig, 55, 0, NH_VARIANT_ORIGINAL, -1); /* the file is k5's file */
    run_file(&r, &g, &res);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.status[0], NH_MATCH_CONFIRMED);
    assert_int_equal(g.by[0], NH_CONFIRM_DIGEST);
    assert_string_equal(g.src[0], "k5.jpg");
    assert_int_equal(g.status[1], NH_MATCH_UNCONFIRMED);
    assert_string_equal(g.src[1], "k3.jpg");
    d->bytes[0] ^= 1; /* another file */
    run_file(&r, &g, &res);
    assert_int_equal(res.confirmed, 0);
    /* a digest entry alone (no perceptual kind) confirms */
    nh_record e = {.path = "y"};
    put(&e, dig, 5, 0, NH_VARIANT_ORIGINAL, -1);
    run_file(&e, &g, &res);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.status[0], NH_MATCH_CONFIRMED);
    assert_int_equal(g.by[0], NH_CONFIRM_DIGEST);
}

/* The archive's count: under "confirmed" the files with a confirmed match, under "any" the
 * files with any reliable match; failures and unreliable-only files never count. */
static void test_tally(void **state)
{
    (void)state;
    nh_match_tally t = {.threshold = 2}, any = {.threshold = 2, .rule = NH_COUNT_ANY};
    nh_record ok = {.path = "a"}, bad = {.path = "b", .status = NH_ERR_DECODE};
    nh_match_result unrel = {.known = 3, .unreliable = 3};
    nh_match_result unconf = {.known = 2, .unconfirmed = 1, .unreliable = 1};
    nh_match_result conf = {.known = 2, .confirmed = 1, .unconfirmed = 1};
    const nh_match_result *seq[] = {&unrel, &unconf, NULL, &conf, &unconf};
    int reached_confirmed[] = {0, 0, 0, 0, 0}, reached_any[] = {0, 0, 0, 1, 1};
    for (size_t i = 0; i < 5; i++) {
        nh_match_tally_add(&t, seq[i] ? &ok : &bad, seq[i]);
        nh_match_tally_add(&any, seq[i] ? &ok : &bad, seq[i]);
        assert_int_equal(nh_match_tally_reached(&t), reached_confirmed[i]);
        assert_int_equal(nh_match_tally_reached(&any), reached_any[i]);
    }
    assert_int_equal(t.files, 5);
    assert_int_equal(t.failed, 1);
    assert_int_equal(t.matched_files, 3);
    assert_int_equal(t.confirmed_files, 1);
    assert_int_equal(t.counted_files, 1);
    assert_int_equal(any.counted_files, 3);
    assert_int_equal(t.matches, 9);
    assert_int_equal(t.confirmed, 1);
    assert_int_equal(t.unconfirmed, 3);
    assert_int_equal(t.unreliable, 5);
    nh_match_tally_add(&t, &ok, &conf);
    assert_true(nh_match_tally_reached(&t));
    nh_match_tally never = {.threshold = 0, .counted_files = 100};
    assert_false(nh_match_tally_reached(&never));
    assert_int_equal(nh_count_rule_parse("confirmed"), NH_COUNT_CONFIRMED);
    assert_int_equal(nh_count_rule_parse("any"), NH_COUNT_ANY);
    assert_int_equal(nh_count_rule_parse("Any"), -1);
    assert_int_equal(nh_count_rule_parse(""), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_radius_boundaries), cmocka_unit_test(test_other_model),
        cmocka_unit_test(test_pdq_quality),       cmocka_unit_test(test_dihedral_best_variant),
        cmocka_unit_test(test_neural_mirror),     cmocka_unit_test(test_digest_exact),
        cmocka_unit_test(test_confirmed_by_two_kinds),
        cmocka_unit_test(test_unreliable_never_confirms),
        cmocka_unit_test(test_confirmed_by_digest), cmocka_unit_test(test_tally),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
