/*
 * decode: compat mode bit-exact against Pillow 9.4 (digests in tests/data/decode, made by
 * scripts/fixtures/pillow_compat.py), hostile and malformed files give pixels or a clear
 * per-file error, fast mode and EXIF orientation, the worker pool, limits and loaders.
 *
 * Real images come from NH_DATA_DIR (scripts/fetch-data.sh). When they are missing the
 * data-driven tests are skipped with a message saying how to fetch them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nhash/decode.h"
#include "sha256.h"

static const char *data_dir;
static const char *fixture_dir;
static char tmp_dir[256];

static int have_data(void)
{
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof p, "%s/.dlib.stamp", data_dir);
    if (stat(p, &sb) != 0) {
        printf("SKIP: no test images in %s; run scripts/fetch-data.sh\n", data_dir);
        return 0;
    }
    return 1;
}

static int setup(void **state)
{
    (void)state;
    data_dir = getenv("NH_DATA_DIR");
    fixture_dir = getenv("NH_FIXTURE_DIR");
    if (!data_dir)
        data_dir = ".cache/data";
    if (!fixture_dir)
        fixture_dir = "tests/data";
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/nh_test_decode_XXXXXX");
    if (!mkdtemp(tmp_dir))
        return -1;
    return nh_decode_init(NULL, NULL) == NH_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s'; rm -rf '%s'", tmp_dir, tmp_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_sha256_vectors(void **state)
{
    (void)state;
    char h[65];
    nh_test_sha256_hex("", 0, h);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    nh_test_sha256_hex("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    nh_test_sha256_hex(m, strlen(m), h);
    assert_string_equal(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* Read the digest file: path, WxH, mode, format, sha256 | error. */
struct expect {
    char path[256], mode[16], format[16], digest[72];
};

static size_t read_expect(struct expect **out)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/decode/compat_pillow.tsv", fixture_dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    size_t n = 0, cap = 256;
    struct expect *e = calloc(cap, sizeof *e);
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        if (n == cap)
            e = realloc(e, (cap *= 2) * sizeof *e);
        char size[32];
        if (sscanf(line, "%255[^\t]\t%31[^\t]\t%15[^\t]\t%15[^\t]\t%71[^\t\n]", e[n].path, size,
                   e[n].mode, e[n].format, e[n].digest) == 5)
            n++;
    }
    fclose(f);
    *out = e;
    return n;
}

/* compat mode equals Pillow's convert('RGB').resize((360, 360)) byte for byte. */
static void test_compat_matches_pillow(void **state)
{
    (void)state;
    if (!have_data())
        return;
    struct expect *e = NULL;
    size_t n = read_expect(&e);
    assert_true(n >= 50);
    nh_decode_opts o;
    nh_decode_opts_default(&o);
    uint8_t *buf = malloc(nh_decode_out_bytes(&o)), *ref = malloc(nh_decode_out_bytes(&o));
    const char *raw_dir = getenv("NH_PILLOW_RAW");
    size_t exact = 0, checked = 0, jpeg = 0, jpeg_exact = 0, mismatch_nonjpeg = 0;
    unsigned long long bytes_total = 0, bytes_agree = 0, bytes_off1 = 0;
    for (size_t i = 0; i < n; i++) {
        char path[1024], hex[65];
        snprintf(path, sizeof path, "%s/%s", data_dir, e[i].path);
        nh_error err;
        nh_error_clear(&err);
        nh_status st = nh_decode_file(path, &o, buf, NULL, &err);
        if (!strcmp(e[i].digest, "error")) {
            /* Pillow cannot open it; we may (libvips knows more formats), never crash. */
            printf("  pillow-error %s: nhash %s\n", e[i].path, st == NH_OK ? "decodes it" : err.msg);
            continue;
        }
        checked++;
        int is_jpeg = !strcmp(e[i].format, "JPEG");
        jpeg += is_jpeg;
        if (st != NH_OK) {
            printf("  FAIL %s: %s\n", e[i].path, err.msg);
            mismatch_nonjpeg += !is_jpeg;
            continue;
        }
        nh_test_sha256_hex(buf, 360 * 360 * 3, hex);
        if (!strcmp(hex, e[i].digest)) {
            exact++;
            jpeg_exact += is_jpeg;
            bytes_total += 360 * 360 * 3;
            bytes_agree += 360 * 360 * 3;
            continue;
        }
        mismatch_nonjpeg += !is_jpeg;
        char rp[1024];
        FILE *rf = NULL;
        if (raw_dir) {
            snprintf(rp, sizeof rp, "%s/%zu.rgb", raw_dir, i);
            rf = fopen(rp, "rb");
        }
        if (rf && fread(ref, 1, 360 * 360 * 3, rf) == 360 * 360 * 3) {
            size_t agree = 0, off1 = 0;
            for (size_t k = 0; k < 360 * 360 * 3; k++) {
                agree += buf[k] == ref[k];
                off1 += abs(buf[k] - ref[k]) == 1;
            }
            bytes_total += 360 * 360 * 3;
            bytes_agree += agree;
            bytes_off1 += off1;
            printf("  differs %s (%s %s): %.4f%% bytes agree, %zu off by 1\n", e[i].path,
                   e[i].mode, e[i].format, 100.0 * agree / (360 * 360 * 3), off1);
        } else {
            printf("  differs %s (%s %s); set NH_PILLOW_RAW for byte counts\n", e[i].path,
                   e[i].mode, e[i].format);
        }
        if (rf)
            fclose(rf);
    }
    printf("compat vs Pillow 9.4: %zu/%zu tensors identical (JPEG %zu/%zu)", exact, checked,
           jpeg_exact, jpeg);
    if (bytes_total)
        printf("; bytes agreeing %.5f%% of %llu compared, %llu off by one", 100.0 * (double)bytes_agree / (double)bytes_total,
               bytes_total, bytes_off1);
    printf("\n");
    free(buf);
    free(ref);
    free(e);
    /* Every non-JPEG must be exact; JPEG may differ only through the decoder. */
    assert_int_equal(mismatch_nonjpeg, 0);
    assert_int_equal(jpeg_exact, jpeg);
}

/* Any file: decodes, or fails with a record naming it and a reason. */
static int decode_one_checked(const char *path, const nh_decode_opts *o, uint8_t *buf,
                              nh_status *st_out)
{
    nh_error err;
    nh_error_clear(&err);
    nh_decode_info info;
    nh_status st = nh_decode_file(path, o, buf, &info, &err);
    if (st_out)
        *st_out = st;
    if (st == NH_OK) {
        assert_int_equal(err.status, NH_OK);
        assert_true(info.width > 0 && info.height > 0);
        return 1;
    }
    assert_int_equal(err.status, st);
    assert_string_equal(err.path, path);
    assert_true(strlen(err.msg) > 0);
    return 0;
}

static void walk(const char *dir, void (*fn)(const char *, void *), void *ctx)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (lstat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            walk(p, fn, ctx);
        else if (S_ISREG(sb.st_mode))
            fn(p, ctx);
    }
    closedir(d);
}

struct tally {
    nh_decode_opts opts;
    uint8_t *buf;
    size_t ok, failed, x_ok;
    const char *only_prefix; /* count x*.png separately */
};

static void tally_file(const char *path, void *ctx)
{
    struct tally *t = ctx;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    nh_status st;
    int ok = decode_one_checked(path, &t->opts, t->buf, &st);
    if (ok)
        t->ok++;
    else
        t->failed++;
    if (t->only_prefix && base[0] == 'x' && strstr(base, ".png") && ok) {
        t->x_ok++;
        printf("  corrupt PngSuite file decoded: %s\n", path);
    }
}

static void run_hostile_dir(const char *sub, const char *label, int expect_x_fail, int mode)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", data_dir, sub);
    struct tally t = {0};
    nh_decode_opts_default(&t.opts);
    t.opts.mode = (nh_decode_mode)mode;
    t.buf = malloc(nh_decode_out_bytes(&t.opts));
    t.only_prefix = expect_x_fail ? "x" : NULL;
    walk(dir, tally_file, &t);
    printf("%s (%s mode): %zu decoded, %zu refused with an error\n", label,
           mode == NH_DECODE_FAST ? "fast" : "compat", t.ok, t.failed);
    assert_true(t.ok + t.failed > 0);
    if (expect_x_fail)
        assert_int_equal(t.x_ok, 0);
    free(t.buf);
}

/* PngSuite: every valid file decodes, every corrupted x*.png is refused. */
static void test_pngsuite(void **state)
{
    (void)state;
    if (!have_data())
        return;
    run_hostile_dir("pngsuite/examples/images/pngsuite", "PngSuite", 1, NH_DECODE_COMPAT);
    run_hostile_dir("pngsuite/examples/images/pngsuite", "PngSuite", 1, NH_DECODE_FAST);
}

/* gdk-pixbuf's fail/ set and randomly modified files: pixels or an error, never a crash. */
static void test_pixbuf_hostile(void **state)
{
    (void)state;
    if (!have_data())
        return;
    run_hostile_dir("pixbuf/test-images/fail", "gdk-pixbuf fail/", 0, NH_DECODE_COMPAT);
    run_hostile_dir("pixbuf/test-images/fail", "gdk-pixbuf fail/", 0, NH_DECODE_FAST);
    run_hostile_dir("pixbuf/test-images/randomly-modified", "gdk-pixbuf randomly-modified", 0,
                    NH_DECODE_COMPAT);
    run_hostile_dir("pixbuf/test-images/gif-test-suite", "gdk-pixbuf GIF suite", 0,
                    NH_DECODE_COMPAT);
}

/* The 749 MP JPEG and 839 MP PNG bombs are refused from their headers, quickly. */
static void test_bombs_and_truncated(void **state)
{
    (void)state;
    if (!have_data())
        return;
    nh_decode_opts o;
    nh_decode_opts_default(&o);
    uint8_t *buf = malloc(nh_decode_out_bytes(&o));
    const char *bombs[] = {"pixbuf/large.jpg", "pixbuf/large.png"};
    for (int m = 0; m < 2; m++) {
        o.mode = m ? NH_DECODE_FAST : NH_DECODE_COMPAT;
        for (int i = 0; i < 2; i++) {
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", data_dir, bombs[i]);
            nh_error err;
            nh_error_clear(&err);
            assert_int_equal(nh_decode_file(p, &o, buf, NULL, &err), NH_ERR_TOO_LARGE);
            assert_non_null(strstr(err.msg, "MP"));
            printf("  %s\n", err.msg);
        }
        char p[1024];
        snprintf(p, sizeof p, "%s/skimage/truncated.jpg", data_dir);
        nh_error err;
        nh_error_clear(&err);
        assert_int_not_equal(nh_decode_file(p, &o, buf, NULL, &err), NH_OK);
        printf("  truncated.jpg: %s\n", err.msg);
    }
    /* The limit is configurable. */
    o.mode = NH_DECODE_COMPAT;
    o.max_pixels = 1000;
    char p[1024];
    snprintf(p, sizeof p, "%s/sklearn/china.jpg", data_dir);
    nh_error err;
    nh_error_clear(&err);
    assert_int_equal(nh_decode_file(p, &o, buf, NULL, &err), NH_ERR_TOO_LARGE);
    free(buf);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static uint8_t *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)len);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* Made-up hostile files: empty, text, directory, no permission, truncations, byte flips. */
static void test_generated_hostile(void **state)
{
    (void)state;
    nh_decode_opts o;
    nh_decode_opts_default(&o);
    uint8_t *buf = malloc(nh_decode_out_bytes(&o));
    char p[1024];
    nh_error err;
    nh_error_clear(&err);

    snprintf(p, sizeof p, "%s/empty.jpg", tmp_dir);
    write_file(p, "", 0);
    assert_int_equal(nh_decode_file(p, &o, buf, NULL, &err), NH_ERR_DECODE);
    assert_string_equal(err.msg, "empty file");
    assert_string_equal(err.path, p);

    snprintf(p, sizeof p, "%s/text.jpg", tmp_dir);
    write_file(p, "this is not an image\n", 21);
    assert_int_equal(nh_decode_file(p, &o, buf, NULL, &err), NH_ERR_DECODE);
    assert_non_null(strstr(err.msg, "not a known image format"));

    snprintf(p, sizeof p, "%s/dir.jpg", tmp_dir);
    assert_int_equal(mkdir(p, 0755), 0);
    assert_int_equal(nh_decode_file(p, &o, buf, NULL, &err), NH_ERR_IO);
    assert_string_equal(err.msg, "is a directory");

    snprintf(p, sizeof p, "%s/missing.jpg", tmp_dir);
    assert_int_equal(nh_decode_file(p, &o, buf, NULL, &err), NH_ERR_IO);
    assert_string_equal(err.msg, "no such file");

    snprintf(p, sizeof p, "%s/fifo.jpg", tmp_dir);
    assert_int_equal(mkfifo(p, 0644), 0);
    assert_int_equal(nh_decode_file(p, &o, buf, NULL, &err), NH_ERR_IO);

    if (!have_data()) {
        free(buf);
        return;
    }
    /* No permission: root reads anything, so this only bites as a normal user. */
    snprintf(p, sizeof p, "%s/noperm.jpg", tmp_dir);
    char src[1024];
    snprintf(src, sizeof src, "%s/sklearn/china.jpg", data_dir);
    size_t n = 0;
    uint8_t *img = read_all(src, &n);
    write_file(p, img, n);
    chmod(p, 0);
    nh_status st = nh_decode_file(p, &o, buf, NULL, &err);
    if (geteuid() != 0) {
        assert_int_equal(st, NH_ERR_IO);
        assert_string_equal(err.msg, "permission denied");
    }
    chmod(p, 0644);

    /* Truncations at random offsets and random byte flips of real JPEG, PNG, GIF, TIFF. */
    const char *srcs[] = {"sklearn/china.jpg", "skimage/coffee.png", "goimage/video-001.gif",
                          "skimage/multipage.tif", "goimage/video-001.progressive.jpeg",
                          "skimage/logo.png"};
    srand(1234);
    size_t ok = 0, bad = 0;
    for (size_t s = 0; s < sizeof srcs / sizeof *srcs; s++) {
        free(img);
        snprintf(src, sizeof src, "%s/%s", data_dir, srcs[s]);
        img = read_all(src, &n);
        for (int t = 0; t < 24; t++) {
            uint8_t *copy = malloc(n);
            memcpy(copy, img, n);
            size_t len = n;
            if (t % 2 == 0)
                len = (size_t)rand() % n;
            else
                for (int k = 0; k < 1 + t; k++)
                    copy[(size_t)rand() % n] ^= (uint8_t)(1 + rand() % 255);
            const char *ext = strrchr(srcs[s], '.');
            snprintf(p, sizeof p, "%s/mod_%zu_%d%s", tmp_dir, s, t, ext);
            write_file(p, copy, len);
            for (int m = 0; m < 2; m++) {
                o.mode = m ? NH_DECODE_FAST : NH_DECODE_COMPAT;
                if (decode_one_checked(p, &o, buf, NULL))
                    ok++;
                else
                    bad++;
            }
            /* The same bytes from memory behave like the file. */
            nh_status a = nh_decode_file(p, &o, buf, NULL, &err);
            nh_status b = nh_decode_buffer(copy, len, p, &o, buf, NULL, &err);
            if ((a == NH_OK) != (b == NH_OK))
                printf("  file %s: %d, buffer: %d (%s)\n", p, a, b, err.msg);
            assert_int_equal(a == NH_OK, b == NH_OK);
            free(copy);
            remove(p);
        }
    }
    printf("damaged copies: %zu decoded, %zu refused with an error\n", ok, bad);
    assert_true(bad > 0);
    free(img);
    free(buf);
}

static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += abs(a[i] - b[i]);
    return s / (double)n;
}

/* fast mode lands near compat on photos; EXIF orientation applied only when asked. */
static void test_fast_mode_and_orientation(void **state)
{
    (void)state;
    if (!have_data())
        return;
    nh_decode_opts c, f;
    nh_decode_opts_default(&c);
    nh_decode_opts_default(&f);
    f.mode = NH_DECODE_FAST;
    size_t sz = nh_decode_out_bytes(&c);
    uint8_t *a = malloc(sz), *b = malloc(sz), *r = malloc(sz);
    const char *photos[] = {"sklearn/china.jpg", "sklearn/flower.jpg", "dlib/faces/bald_guys.jpg",
                            "skimage/coffee.png", "skimage/astronaut.png", "dlib/faces/dogs.jpg"};
    nh_error err;
    for (size_t i = 0; i < sizeof photos / sizeof *photos; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", data_dir, photos[i]);
        assert_int_equal(nh_decode_file(p, &c, a, NULL, &err), NH_OK);
        assert_int_equal(nh_decode_file(p, &f, b, NULL, &err), NH_OK);
        double d = mean_abs_diff(a, b, sz);
        printf("  fast vs compat %s: mean |diff| %.2f\n", photos[i], d);
        assert_true(d < 6.0);
    }
    /* orientation_N.jpg: one picture stored under each EXIF orientation. With autorotate
     * every one looks like orientation_1; without it, the rotated ones differ. */
    f.autorotate = 1;
    f.width = f.height = 64;
    nh_decode_opts fr = f;
    fr.autorotate = 0;
    char p[1024];
    snprintf(p, sizeof p, "%s/orientation/orientation_1.jpg", data_dir);
    assert_int_equal(nh_decode_file(p, &f, r, NULL, &err), NH_OK);
    size_t s64 = 64 * 64 * 3;
    for (int k = 2; k <= 8; k++) {
        snprintf(p, sizeof p, "%s/orientation/orientation_%d.jpg", data_dir, k);
        assert_int_equal(nh_decode_file(p, &f, a, NULL, &err), NH_OK);
        assert_int_equal(nh_decode_file(p, &fr, b, NULL, &err), NH_OK);
        double with = mean_abs_diff(a, r, s64), without = mean_abs_diff(b, r, s64);
        printf("  orientation_%d: |diff| to upright %.1f with autorotate, %.1f without\n", k,
               with, without);
        assert_true(with < 16.0);
        assert_true(without > 2 * with);
    }
    free(a);
    free(b);
    free(r);
}

/* The pool gives each file the result a single decode gives, and goes on past failures. */
static void test_pool(void **state)
{
    (void)state;
    if (!have_data())
        return;
    struct expect *e = NULL;
    size_t n = read_expect(&e);
    if (n > 40)
        n = 40;
    const char **paths = calloc(n + 3, sizeof *paths);
    char (*store)[1024] = calloc(n + 3, sizeof *store);
    for (size_t i = 0; i < n; i++)
        snprintf(store[i], sizeof store[i], "%s/%s", data_dir, e[i].path);
    snprintf(store[n], sizeof store[n], "%s/skimage/truncated.jpg", data_dir);
    snprintf(store[n + 1], sizeof store[n + 1], "%s/no/such/file.jpg", data_dir);
    snprintf(store[n + 2], sizeof store[n + 2], "%s/pixbuf/large.jpg", data_dir);
    for (size_t i = 0; i < n + 3; i++)
        paths[i] = store[i];
    nh_decode_opts o;
    nh_decode_opts_default(&o);
    size_t slot = nh_decode_out_bytes(&o);
    uint8_t *out = malloc(slot * (n + 3)), *one = malloc(slot);
    nh_decode_result *res = calloc(n + 3, sizeof *res);
    nh_decode_pool *pool = NULL;
    nh_error err;
    assert_int_equal(nh_decode_pool_create(&o, 3, &pool, &err), NH_OK);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(nh_decode_pool_run(pool, paths, n + 3, out, res), NH_OK);
        for (size_t i = 0; i < n + 3; i++) {
            nh_status st = nh_decode_file(paths[i], &o, one, NULL, &err);
            assert_int_equal(res[i].status, st);
            if (st == NH_OK)
                assert_memory_equal(out + i * slot, one, slot);
            else
                assert_string_equal(res[i].err.path, paths[i]);
        }
    }
    assert_int_not_equal(res[n].status, NH_OK);
    assert_int_equal(res[n + 1].status, NH_ERR_IO);
    assert_int_equal(res[n + 2].status, NH_ERR_TOO_LARGE);
    nh_decode_pool_destroy(pool);
    free(out);
    free(one);
    free(res);
    free(paths);
    free(store);
    free(e);
}

/* Pillow resize on synthetic images: identity copy, and upscaling from tiny sources. */
static void test_resize_edges(void **state)
{
    (void)state;
    uint8_t src[5 * 3 * 3], dst[360 * 360 * 3];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 37);
    assert_int_equal(nh_resize_pillow_bicubic(src, 5, 3, dst, 5, 3), NH_OK);
    assert_memory_equal(src, dst, sizeof src);
    assert_int_equal(nh_resize_pillow_bicubic(src, 5, 3, dst, 360, 360), NH_OK);
    assert_int_equal(nh_resize_pillow_bicubic(src, 5, 3, dst, 1, 1), NH_OK);
    assert_int_equal(nh_resize_pillow_bicubic(src, 0, 3, dst, 1, 1), NH_ERR_INVALID);
    /* A flat image stays flat (weights sum to one in fixed point). */
    memset(src, 200, sizeof src);
    assert_int_equal(nh_resize_pillow_bicubic(src, 5, 3, dst, 360, 360), NH_OK);
    for (size_t i = 0; i < 360 * 360 * 3; i++)
        assert_int_equal(dst[i], 200);
}

/* Every promised format decodes: lossless ones to the same tensor as the PNG source, lossy
 * ones close to it; untrusted loaders are refused by default with a reason, allowed on request. */
static void test_formats_and_loaders(void **state)
{
    (void)state;
    char src[1024];
    const char *srcdir = getenv("NH_SOURCE_DIR");
    snprintf(src, sizeof src, "%s/samples/chelsea.png", srcdir ? srcdir : ".");
    const char *exts[] = {"tif", "webp[lossless]", "jxl[lossless]", "webp[Q=90]", "avif",
                          "heic[Q=90]", "jxl[Q=90]", "jpg[Q=95]", "gif", "ppm", "v"};
    const int lossless[] = {1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1};
    const int untrusted[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
    nh_decode_opts o, ou;
    nh_decode_opts_default(&o);
    ou = o;
    ou.allow_untrusted = 1;
    size_t sz = nh_decode_out_bytes(&o);
    uint8_t *ref = malloc(sz), *buf = malloc(sz);
    nh_error err;
    nh_error_clear(&err);
    assert_int_equal(nh_decode_file(src, &o, ref, NULL, &err), NH_OK);
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++) {
        char dst[1024], cmd[3072], ext[32];
        snprintf(ext, sizeof ext, "%s", exts[i]);
        char *br = strchr(ext, '[');
        if (br)
            *br = '\0';
        snprintf(dst, sizeof dst, "%s/fmt_%zu.%s", tmp_dir, i, ext);
        snprintf(cmd, sizeof cmd, "vips copy '%s' '%s/fmt_%zu.%s' 2>/dev/null", src, tmp_dir, i,
                 exts[i]);
        if (system(cmd) != 0) {
            printf("  SKIP %s: this libvips cannot write it\n", exts[i]);
            continue;
        }
        nh_status st = nh_decode_file(dst, &o, buf, NULL, &err);
        if (untrusted[i]) {
            assert_int_equal(st, NH_ERR_UNSUPPORTED);
            assert_non_null(strstr(err.msg, "--allow-untrusted"));
            st = nh_decode_file(dst, &ou, buf, NULL, &err);
        }
        assert_int_equal(st, NH_OK);
        double d = mean_abs_diff(ref, buf, sz);
        printf("  %-16s mean |diff| to PNG source %.3f\n", exts[i], d);
        if (lossless[i])
            assert_memory_equal(ref, buf, sz);
        else
            assert_true(d < 4.0);
        /* fast mode too */
        nh_decode_opts f = untrusted[i] ? ou : o;
        f.mode = NH_DECODE_FAST;
        assert_int_equal(nh_decode_file(dst, &f, buf, NULL, &err), NH_OK);
    }
    free(ref);
    free(buf);
}

/* Write n bytes to tmp_dir/name; returns the path (static buffer per call site). */
static void put_file(const char *name, const void *data, size_t n, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/*
 * Chunks that declare far more than the file holds are refused before libvips, naming the
 * chunk: a 104-byte PNG whose zTXt chunk declares 2 GB made libpng allocate it (2.2 GB peak
 * per decode); also one before the header ends, a WebP chunk and an ISO media box. The decode
 * runs in a child process whose own peak RSS must stay under 400 MB. A file merely cut short
 * is still the decoder's to report (the pixbuf "crasher" keeps its size message).
 */
static void test_declared_lengths_bounded(void **state)
{
    (void)state;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t ihdr[25] = {0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 16, 0, 0, 0, 16,
                                     8, 2, 0, 0, 0, 0x90, 0x91, 0x68, 0x36};
    uint8_t b[4][200];
    size_t n[4];
    const char *names[4] = {"bomb_ztxt.png", "bomb_pre_ihdr.png", "bomb.webp", "bomb.heic"};
    const char *chunk[4] = {"'zTXt'", "'tEXt'", "'VP8X'", "'meta'"};
    /* PNG: IHDR, then zTXt declaring 0x7ffffff0 bytes */
    memcpy(b[0], png_sig, 8);
    memcpy(b[0] + 8, ihdr, 25);
    memcpy(b[0] + 33, "\x7f\xff\xff\xf0zTXta\0\0", 11);
    memset(b[0] + 44, 'x', 60);
    n[0] = 104;
    /* PNG: tEXt declaring 2^31 - 1 bytes before any IHDR */
    memcpy(b[1], png_sig, 8);
    memcpy(b[1] + 8, "\x7f\xff\xff\xfftEXt", 8);
    memset(b[1] + 16, 'x', 100);
    n[1] = 116;
    /* WebP: RIFF of 36 bytes holding a VP8X chunk that declares 0x7ffffff0 */
    memcpy(b[2], "RIFF\x24\0\0\0WEBPVP8X\xf0\xff\xff\x7f", 20);
    memset(b[2] + 20, 0, 24);
    n[2] = 44;
    /* HEIF: ftyp, then a meta box declaring 0x7ffffff0 */
    memcpy(b[3], "\0\0\0\x18" "ftypheic\0\0\0\0mif1heic" "\x7f\xff\xff\xf0meta", 32);
    memset(b[3] + 32, 0, 40);
    n[3] = 72;
    for (int k = 0; k < 4; k++) {
        char path[512];
        put_file(names[k], b[k], n[k], path, sizeof path);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            nh_decode_opts o;
            nh_decode_opts_default(&o);
            uint8_t *out = malloc(nh_decode_out_bytes(&o));
            nh_error err;
            nh_error_clear(&err);
            struct {
                int status;
                long rss;
                char msg[200];
            } r;
            memset(&r, 0, sizeof r);
            r.status = (int)nh_decode_file(path, &o, out, NULL, &err);
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            r.rss = ru.ru_maxrss;
            size_t ml = strnlen(err.msg, sizeof r.msg - 1);
            memcpy(r.msg, err.msg, ml);
            r.msg[ml] = '\0';
            _exit(write(fds[1], &r, sizeof r) == (ssize_t)sizeof r ? 0 : 1);
        }
        close(fds[1]);
        struct {
            int status;
            long rss;
            char msg[200];
        } r;
        assert_int_equal(read(fds[0], &r, sizeof r), (ssize_t)sizeof r);
        close(fds[0]);
        int st;
        waitpid(pid, &st, 0);
        printf("  %-18s status %d, peak %ld KiB: %s\n", names[k], r.status, r.rss, r.msg);
        assert_int_equal(r.status, NH_ERR_DECODE);
        assert_non_null(strstr(r.msg, "declares"));
        assert_non_null(strstr(r.msg, chunk[k]));
        assert_true(r.rss < 400 * 1024);
    }
    /* A chunk whose data fits but whose CRC is cut (the guard read past the buffer on it,
     * found by fuzz_decode): the decoder's error, no overread (ASan build). */
    for (size_t cut = 1; cut <= 4; cut++) {
        char path[512];
        put_file("crc_cut.png", b[0], 33 - cut, path, sizeof path);
        nh_decode_opts o;
        nh_decode_opts_default(&o);
        uint8_t *out = malloc(nh_decode_out_bytes(&o));
        nh_error err;
        nh_error_clear(&err);
        assert_int_not_equal(nh_decode_file(path, &o, out, NULL, &err), NH_OK);
        free(out);
    }
    /* Cut short by a few bytes: still the header's size check that speaks. */
    const char *d = getenv("NH_DATA_DIR");
    char crasher[1024];
    snprintf(crasher, sizeof crasher, "%s/pixbuf/test-images/fail/bug793470-crasher.png",
             d ? d : ".cache/data");
    if (access(crasher, R_OK) == 0) {
        nh_decode_opts o;
        nh_decode_opts_default(&o);
        uint8_t *out = malloc(nh_decode_out_bytes(&o));
        nh_error err;
        nh_error_clear(&err);
        assert_int_equal(nh_decode_file(crasher, &o, out, NULL, &err), NH_ERR_TOO_LARGE);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_resize_edges),
        cmocka_unit_test(test_compat_matches_pillow),
        cmocka_unit_test(test_pngsuite),
        cmocka_unit_test(test_pixbuf_hostile),
        cmocka_unit_test(test_bombs_and_truncated),
        cmocka_unit_test(test_generated_hostile),
        cmocka_unit_test(test_fast_mode_and_orientation),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_formats_and_loaders),
        cmocka_unit_test(test_declared_lengths_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
