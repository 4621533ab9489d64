/*
 * pdq: bit-exact against Meta's reference (tests/data/pdq/expected*.csv, made by the stock
 * pdq-photo-hasher, see tests/data/pdq/README.md) on the exact pixels it saw, in C and on
 * OpenCL; the original files through libvips within Hamming distance 10 for quality >= 80;
 * OpenCL equal to C on random images; the file front end; matching helpers.
 *
 * Pixel files: the small ones are committed in tests/data/pdq/pixels, the large ones are read
 * from NH_PDQ_REFERENCE_DIR (default /work/shared/pdq-reference); whatever is missing is
 * skipped with a message, and the number of files actually checked is printed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nhash/cl.h"
#include "nhash/decode.h"
#include "nhash/pdq.h"

#define MAX_FILES 64
#define PIX_MAX (4u * 1024 * 1024)

struct expect {
    char name[128];
    char hex[NH_PDQ_NUM_DIHEDRAL][NH_PDQ_HEX_LEN + 1];
    int quality;
    int dih_quality;
};

static struct expect exp_rows[MAX_FILES];
static int n_exp;
static const char *fixture_dir, *ref_dir;
static nh_pdq_scratch *scratch;
static uint8_t filepix[NH_PDQ_FILE_PIXEL_BYTES];
static nh_cl *cl;
static nh_pdq_cl *pcl;
static char tmp_dir[256];

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

static int find_expect(const char *name)
{
    for (int i = 0; i < n_exp; i++)
        if (strcmp(exp_rows[i].name, name) == 0)
            return i;
    return -1;
}

/* Split a CSV line in place; returns the number of fields. */
static int split(char *line, char **f, int max)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = '\0';
    for (char *p = line; n < max;) {
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

static int load_expected(void)
{
    char path[1024], line[2048];
    snprintf(path, sizeof path, "%s/pdq/expected.csv", fixture_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f) && n_exp < MAX_FILES) {
        char *fld[12];
        if (split(line, fld, 12) != 3 || strcmp(fld[0], "file") == 0)
            continue;
        struct expect *e = &exp_rows[n_exp++];
        snprintf(e->name, sizeof e->name, "%.*s", (int)sizeof e->name - 1, fld[0]);
        snprintf(e->hex[0], sizeof e->hex[0], "%.*s", (int)sizeof e->hex[0] - 1, fld[1]);
        e->quality = atoi(fld[2]);
        e->dih_quality = -1;
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/pdq/expected-dihedral.csv", fixture_dir);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        char *fld[12];
        if (split(line, fld, 12) != 10 || strcmp(fld[0], "file") == 0)
            continue;
        int i = find_expect(fld[0]);
        if (i < 0)
            continue;
        if (strcmp(fld[1], exp_rows[i].hex[0]) != 0) {
            printf("expected.csv and expected-dihedral.csv disagree on %s\n", fld[0]);
            fclose(f);
            return -1;
        }
        for (int v = 1; v < NH_PDQ_NUM_DIHEDRAL; v++)
            snprintf(exp_rows[i].hex[v], sizeof exp_rows[i].hex[v], "%s", fld[1 + v]);
        exp_rows[i].dih_quality = atoi(fld[9]);
    }
    fclose(f);
    return n_exp > 0 ? 0 : -1;
}

/* Pixels of the reference for one file: committed copy first, then the reference dir.
 * *buf returned-owned. Returns 0 when found. */
static int load_pixels(const char *name, uint8_t **buf, nh_pdq_image *img)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/pdq/pixels/%s.png", fixture_dir, name);
    if (!file_exists(path)) {
        snprintf(path, sizeof path, "%s/pixels/%s.png", ref_dir, name);
        if (!file_exists(path))
            return -1;
    }
    nh_decode_opts opts;
    nh_decode_opts_default(&opts);
    opts.mode = NH_DECODE_NATIVE;
    opts.max_pixels = PIX_MAX;
    uint8_t *pix = malloc(nh_decode_out_bytes(&opts));
    assert_non_null(pix);
    nh_decode_info info;
    nh_error err = {0};
    if (nh_decode_file(path, &opts, pix, &info, &err) != NH_OK) {
        char m[2048];
        fail_msg("decode %s", nh_error_format(&err, m, sizeof m));
    }
    nh_pdq_image_rgb(img, pix, info.width, info.height);
    /* Grey PNGs hold what the reference saw as PGM. */
    img->gray = info.src_bands <= 2;
    *buf = pix;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    fixture_dir = getenv("NH_FIXTURE_DIR");
    ref_dir = getenv("NH_PDQ_REFERENCE_DIR");
    if (!fixture_dir)
        fixture_dir = "tests/data";
    if (!ref_dir)
        ref_dir = "/work/shared/pdq-reference";
    if (load_expected() != 0) {
        printf("cannot read %s/pdq/expected*.csv\n", fixture_dir);
        return -1;
    }
    if (nh_decode_init(NULL, NULL) != NH_OK)
        return -1;
    if (nh_pdq_scratch_create(0, 0, &scratch, NULL) != NH_OK)
        return -1;
    nh_error err = {0};
    char m[4096];
    if (nh_cl_create(NULL, NULL, &cl, &err) != NH_OK) {
        printf("SKIP OpenCL: %s\n", nh_error_format(&err, m, sizeof m));
    } else if (nh_pdq_cl_create(cl, 7, 0, 0, &pcl, &err) != NH_OK) {
        printf("pdq kernels: %s\n", nh_error_format(&err, m, sizeof m));
        return -1;
    } else {
        printf("OpenCL device: %s (%s), exact division: %s\n", nh_cl_info(cl)->device_name,
               nh_cl_info(cl)->platform_name, nh_pdq_cl_exact(pcl) ? "yes" : "NO");
    }
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/nh_test_pdq_XXXXXX");
    if (!mkdtemp(tmp_dir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nh_pdq_cl_destroy(pcl);
    nh_cl_destroy(cl);
    nh_pdq_scratch_destroy(scratch);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void check_hashes(const struct expect *e, const uint8_t *hashes, int nvar, int quality,
                         const char *who)
{
    char hex[NH_PDQ_HEX_LEN + 1];
    for (int v = 0; v < nvar; v++) {
        nh_pdq_hex(hashes + v * NH_PDQ_HASH_BYTES, hex);
        if (strcmp(hex, e->hex[v]) != 0) {
            uint8_t want[32];
            assert_int_equal(nh_pdq_hex_parse(e->hex[v], want), NH_OK);
            fail_msg("%s %s %s: got %s want %s (distance %u)", who, e->name,
                     nh_pdq_dihedral_name((nh_pdq_dihedral)v), hex, e->hex[v],
                     nh_pdq_distance(hashes + v * NH_PDQ_HASH_BYTES, want));
        }
    }
    int want_q = nvar > 1 ? e->dih_quality : e->quality;
    if (quality != want_q)
        fail_msg("%s %s: quality %d want %d", who, e->name, quality, want_q);
}

static void test_c_reference_pixels(void **state)
{
    (void)state;
    int checked = 0, missing = 0;
    for (int i = 0; i < n_exp; i++) {
        uint8_t *pix = NULL;
        nh_pdq_image img;
        if (load_pixels(exp_rows[i].name, &pix, &img) != 0) {
            missing++;
            continue;
        }
        uint8_t h[NH_PDQ_NUM_DIHEDRAL * NH_PDQ_HASH_BYTES];
        int q = -1;
        nh_error err = {0};
        assert_int_equal(nh_pdq_hash(scratch, &img, 0, h, &q, &err), NH_OK);
        check_hashes(&exp_rows[i], h, 1, q, "C");
        assert_int_equal(nh_pdq_hash(scratch, &img, NH_PDQ_DIHEDRAL, h, &q, &err), NH_OK);
        check_hashes(&exp_rows[i], h, NH_PDQ_NUM_DIHEDRAL, q, "C dihedral");
        checked++;
        free(pix);
    }
    printf("C: %d of %d reference files identical (hash, 8 dihedral hashes, quality)\n", checked,
           n_exp);
    if (missing)
        printf("SKIP %d large pixel files: %s/pixels not found\n", missing, ref_dir);
    assert_true(checked > 0);
}

static void test_cl_reference_pixels(void **state)
{
    (void)state;
    if (!pcl) {
        skip();
        return;
    }
    uint8_t *bufs[MAX_FILES];
    nh_pdq_image imgs[MAX_FILES];
    int which[MAX_FILES], n = 0;
    memset(imgs, 0, sizeof imgs);
    for (int i = 0; i < n_exp; i++) {
        if (load_pixels(exp_rows[i].name, &bufs[n], &imgs[n]) == 0)
            which[n++] = i;
    }
    uint8_t *h = malloc((size_t)n * NH_PDQ_NUM_DIHEDRAL * NH_PDQ_HASH_BYTES);
    int q[MAX_FILES];
    nh_error err = {0};
    char m[4096];
    /* 7 images per launch: the 26 files go in several batches of mixed sizes. */
    if (nh_pdq_cl_hash(pcl, imgs, (size_t)n, 0, h, q, &err) != NH_OK)
        fail_msg("%s", nh_error_format(&err, m, sizeof m));
    for (int k = 0; k < n; k++)
        check_hashes(&exp_rows[which[k]], h + k * NH_PDQ_HASH_BYTES, 1, q[k], "OpenCL");
    if (nh_pdq_cl_hash(pcl, imgs, (size_t)n, NH_PDQ_DIHEDRAL, h, q, &err) != NH_OK)
        fail_msg("%s", nh_error_format(&err, m, sizeof m));
    for (int k = 0; k < n; k++)
        check_hashes(&exp_rows[which[k]], h + k * NH_PDQ_NUM_DIHEDRAL * NH_PDQ_HASH_BYTES,
                     NH_PDQ_NUM_DIHEDRAL, q[k], "OpenCL dihedral");
    printf("OpenCL: %d of %d reference files identical\n", n, n_exp);
    for (int k = 0; k < n; k++)
        free(bufs[k]);
    free(h);
    assert_true(n > 0);
}

/* Meta's second criterion: another decoder on the original files lands within 10 bits for
 * quality >= 80. Also prints how far the fast (shrink-on-load) path lands. */
static void test_original_images_decoded(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/images", ref_dir);
    if (!file_exists(dir)) {
        printf("SKIP: %s not found\n", dir);
        skip();
        return;
    }
    int checked = 0, exact = 0;
    unsigned worst = 0, worst_fast = 0;
    for (int i = 0; i < n_exp; i++) {
        char path[1400];
        const char *exts[] = {".jpg", ".png"};
        int found = 0;
        for (int k = 0; k < 2 && !found; k++) {
            snprintf(path, sizeof path, "%.1023s/%.127s%s", dir, exp_rows[i].name, exts[k]);
            found = file_exists(path);
        }
        if (!found)
            continue;
        uint8_t h[NH_PDQ_HASH_BYTES], hf[NH_PDQ_HASH_BYTES], want[NH_PDQ_HASH_BYTES];
        int q = 0, qf = 0;
        nh_error err = {0};
        char m[2048];
        if (nh_pdq_hash_file(path, 0, filepix, scratch, h, &q, NULL, NULL, &err) != NH_OK)
            fail_msg("%s", nh_error_format(&err, m, sizeof m));
        if (nh_pdq_hash_file(path, NH_PDQ_INPUT_FAST_ALWAYS, filepix, scratch, hf, &qf, NULL, NULL,
                             &err) != NH_OK)
            fail_msg("%s", nh_error_format(&err, m, sizeof m));
        assert_int_equal(nh_pdq_hex_parse(exp_rows[i].hex[0], want), NH_OK);
        unsigned d = nh_pdq_distance(h, want), df = nh_pdq_distance(hf, want);
        printf("  %-40s q=%3d ref-path d=%3u q=%3d  fast-path d=%3u q=%3d\n", exp_rows[i].name,
               exp_rows[i].quality, d, q, df, qf);
        if (exp_rows[i].quality >= 80) {
            if (d > 10)
                fail_msg("%s: distance %u > 10 at quality %d", exp_rows[i].name, d,
                         exp_rows[i].quality);
            if (d > worst)
                worst = d;
            if (df > worst_fast)
                worst_fast = df;
        }
        exact += d == 0;
        checked++;
    }
    printf("libvips decode: %d files, %d identical to the reference, worst distance at "
           "quality >= 80: %u (fast path: %u)\n",
           checked, exact, worst, worst_fast);
    assert_true(checked > 0);
}

static uint32_t rng_state = 12345u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* A smooth random picture plus noise, so DCT coefficients are not all alike. */
static void random_image(uint8_t *p, int w, int h, int ch, size_t stride, int kind)
{
    float fx = (float)(rnd() % 7 + 1), fy = (float)(rnd() % 5 + 1);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + (size_t)y * stride + (size_t)x * ch;
            for (int c = 0; c < ch; c++) {
                int v;
                if (kind == 0)
                    v = (int)(rnd() & 255);
                else
                    v = (int)(127 + 60 * ((x * fx / w) - (int)(x * fx / w)) +
                              60 * ((y * fy / h) - (int)(y * fy / h))) +
                        (int)(rnd() % 16) - 8 + c * 7;
                q[c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
}

/* OpenCL equals C on random images of mixed sizes and formats. Tolerance: none. With
 * correctly rounded division every float operation is the same IEEE operation in the same
 * order, so bits and qualities must be identical; flipped bits are counted and printed. */
static void test_cl_equals_c_random(void **state)
{
    (void)state;
    if (!pcl) {
        skip();
        return;
    }
    enum { N = 23 };
    static const int sizes[N][3] = {
        {512, 512, 3}, {64, 64, 3},   {4, 9, 3},     {5, 5, 3},       {640, 480, 3}, {1000, 700, 4},
        {333, 97, 1},  {129, 257, 2}, {513, 200, 3}, {200, 513, 3},   {64, 64, 1},   {65, 63, 3},
        {127, 128, 3}, {300, 300, 3}, {7, 800, 3},   {800, 7, 3},     {256, 256, 4}, {31, 31, 3},
        {512, 511, 3}, {1, 1, 3},     {100, 50, 3},  {2048, 1536, 3}, {450, 380, 3}};
    nh_pdq_image imgs[N];
    uint8_t *bufs[N];
    for (int i = 0; i < N; i++) {
        int w = sizes[i][0], h = sizes[i][1], ch = sizes[i][2];
        size_t stride = (size_t)w * ch + (i % 3) * 5; /* some padded rows */
        bufs[i] = malloc(stride * h);
        assert_non_null(bufs[i]);
        random_image(bufs[i], w, h, ch, stride, i % 4 == 0 ? 0 : 1);
        imgs[i] = (nh_pdq_image){bufs[i], w, h, ch, i == 5, stride};
    }
    unsigned total_flips = 0, qdiff = 0, images = 0;
    static const unsigned flag_sets[4] = {0, NH_PDQ_DIHEDRAL, NH_PDQ_FULL_RES,
                                          NH_PDQ_DIHEDRAL | NH_PDQ_FULL_RES};
    for (int fs = 0; fs < 4; fs++) {
        unsigned flags = flag_sets[fs];
        int nvar = (flags & NH_PDQ_DIHEDRAL) ? NH_PDQ_NUM_DIHEDRAL : 1;
        nh_pdq_scratch *big = NULL;
        assert_int_equal(nh_pdq_scratch_create(2048, 1536, &big, NULL), NH_OK);
        nh_pdq_cl *p = pcl;
        nh_error err = {0};
        char m[4096];
        if (flags & NH_PDQ_FULL_RES) {
            if (nh_pdq_cl_create(cl, 5, 2048, 1536, &p, &err) != NH_OK)
                fail_msg("%s", nh_error_format(&err, m, sizeof m));
        }
        uint8_t *hc = malloc((size_t)N * nvar * 32), *hg = malloc((size_t)N * nvar * 32);
        int qc[N], qg[N];
        for (int i = 0; i < N; i++)
            assert_int_equal(
                nh_pdq_hash(big, &imgs[i], flags, hc + (size_t)i * nvar * 32, &qc[i], &err), NH_OK);
        if (nh_pdq_cl_hash(p, imgs, N, flags, hg, qg, &err) != NH_OK)
            fail_msg("%s", nh_error_format(&err, m, sizeof m));
        for (int i = 0; i < N; i++) {
            unsigned flips = 0;
            for (int v = 0; v < nvar; v++)
                flips += nh_pdq_distance(hc + ((size_t)i * nvar + v) * 32,
                                         hg + ((size_t)i * nvar + v) * 32);
            if (flips || qc[i] != qg[i])
                printf("  flags %u image %d (%dx%d): %u bits differ, quality %d vs %d\n", flags, i,
                       sizes[i][0], sizes[i][1], flips, qc[i], qg[i]);
            total_flips += flips;
            qdiff += qc[i] != qg[i];
            images++;
        }
        free(hc);
        free(hg);
        if (p != pcl)
            nh_pdq_cl_destroy(p);
        nh_pdq_scratch_destroy(big);
    }
    printf("OpenCL vs C on %u random image hashings: %u bits differ, %u qualities differ\n", images,
           total_flips, qdiff);
    if (nh_pdq_cl_exact(pcl)) {
        assert_int_equal(total_flips, 0);
        assert_int_equal(qdiff, 0);
    } else {
        /* Without correctly rounded division only near-median bits may move. */
        assert_true(total_flips <= images * 4);
    }
    for (int i = 0; i < N; i++)
        free(bufs[i]);
}

/* Torben gives the lower median; stages agree with the whole. */
static void test_median_and_stages(void **state)
{
    (void)state;
    for (int t = 0; t < 200; t++) {
        int n = 1 + (int)(rnd() % 300);
        float v[300], s[300];
        for (int i = 0; i < n; i++)
            v[i] = s[i] = (float)((int)(rnd() % 64) - 32) * 0.25f; /* many ties */
        for (int i = 1; i < n; i++)                                /* insertion sort */
            for (int k = i; k > 0 && s[k - 1] > s[k]; k--) {
                float x = s[k];
                s[k] = s[k - 1];
                s[k - 1] = x;
            }
        assert_true(nh_pdq_median(v, n) == s[(n + 1) / 2 - 1]);
    }
    /* dihedral of dihedral: rot90 four times is the identity, flips are involutions. */
    float c[256], a[256], b[256];
    for (int i = 0; i < 256; i++)
        c[i] = (float)((int)(rnd() % 2001) - 1000);
    nh_pdq_dct_dihedral(c, NH_PDQ_ROTATE_90, a);
    nh_pdq_dct_dihedral(a, NH_PDQ_ROTATE_90, b);
    nh_pdq_dct_dihedral(c, NH_PDQ_ROTATE_180, a);
    assert_memory_equal(a, b, sizeof a);
    nh_pdq_dct_dihedral(c, NH_PDQ_FLIP_X, a);
    nh_pdq_dct_dihedral(a, NH_PDQ_FLIP_X, b);
    assert_memory_equal(b, c, sizeof b);
}

static void test_small_and_invalid(void **state)
{
    (void)state;
    uint8_t pix[4 * 100 * 3];
    memset(pix, 77, sizeof pix);
    nh_pdq_image img;
    nh_pdq_image_rgb(&img, pix, 4, 100);
    uint8_t h[8 * 32], zero[8 * 32] = {0};
    int q = -1;
    assert_int_equal(nh_pdq_hash(scratch, &img, NH_PDQ_DIHEDRAL, h, &q, NULL), NH_OK);
    assert_memory_equal(h, zero, sizeof h);
    assert_int_equal(q, 0);
    img.channels = 5;
    nh_error err = {0};
    assert_int_equal(nh_pdq_hash(scratch, &img, 0, h, &q, &err), NH_ERR_INVALID);
    assert_int_equal(err.status, NH_ERR_INVALID);
    nh_pdq_image_rgb(&img, pix, 20, 20);
    nh_pdq_scratch *tiny = NULL;
    assert_int_equal(nh_pdq_scratch_create(10, 10, &tiny, NULL), NH_OK);
    assert_int_equal(nh_pdq_hash(tiny, &img, 0, h, &q, NULL), NH_ERR_TOO_LARGE);
    nh_pdq_scratch_destroy(tiny);
    nh_pdq_scratch_destroy(NULL);
    nh_pdq_cl_destroy(NULL);
    /* flat image: all coefficients ~0, quality 0 */
    nh_pdq_image_rgb(&img, pix, 10, 10);
    assert_int_equal(nh_pdq_hash(scratch, &img, 0, h, &q, NULL), NH_OK);
    assert_int_equal(q, 0);
    assert_false(nh_pdq_reliable(q));
}

static void test_matching_helpers(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    const char *hx = "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22";
    assert_int_equal(nh_pdq_hex_parse(hx, a), NH_OK);
    char back[65];
    nh_pdq_hex(a, back);
    assert_string_equal(back, hx);
    assert_int_equal(nh_pdq_hex_parse("xyz", a), NH_ERR_INVALID);
    assert_int_equal(nh_pdq_hex_parse(hx, a), NH_OK);
    memcpy(b, a, 32);
    for (int k = 0; k < 31; k++)
        b[k] ^= 1;
    assert_int_equal(nh_pdq_distance(a, b), 31);
    assert_true(nh_pdq_match(a, b, NH_PDQ_MATCH_DISTANCE));
    b[31] ^= 1;
    assert_false(nh_pdq_match(a, b, NH_PDQ_MATCH_DISTANCE));
    assert_true(nh_pdq_reliable(50));
    assert_false(nh_pdq_reliable(49));
    assert_string_equal(nh_pdq_dihedral_name(NH_PDQ_FLIP_MINUS_1), "flipminus1");
    assert_string_equal(nh_pdq_dihedral_name((nh_pdq_dihedral)9), "?");

    /* The rotated file's plain hash matches the original's rot90 variant (reference data). */
    int o = find_expect("reg-test-input_dih_bridge-1-original");
    int r = find_expect("reg-test-input_dih_bridge-2-rotate-90");
    int fx = find_expect("reg-test-input_dih_bridge-5-flipx");
    assert_true(o >= 0 && r >= 0 && fx >= 0);
    uint8_t vars[8 * 32], rot[32], flip[32];
    for (int v = 0; v < 8; v++)
        assert_int_equal(nh_pdq_hex_parse(exp_rows[o].hex[v], vars + v * 32), NH_OK);
    assert_int_equal(nh_pdq_hex_parse(exp_rows[r].hex[0], rot), NH_OK);
    assert_int_equal(nh_pdq_hex_parse(exp_rows[fx].hex[0], flip), NH_OK);
    unsigned d;
    nh_pdq_dihedral best;
    assert_true(nh_pdq_match_dihedral(vars, rot, NH_PDQ_MATCH_DISTANCE, &d, &best));
    printf("rotate-90 file matches variant %s at distance %u (plain: %u)\n",
           nh_pdq_dihedral_name(best), d, nh_pdq_distance(vars, rot));
    assert_true(best != NH_PDQ_ORIGINAL);
    assert_false(nh_pdq_match(vars, rot, NH_PDQ_MATCH_DISTANCE));
    assert_true(nh_pdq_match_dihedral(vars, flip, NH_PDQ_MATCH_DISTANCE, &d, &best));
    printf("flipx file matches variant %s at distance %u\n", nh_pdq_dihedral_name(best), d);
}

static void put16(FILE *f, unsigned v)
{
    fputc((int)(v & 255), f);
    fputc((int)(v >> 8), f);
}

static void put32(FILE *f, unsigned v)
{
    put16(f, v & 0xffff);
    put16(f, v >> 16);
}

/* Write a baseline uncompressed RGB TIFF, one strip (tiffload is a trusted loader). */
static void write_tiff(const char *path, const uint8_t *rgb, int w, int h)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    const unsigned ntags = 9, ifd = 8, bps = ifd + 2 + ntags * 12 + 4, data = bps + 6;
    fputs("II", f);
    put16(f, 42);
    put32(f, ifd);
    put16(f, ntags);
    const unsigned tags[9][4] = {
        {256, 4, 1, (unsigned)w}, {257, 4, 1, (unsigned)h}, {258, 3, 3, bps},
        {259, 3, 1, 1},           {262, 3, 1, 2},           {273, 4, 1, data},
        {277, 3, 1, 3},           {278, 4, 1, (unsigned)h}, {279, 4, 1, (unsigned)(w * h * 3)}};
    for (unsigned i = 0; i < ntags; i++) {
        put16(f, tags[i][0]);
        put16(f, tags[i][1]);
        put32(f, tags[i][2]);
        if (tags[i][1] == 3 && tags[i][2] == 1) {
            put16(f, tags[i][3]);
            put16(f, 0);
        } else {
            put32(f, tags[i][3]);
        }
    }
    put32(f, 0);
    put16(f, 8);
    put16(f, 8);
    put16(f, 8);
    assert_int_equal(fwrite(rgb, 1, (size_t)w * h * 3, f), (size_t)w * h * 3);
    fclose(f);
}

/* The file front end gives the reference's pixels: a side over 512 squashes both sides to
 * 512x512 (nh_decode NEAREST only squashes the side that exceeds); all-grey colour files
 * take the grey path. */
static void test_file_front_end(void **state)
{
    (void)state;
    static const int sizes[][2] = {{700, 300}, {300, 700}, {900, 600}, {200, 150}, {512, 513}};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        int w = sizes[t][0], h = sizes[t][1];
        uint8_t *rgb = malloc((size_t)w * h * 3);
        assert_non_null(rgb);
        random_image(rgb, w, h, 3, (size_t)w * 3, 1);
        if (t == 3) /* all grey */
            for (size_t i = 0; i < (size_t)w * h; i++)
                rgb[i * 3 + 1] = rgb[i * 3 + 2] = rgb[i * 3];
        char path[512];
        snprintf(path, sizeof path, "%s/img%zu.tif", tmp_dir, t);
        write_tiff(path, rgb, w, h);
        nh_pdq_image img;
        nh_pdq_image_rgb(&img, rgb, w, h);
        img.gray = t == 3;
        uint8_t want[8 * 32], got[8 * 32];
        int qw = -1, qg = -2, sw = 0, sh = 0;
        nh_error err = {0};
        char m[2048];
        assert_int_equal(nh_pdq_hash(scratch, &img, NH_PDQ_DIHEDRAL, want, &qw, NULL), NH_OK);
        if (nh_pdq_hash_file(path, NH_PDQ_DIHEDRAL, filepix, scratch, got, &qg, &sw, &sh, &err) !=
            NH_OK)
            fail_msg("%s", nh_error_format(&err, m, sizeof m));
        assert_memory_equal(got, want, sizeof want);
        assert_int_equal(qg, qw);
        assert_int_equal(sw, w);
        assert_int_equal(sh, h);
        /* Not a JPEG: the fast path falls back to the reference path. */
        if (nh_pdq_hash_file(path, NH_PDQ_INPUT_FAST, filepix, scratch, got, &qg, NULL, NULL,
                             &err) != NH_OK)
            fail_msg("%s", nh_error_format(&err, m, sizeof m));
        assert_memory_equal(got, want, NH_PDQ_HASH_BYTES);
        free(rgb);
    }
    /* A JPEG large enough for shrink-on-load (skimage retina.jpg, 1411x1411). */
    const char *data = getenv("NH_DATA_DIR");
    char jpg[1024];
    snprintf(jpg, sizeof jpg, "%s/skimage/retina.jpg", data ? data : ".cache/data");
    if (file_exists(jpg)) {
        uint8_t hr[32], hf[32], ha[32];
        int qr, qf, qa;
        nh_error e2 = {0};
        assert_int_equal(nh_pdq_hash_file(jpg, 0, filepix, scratch, hr, &qr, NULL, NULL, &e2),
                         NH_OK);
        assert_int_equal(
            nh_pdq_hash_file(jpg, NH_PDQ_INPUT_FAST, filepix, scratch, hf, &qf, NULL, NULL, &e2),
            NH_OK);
        assert_int_equal(nh_pdq_hash_file(jpg, NH_PDQ_INPUT_FAST_ALWAYS, filepix, scratch, ha, &qa,
                                          NULL, NULL, &e2),
                         NH_OK);
        assert_memory_equal(hf, ha, sizeof hf);
        printf("retina.jpg: fast path at distance %u from the reference path (quality %d/%d)\n",
               nh_pdq_distance(hr, hf), qr, qf);
        assert_true(nh_pdq_distance(hr, hf) <= NH_PDQ_MATCH_DISTANCE);
    } else {
        printf("SKIP fast-path JPEG check: %s not found (scripts/fetch-data.sh)\n", jpg);
    }
    nh_error err = {0};
    uint8_t h[32];
    int q;
    char path[512];
    snprintf(path, sizeof path, "%s/missing.jpg", tmp_dir);
    assert_int_not_equal(nh_pdq_hash_file(path, 0, filepix, scratch, h, &q, NULL, NULL, &err),
                         NH_OK);
    assert_true(strstr(err.path, "missing.jpg") != NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_median_and_stages),   cmocka_unit_test(test_small_and_invalid),
        cmocka_unit_test(test_matching_helpers),    cmocka_unit_test(test_c_reference_pixels),
        cmocka_unit_test(test_cl_reference_pixels), cmocka_unit_test(test_cl_equals_c_random),
        cmocka_unit_test(test_file_front_end),      cmocka_unit_test(test_original_images_decoded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
