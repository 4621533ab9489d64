/*
 * width: a .nhm model's hash_bits is its neural kind's width. A 128-bit model is made here
 * from the committed 96-bit test network (models/nh_test.nhm, the same weights with a new
 * 128-row seed projection from a fixed PRNG), then both models hash the committed samples
 * into one set through `nhash hash --db`: the set holds two neural kinds (nhdb stats shows
 * 96 and 128 bits), `nhash audit` with each model finds every file at distance 0 on neural
 * in its own model's kind only, and nhdb export / import round-trips the 128-bit entries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "nhash/core.h"
#include "nhash/nhm.h"

static char tmp[256];
static char nhash[1024], nhdb[1024], model96[1024], model128[1024];
static char fp96[17], fp128[17];
static const char *src_dir;

/* The committed images hashed by both models (copied, so sources are "imgs/NAME"). */
static const char *const images[] = {"astronaut.jpg", "camera.png", "chelsea.png", "coffee.png"};
#define N_IMAGES (sizeof images / sizeof *images)

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Model bits wide: nh_test.nhm's network with a seed of bits rows of out_dim values, each a
 * sum of four uniforms in [-1, 1) (near-Gaussian, like nnhash.py's seed). */
static int make_model(unsigned bits, const char *path, char fp_hex[17])
{
    char src[1200];
    snprintf(src, sizeof src, "%s/models/nh_test.nhm", src_dir);
    nh_error err = {0};
    nh_model *m = NULL;
    if (nh_model_load(src, &m, &err) != NH_OK) {
        fprintf(stderr, "load %s: %s\n", src, err.msg);
        return -1;
    }
    float *seed = malloc((size_t)bits * m->out_dim * sizeof *seed);
    if (!seed) {
        nh_model_destroy(m);
        return -1;
    }
    for (size_t i = 0; i < (size_t)bits * m->out_dim; i++) {
        double v = 0;
        for (int k = 0; k < 4; k++)
            v += (double)(rnd() >> 11) / 4503599627370496.0 - 0.5; /* [-0.5, 0.5) */
        seed[i] = (float)v;
    }
    free(m->seed);
    m->seed = seed;
    m->hash_bits = bits;
    snprintf(m->name, sizeof m->name, "nh_test_w%u", bits);
    int rc = nh_model_validate(m, &err) == NH_OK && nh_model_save(m, path, &err) == NH_OK ? 0 : -1;
    if (rc)
        fprintf(stderr, "model %u bits: %s\n", bits, err.msg);
    nh_model_destroy(m);
    m = NULL;
    if (!rc && nh_model_load(path, &m, &err) == NH_OK) { /* the fingerprint of the file */
        snprintf(fp_hex, 17, "%016llx", (unsigned long long)m->fingerprint);
        rc = m->hash_bits == bits ? 0 : -1;
        nh_model_destroy(m);
    }
    return rc;
}

static int model_fp(const char *path, char fp_hex[17])
{
    nh_error err = {0};
    nh_model *m = NULL;
    if (nh_model_load(path, &m, &err) != NH_OK)
        return -1;
    snprintf(fp_hex, 17, "%016llx", (unsigned long long)m->fingerprint);
    nh_model_destroy(m);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    const char *bin = getenv("NH_BINARY_DIR");
    src_dir = getenv("NH_SOURCE_DIR");
    if (!bin || !src_dir)
        return -1;
    snprintf(nhash, sizeof nhash, "%s/host/nhash", bin);
    snprintf(nhdb, sizeof nhdb, "%s/dbtool/nhdb", bin);
    snprintf(tmp, sizeof tmp, "/tmp/nh_test_width_XXXXXX");
    if (!mkdtemp(tmp))
        return -1;
    snprintf(model96, sizeof model96, "%s/models/nh_test.nhm", src_dir);
    snprintf(model128, sizeof model128, "%s/m128.nhm", tmp);
    if (model_fp(model96, fp96) || make_model(128, model128, fp128))
        return -1;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/imgs'", tmp);
    if (system(cmd) != 0)
        return -1;
    for (size_t i = 0; i < N_IMAGES; i++) {
        snprintf(cmd, sizeof cmd, "cp '%s/samples/%s' '%s/imgs/'", src_dir, images[i], tmp);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run a shell command in tmp, capture stdout into a malloc'd string; *rc the exit status. */
static char *run(int *rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *run(int *rc, const char *fmt, ...)
{
    char cmd[8192];
    int n = snprintf(cmd, sizeof cmd, "cd '%s' && ", tmp);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
    va_end(ap);
    return nh_test_capture(cmd, rc);
}

/* nhash hash with model into set.db, labelled: every image hashed (none skipped), each
 * line's neural hash hex_digits long. */
static void hash_into_set(const char *model, const char *label, size_t hex_digits)
{
    int rc;
    char *out = run(&rc,
                    "'%s' hash --model '%s' --backend ref --algo neural,digest --db set.db "
                    "--label %s imgs",
                    nhash, model, label);
    assert_int_equal(rc, 0);
    size_t lines = 0;
    for (char *line = out; *line; lines++) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        size_t n = strspn(line, "0123456789abcdef");
        if (n != hex_digits || line[n] != ' ')
            fail_msg("%s: neural hash of %zu hex digits, not %zu: %.*s", label, n, hex_digits,
                     (int)(nl - line), line);
        line = nl + 1;
    }
    assert_int_equal(lines, N_IMAGES);
    free(out);
}

/* nhash audit of imgs against set.db with model: on neural, every image matches its own
 * entry at distance 0, and every neural match is an entry of this model (its label). */
static void audit_own_kind(const char *model, const char *label)
{
    int rc;
    char *out = run(&rc, "'%s' audit --db set.db --model '%s' --backend ref --algo neural imgs",
                    nhash, model);
    assert_true(rc == 0 || rc == 3); /* 3: the match threshold was reached */
    size_t self[N_IMAGES] = {0};
    char want_label[64];
    snprintf(want_label, sizeof want_label, "\"label\":\"%s\"", label);
    for (char *line = out; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        /* (the file digest's exact matches are reported too, as evidence of the same known
         * image: every run stores them); the neural evidence of a match record: its entry is of this model (its label) */
        char *ev = strstr(line, "{\"kind\":\"neural\"");
        if (strstr(line, "\"type\":\"match\"") && ev) {
            char *end = strstr(ev, "}}");
            assert_non_null(end);
            end[1] = '\0';
            if (!strstr(ev, want_label))
                fail_msg("audit with %s matched another kind: %s", label, ev);
            for (size_t i = 0; i < N_IMAGES; i++) {
                char p[128], s[128];
                snprintf(p, sizeof p, "\"path\":\"imgs/%s\"", images[i]);
                snprintf(s, sizeof s, "\"source\":\"imgs/%s\"", images[i]);
                if (strstr(line, p) && strstr(ev, s) && strstr(ev, "\"distance\":0,"))
                    self[i]++;
            }
        }
        line = nl + 1;
    }
    for (size_t i = 0; i < N_IMAGES; i++)
        if (self[i] != 1)
            fail_msg("audit with %s: %s matched itself %zu times", label, images[i], self[i]);
    free(out);
}

/* The 128-bit entries of db exported with opts, lines sorted. */
static char *sorted_export(const char *db, const char *opts)
{
    int rc;
    char *out = run(&rc, "'%s' export %s %s --model %s | LC_ALL=C sort", nhdb, db, opts, fp128);
    assert_int_equal(rc, 0);
    return out;
}

static void test_two_widths_one_set(void **state)
{
    (void)state;
    hash_into_set(model128, "w128", 32);
    audit_own_kind(model128, "w128");
    /* the 96-bit model into the same set: its own kind, every file hashed again */
    hash_into_set(model96, "w96", 24);
    audit_own_kind(model96, "w96");
    audit_own_kind(model128, "w128");

    /* stats: both neural kinds with their widths */
    int rc;
    char *out = run(&rc, "'%s' stats set.db --json", nhdb);
    assert_int_equal(rc, 0);
    char want[200];
    snprintf(want, sizeof want, "\"kind\":\"neural\",\"model\":\"%s\",\"bits\":128,", fp128);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "\"kind\":\"neural\",\"model\":\"%s\",\"bits\":96,", fp96);
    assert_non_null(strstr(out, want));
    free(out);
    out = run(&rc, "'%s' stats set.db", nhdb);
    assert_int_equal(rc, 0);
    snprintf(want, sizeof want, "neural model %s: %zu entries, 128 bits, 5 substrings", fp128,
             N_IMAGES);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "neural model %s: %zu entries, 96 bits, 4 substrings", fp96,
             N_IMAGES);
    assert_non_null(strstr(out, want));
    free(out);
    out = run(&rc, "'%s' verify set.db", nhdb);
    assert_int_equal(rc, 0);
    free(out);

    /* export / import round trip of the 128-bit entries, jsonl and the neural list format */
    out = run(&rc,
              "'%s' export set.db --model %s -o e128.jsonl && '%s' import s2.db e128.jsonl "
              ">/dev/null && '%s' export set.db --format neural --model %s -o e128.txt && "
              "'%s' import s3.db e128.txt --model %s >/dev/null",
              nhdb, fp128, nhdb, nhdb, fp128, nhdb, fp128);
    assert_int_equal(rc, 0);
    free(out);
    char *a = sorted_export("set.db", "");
    char *b = sorted_export("s2.db", "");
    assert_int_equal(strlen(a) > 0, 1);
    assert_string_equal(a, b);
    free(b);
    /* exactly the 128-bit entries: N_IMAGES lines of 32 hex digits */
    size_t lines = 0;
    for (const char *p = a; (p = strstr(p, "\"hash\":\"")) != NULL; p++, lines++)
        assert_int_equal(strspn(p + 8, "0123456789abcdef"), 32);
    assert_int_equal(lines, N_IMAGES);
    free(a);
    a = sorted_export("set.db", "--format neural");
    b = sorted_export("s3.db", "--format neural");
    assert_string_equal(a, b);
    free(b);
    /* each 128-bit hash queried through nhdb (32 hex digits with --model: neural, not the
     * digest kind of the same length) finds its own entry */
    for (char *line = a; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        char hex[33];
        memcpy(hex, line, 32);
        hex[32] = '\0';
        char *q = run(&rc, "'%s' query set.db --model %s %s", nhdb, fp128, hex);
        assert_int_equal(rc, 0);
        char w[300];
        snprintf(w, sizeof w, "%s\t0\t%s\t%s\tw128\n", hex, hex, line + 33);
        if (!strstr(q, w))
            fail_msg("nhdb query %s: %s", hex, q);
        free(q);
        line = nl + 1;
    }
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_widths_one_set),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
