/*
 * pipeline: nhash hash end to end through the CLI in a temp dir. File digests against
 * xxhsum (the xxHash project's own tool), path lists from stdin with spaces, newlines
 * (-0) and non-UTF-8 bytes, folders mixing good and hostile files, output formats.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "nhash/core.h"

static char tmp[256];
static char nhash[1024];
static const char *src_dir;

static int setup(void **state)
{
    (void)state;
    const char *bin = getenv("NH_BINARY_DIR");
    src_dir = getenv("NH_SOURCE_DIR");
    if (!bin || !src_dir)
        return -1;
    snprintf(nhash, sizeof nhash, "%s/host/nhash", bin);
    snprintf(tmp, sizeof tmp, "/tmp/nh_test_pipeline_XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static void copy_file(const char *from, const char *to)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

/* Digests equal `xxhsum -H2` line for line, over a folder walk. */
static void test_digest_matches_xxhsum(void **state)
{
    (void)state;
    if (system("command -v xxhsum >/dev/null 2>&1") != 0) {
        printf("SKIP: xxhsum not installed (apt-get install xxhash)\n");
        return;
    }
    char cmd[4096];
    int rc;
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' hash --algo digest samples", src_dir, nhash);
    char *ours = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && xxhsum -H2 $(find samples -type f | LC_ALL=C sort)",
             src_dir);
    char *theirs = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(ours, theirs);
    free(ours);
    free(theirs);
}

/* Names with spaces, a newline and invalid UTF-8, read from stdin with -0. */
static void test_stdin_names(void **state)
{
    (void)state;
    char src[1024], a[1024], b[1024], c[1024];
    snprintf(src, sizeof src, "%s/samples/chelsea.png", src_dir);
    snprintf(a, sizeof a, "%s/with space.png", tmp);
    snprintf(b, sizeof b, "%s/new\nline.png", tmp);
    snprintf(c, sizeof c, "%s/bad\xff\xfeutf8.png", tmp);
    copy_file(src, a);
    FILE *f = fopen(b, "wb");
    assert_non_null(f);
    fclose(f);
    copy_file(src, b);
    copy_file(src, c);
    char list[1024];
    snprintf(list, sizeof list, "%s/list0", tmp);
    f = fopen(list, "wb");
    fprintf(f, "%s%c%s%c%s%c", a, 0, b, 0, c, 0);
    fclose(f);
    char cmd[4096];
    int rc;
    snprintf(cmd, sizeof cmd, "'%s' hash --algo digest --format jsonl -0 - < '%s'", nhash, list);
    char *out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    /* Three records, all the same digest; the bad name is kept exactly in path_b64. */
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    assert_non_null(strstr(out, "with space.png"));
    assert_non_null(strstr(out, "new\\nline.png"));
    assert_non_null(strstr(out, "\"path_b64\""));
    assert_non_null(strstr(out, "bad\\ufffd\\ufffdutf8.png"));
    free(out);
    /* Text format escapes the newline the way sha256sum does. */
    snprintf(cmd, sizeof cmd, "'%s' hash --algo digest -0 - < '%s'", nhash, list);
    out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "/new\\nline.png\n"));
    assert_true(out[0] != '\\');
    assert_non_null(strstr(out, "\n\\")); /* the escaped record's line starts with '\\' */
    free(out);
    /* Newline-separated list: spaces survive. */
    snprintf(cmd, sizeof cmd, "printf '%%s\\n' '%s' | '%s' hash --algo digest -", a, nhash);
    out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "with space.png\n"));
    free(out);
}

/* Missing files and unreadable entries are records with reasons; the rest goes on. */
static void test_errors_go_on(void **state)
{
    (void)state;
    char cmd[4096];
    int rc;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' hash --algo digest --format csv samples/coffee.png /no/such.jpg "
             "samples/horse.png 2>'%s/err.txt'",
             src_dir, nhash, tmp);
    char *out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "path,neural,pdq,pdq_quality,xxh128,error\n"));
    assert_non_null(strstr(out, "samples/coffee.png,,,,398ea8877a201501d5097d427020b37a,\n"));
    assert_non_null(strstr(out, "/no/such.jpg,,,,,/no/such.jpg: no such file"));
    assert_non_null(strstr(out, "samples/horse.png,"));
    free(out);
    snprintf(cmd, sizeof cmd, "cat '%s/err.txt'", tmp);
    out = nh_test_capture(cmd, &rc);
    assert_non_null(strstr(out, "/no/such.jpg: no such file"));
    free(out);
    /* Usage errors exit 2. */
    snprintf(cmd, sizeof cmd, "'%s' hash --algo nope x 2>/dev/null", nhash);
    free(nh_test_capture(cmd, &rc));
    assert_int_equal(rc, 2);
}

/* PDQ in the main job, in C on the workers and on the OpenCL device (PoCL here), gives Meta's
 * reference hashes (tests/data/pdq/expected.csv, made by the reference pdq-photo-hasher) for
 * its 12 committed pixel files, with the neural hash and the digest from the same single read
 * and decode; both runs print the same records. */
static void test_pdq_backends_in_main_job(void **state)
{
    (void)state;
    char cmd[4096], out_c[600], out_cl[600];
    int rc;
    snprintf(out_c, sizeof out_c, "%s/pdq_c.jsonl", tmp);
    snprintf(out_cl, sizeof out_cl, "%s/pdq_cl.jsonl", tmp);
    const char *be[2] = {"c", "cl"};
    const char *outs[2] = {out_c, out_cl};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "cd '%s/tests/data/pdq/pixels' && ls | sort | '%s' hash --algo neural,pdq,digest "
                 "--model '%s/models/default.nhm' --pdq-backend %s --batch 5 --format jsonl - "
                 "> '%s' && echo ok",
                 src_dir, nhash, src_dir, be[k], outs[k]);
        char *o = nh_test_capture(cmd, &rc);
        assert_int_equal(rc, 0);
        assert_non_null(strstr(o, "ok"));
        free(o);
    }
    snprintf(cmd, sizeof cmd, "cmp '%s' '%s' && echo same", out_c, out_cl);
    char *o = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    free(o);
    /* Every expected row whose file is committed: its hash and quality in both outputs. */
    char path[1200];
    snprintf(path, sizeof path, "%s/tests/data/pdq/expected.csv", src_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        char name[256], hex[65];
        int q;
        if (sscanf(line, "%255[^,],%64[0-9a-f],%d", name, hex, &q) != 3)
            continue;
        char png[1200];
        snprintf(png, sizeof png, "%s/tests/data/pdq/pixels/%s.png", src_dir, name);
        if (access(png, R_OK) != 0)
            continue;
        for (int k = 0; k < 2; k++) {
            char want[512];
            snprintf(want, sizeof want, "{\"path\":\"%s.png\",", name);
            snprintf(cmd, sizeof cmd, "grep -F '%s' '%s'", want, outs[k]);
            char *rec = nh_test_capture(cmd, &rc);
            assert_int_equal(rc, 0);
            char pdq[128];
            snprintf(pdq, sizeof pdq, "\"pdq\":\"%s\",\"pdq_quality\":%d", hex, q);
            if (!strstr(rec, pdq))
                fail_msg("%s (%s): want %s in %s", name, be[k], pdq, rec);
            assert_non_null(strstr(rec, "\"neural\":\""));
            assert_non_null(strstr(rec, "\"xxh128\":\""));
            free(rec);
        }
        checked++;
    }
    fclose(f);
    printf("PDQ in the main job: %d reference hashes equal on pdq-c and pdq-cl\n", checked);
    assert_true(checked >= 10);
}

/* A file name is never read as libvips load options: "a.png[0]" beside "a.png" is its own
 * file (an evasion before: both got a.png's hashes), and "b.png[page=0]" alone decodes. */
static void test_bracket_names(void **state)
{
    (void)state;
    char d[400], a[600], cmd[4096];
    int rc;
    snprintf(d, sizeof d, "%s/brackets", tmp);
    mkdir(d, 0755);
    char from[1100];
    snprintf(from, sizeof from, "%s/samples/coffee.png", src_dir);
    snprintf(a, sizeof a, "%s/a.png", d);
    copy_file(from, a);
    snprintf(from, sizeof from, "%s/samples/horse.png", src_dir);
    snprintf(a, sizeof a, "%s/a.png[0]", d);
    copy_file(from, a);
    snprintf(a, sizeof a, "%s/b.png[page=0]", d);
    copy_file(from, a);
    snprintf(a, sizeof a, "%s/horse.png", d);
    copy_file(from, a);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' hash --algo pdq a.png 'a.png[0]' 'b.png[page=0]' horse.png",
             d, nhash);
    char *out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    char h[4][65];
    char *line = out;
    for (int i = 0; i < 4; i++) {
        assert_non_null(line);
        assert_int_equal(sscanf(line, "%64s", h[i]), 1);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    assert_string_not_equal(h[0], h[1]);  /* a.png[0] is horse, not coffee */
    assert_string_equal(h[1], h[3]);
    assert_string_equal(h[2], h[3]);
    free(out);
}

/* Only regular files are read: a FIFO or a character device is a per-file error at once
 * (it hung every digest run before), and the run goes on. */
static void test_special_files(void **state)
{
    (void)state;
    char fifo[400], cmd[4096];
    int rc;
    snprintf(fifo, sizeof fifo, "%s/fifo", tmp);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    const char *algos[] = {"digest", "neural,pdq,digest"};
    for (int k = 0; k < 2; k++) {
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && timeout 60 '%s' hash --algo %s --format csv '%s' /dev/zero "
                 "samples/coffee.png 2>/dev/null",
                 src_dir, nhash, algos[k], fifo);
        char *out = nh_test_capture(cmd, &rc);
        assert_int_equal(rc, 1); /* 124 would be the timeout */
        assert_non_null(strstr(out, "fifo: not a regular file"));
        assert_non_null(strstr(out, "/dev/zero: not a regular file"));
        assert_non_null(strstr(out, "samples/coffee.png,"));
        assert_non_null(strstr(out, "398ea8877a201501d5097d427020b37a"));
        free(out);
    }
}

/* One record format: `nhash hash --format jsonl` imports with `nhdb import` as it is and
 * gives the set `nhash hash --db` builds from the same files (compared entry by entry in
 * sorted exports, the time added left out), a name that is not UTF-8 included (its exact
 * bytes travel as path_b64, then source_b64); failed files import nothing. */
static void test_records_import(void **state)
{
    (void)state;
    char d[400], cmd[8192];
    int rc;
    snprintf(d, sizeof d, "%s/records", tmp);
    mkdir(d, 0755);
    char from[1100], to[1200];
    snprintf(from, sizeof from, "%s/samples/horse.png", src_dir);
    snprintf(to, sizeof to, "%s/h\xff\x01q.png", d);
    copy_file(from, to);
    const char *nhdb = getenv("NH_BINARY_DIR");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' hash --algo neural,pdq,digest --format jsonl samples '%s' /no/such "
             "> '%s/rec.jsonl' 2>/dev/null; "
             "'%s' hash --algo neural,pdq,digest --db '%s/a.set' samples '%s' /no/such "
             ">/dev/null 2>&1; "
             "'%s/dbtool/nhdb' import '%s/b.set' '%s/rec.jsonl' >/dev/null && "
             "for s in a b; do '%s/dbtool/nhdb' export '%s/'$s.set --format jsonl | "
             "sed 's/,\"added\":[0-9]*}/}/' | sort > '%s/'$s.txt; done && "
             "cmp '%s/a.txt' '%s/b.txt' && wc -l < '%s/a.txt' && grep -c source_b64 '%s/b.txt'",
             src_dir, nhash, d, tmp, nhash, tmp, d, nhdb, tmp, tmp, nhdb, tmp, tmp, tmp, tmp, tmp,
             tmp);
    char *out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    int entries = 0, b64 = 0;
    assert_int_equal(sscanf(out, "%d %d", &entries, &b64), 2);
    /* 6 samples + the odd name, each neural + pdq + digest */
    assert_int_equal(entries, 7 * 3);
    assert_int_equal(b64, 3);
    free(out);
}

/* Memory stays flat with the number of paths: 200,000 paths (files that do not exist, so
 * each is a quick error record) take no more than 20,000 do, give or take 8 MB (the
 * previous batch's paths leaked, about 128 bytes each: +23 MB here). The runs are measured
 * from a fresh child process, whose children's peak RSS starts from nothing; under
 * AddressSanitizer its quarantine of freed memory is kept small, or it looks like a leak. */
static void test_memory_flat_with_paths(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        long peak[2] = {-1, -1};
        const long counts[2] = {20000, 200000};
        for (int k = 0; k < 2; k++) {
            char cmd[2048];
            snprintf(cmd, sizeof cmd,
                     "seq 1 %ld | sed 's|^|/no/such/dir/f-|' | "
                     "ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:quarantine_size_mb=1\" "
                     "'%s' hash --algo digest - >/dev/null 2>&1; test $? -eq 1",
                     counts[k], nhash);
            struct rusage ru;
            if (system(cmd) == 0 && getrusage(RUSAGE_CHILDREN, &ru) == 0)
                peak[k] = ru.ru_maxrss;
        }
        ssize_t w = write(fds[1], peak, sizeof peak);
        _exit(w == (ssize_t)sizeof peak ? 0 : 1);
    }
    close(fds[1]);
    long peak[2] = {-1, -1};
    assert_int_equal(read(fds[0], peak, sizeof peak), (ssize_t)sizeof peak);
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    printf("peak RSS: %ld KiB for 20,000 paths, %ld KiB for 200,000\n", peak[0], peak[1]);
    assert_true(peak[0] > 0 && peak[1] > 0); /* both ran, every file failed, none hung */
    assert_true(peak[1] - peak[0] < 8 * 1024);
}

/* One set of decode options governs every hasher: PDQ refuses an image over --max-pixels
 * and reads an untrusted format with --allow-untrusted, as the network does (PDQ decoded
 * with the defaults before: a 9000x9000 JPEG went through --max-pixels 1000000, and an
 * --allow-untrusted PPM was still refused). */
static void test_decode_options_for_every_hasher(void **state)
{
    (void)state;
    char cmd[4096];
    int rc;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && vips copy '%s/samples/chelsea.png' big.png 2>/dev/null && "
             "vips copy '%s/samples/coffee.png' x.ppm 2>/dev/null && echo made",
             tmp, src_dir, src_dir);
    char *out = nh_test_capture(cmd, &rc);
    if (!strstr(out, "made")) {
        printf("SKIP: vips cannot write the test files\n");
        free(out);
        return;
    }
    free(out);
    for (int k = 0; k < 2; k++) {
        const char *algo = k ? "pdq" : "neural,pdq";
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && '%s' hash --algo %s --format csv --max-pixels 10000 big.png x.ppm "
                 "2>/dev/null",
                 tmp, nhash, algo);
        out = nh_test_capture(cmd, &rc);
        assert_int_equal(rc, 1);
        assert_non_null(strstr(out, "over the 0.0 MP limit"));
        assert_non_null(strstr(out, "--allow-untrusted enables it"));
        free(out);
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && '%s' hash --algo %s --format csv --allow-untrusted x.ppm 2>/dev/null",
                 tmp, nhash, algo);
        out = nh_test_capture(cmd, &rc);
        assert_int_equal(rc, 0);
        char *line = strstr(out, "x.ppm,");
        assert_non_null(line);
        /* path,neural,pdq,pdq_quality,...: a 64-hex PDQ hash is there */
        char *c2 = strchr(strchr(line, ',') + 1, ',');
        assert_non_null(c2);
        assert_true(strspn(c2 + 1, "0123456789abcdef") == 64);
        free(out);
    }
}

/* The test model: models/nh_test.nhm when committed, else imported from the ONNX. */
static const char *test_model(void)
{
    static char path[1200];
    if (path[0])
        return path;
    snprintf(path, sizeof path, "%s/models/nh_test.nhm", src_dir);
    if (access(path, R_OK) == 0)
        return path;
    char onnx[1100], cmd[4096];
    snprintf(onnx, sizeof onnx, "%s/models/nh_test.onnx", src_dir);
    if (access(onnx, R_OK) != 0) {
        path[0] = '\0';
        return NULL;
    }
    snprintf(path, sizeof path, "%s/nh_test.nhm", tmp);
    snprintf(cmd, sizeof cmd, "'%s' model import '%s' '%s/models/nh_test_seed.dat' -o '%s' >/dev/null",
             nhash, onnx, src_dir, path);
    if (system(cmd) != 0)
        path[0] = '\0';
    return path[0] ? path : NULL;
}

static int have_data(void)
{
    const char *d = getenv("NH_DATA_DIR");
    char p[1024];
    snprintf(p, sizeof p, "%s/.dlib.stamp", d ? d : ".cache/data");
    if (access(p, R_OK) != 0) {
        printf("SKIP: no test images; run scripts/fetch-data.sh\n");
        return 0;
    }
    return 1;
}

/* Neural hashes through the whole pipeline equal onnxruntime's for the fixture photos
 * (tests/data/net/expected.tsv, made by scripts/net/make_fixtures.py), within 1 bit, for
 * the OpenCL and the reference backends and several batch sizes. */
static void test_neural_end_to_end(void **state)
{
    (void)state;
    const char *model = test_model();
    if (!model || !have_data()) {
        printf("SKIP: no test model or data\n");
        return;
    }
    const char *data = getenv("NH_DATA_DIR");
    char exp_path[1024];
    snprintf(exp_path, sizeof exp_path, "%s/tests/data/net/expected.tsv", src_dir);
    FILE *f = fopen(exp_path, "r");
    assert_non_null(f);
    char line[16384], names[16][64], srcs[16][256], hashes[16][32];
    int n = 0;
    while (n < 16 && fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        if (sscanf(line, "%63s %255s %*s %31s", names[n], srcs[n], hashes[n]) == 3 &&
            strncmp(srcs[n], "synth", 5))
            n++;
    }
    fclose(f);
    assert_true(n >= 5);
    char list[1024];
    snprintf(list, sizeof list, "%s/neural_list", tmp);
    f = fopen(list, "w");
    for (int i = 0; i < n; i++)
        fprintf(f, "%s/%s\n", data, srcs[i]);
    fclose(f);
    const char *variants[] = {"--backend cl --batch 3", "--backend ref --batch 16",
                              "--backend cl --batch 1 --threads 1"};
    for (size_t v = 0; v < 3; v++) {
        char cmd[4096];
        int rc;
        snprintf(cmd, sizeof cmd, "'%s' hash --model '%s' %s - < '%s'", nhash, model, variants[v],
                 list);
        char *out = nh_test_capture(cmd, &rc);
        assert_int_equal(rc, 0);
        char *p = out;
        for (int i = 0; i < n; i++) {
            char h[32];
            assert_int_equal(sscanf(p, "%24s", h), 1);
            uint8_t a[12], b[12];
            assert_int_equal(nh_hex_decode(h, 24, a, 12), NH_OK);
            assert_int_equal(nh_hex_decode(hashes[i], 24, b, 12), NH_OK);
            unsigned d = nh_hamming(a, b, 12);
            if (d)
                printf("  %s (%s): %u bit(s) from onnxruntime\n", names[i], variants[v], d);
            assert_true(d <= 1);
            p = strchr(p, '\n');
            assert_non_null(p);
            p++;
        }
        free(out);
    }
}

/* A folder of good photos and hostile files: every good file hashed, every bad one
 * reported with a reason, exit status 1, and the order of records is the walk's order. */
static void test_mixed_folder(void **state)
{
    (void)state;
    const char *model = test_model();
    if (!model || !have_data()) {
        printf("SKIP: no test model or data\n");
        return;
    }
    const char *data = getenv("NH_DATA_DIR");
    char dir[512], cmd[8192];
    snprintf(dir, sizeof dir, "%s/mixed", tmp);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/sub' '%s/dir.jpg' && cp '%s'/sklearn/*.jpg '%s'/dlib/faces/dogs.jpg '%s/' && "
             "cp '%s'/skimage/coffee.png '%s/sub/' && cp '%s'/skimage/truncated.jpg '%s/' && "
             "cp '%s'/pixbuf/large.jpg '%s/bomb.jpg' && : > '%s/empty.png' && "
             "echo text > '%s/sub/notes.jpg' && head -c 3000 '%s'/sklearn/china.jpg > '%s/sub/cut.jpg'",
             dir, dir, data, data, dir, data, dir, data, dir, data, dir, dir, dir, data, dir);
    assert_int_equal(system(cmd), 0);
    int rc;
    snprintf(cmd, sizeof cmd, "'%s' hash --model '%s' --algo neural,digest --format jsonl '%s' 2>/dev/null",
             nhash, model, dir);
    char *out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 1);
    const char *good[] = {"/china.jpg\"", "/flower.jpg\"", "/dogs.jpg\"", "/sub/coffee.png\""};
    const char *bad[] = {"/truncated.jpg\"", "/bomb.jpg\"", "/empty.png\"", "/sub/notes.jpg\"",
                         "/sub/cut.jpg\""};
    for (size_t i = 0; i < 4; i++) {
        char *p = strstr(out, good[i]);
        assert_non_null(p);
        char *e = strchr(p, '\n');
        *e = '\0';
        assert_non_null(strstr(p, "\"neural\":"));
        assert_null(strstr(p, "\"error\""));
        *e = '\n';
    }
    for (size_t i = 0; i < 5; i++) {
        char *p = strstr(out, bad[i]);
        assert_non_null(p);
        char *e = strchr(p, '\n');
        *e = '\0';
        assert_non_null(strstr(p, "\"error\":"));
        *e = '\n';
    }
    assert_non_null(strstr(out, "over the 100.0 MP limit"));
    assert_non_null(strstr(out, "empty file"));
    /* dir.jpg is a folder: walked (empty), not an error. */
    assert_null(strstr(out, "dir.jpg"));
    free(out);
}

/* Entries of one kind in a set, through nhdb stats --json. */
static long set_count(const char *db, const char *kind)
{
    char cmd[2048];
    int rc;
    snprintf(cmd, sizeof cmd, "'%s/dbtool/nhdb' stats --json '%s' 2>/dev/null", getenv("NH_BINARY_DIR"), db);
    char *out = nh_test_capture(cmd, &rc);
    long count = 0;
    char key[64];
    snprintf(key, sizeof key, "\"kind\":\"%s\"", kind);
    char *p = rc == 0 ? strstr(out, key) : NULL;
    char *c = p ? strstr(p, "\"count\":") : NULL;
    if (c)
        count = atol(c + 8);
    free(out);
    return count;
}

#define NFILES 80

/* kill -9 in the middle of a --db build, repeated, then the same command again: the set ends
 * with every file once per kind, and the re-runs skipped what earlier runs had committed. */
static void test_resume_after_kill(void **state)
{
    (void)state;
    const char *model = test_model();
    if (!model || !have_data())
        return;
    const char *data = getenv("NH_DATA_DIR");
    char db[512], cmd[8192];
    snprintf(db, sizeof db, "%s/resume.set", tmp);
    /* 80 photos through the plain-C network: slow enough to be killed mid-run. */
    char job[4096], list[600];
    snprintf(list, sizeof list, "%s/resume_list", tmp);
    snprintf(cmd, sizeof cmd, "ls '%s'/dlib/faces/*.jpg '%s'/dlib/video_frames/*.jpg | head -n %d > '%s'",
             data, data, NFILES, list);
    assert_int_equal(system(cmd), 0);
    snprintf(job, sizeof job,
             "'%s' hash --model '%s' --backend ref --batch 4 --algo neural,digest --db '%s' - < '%s'",
             nhash, model, db, list);
    /* Kill as soon as a first commit landed (polling the set), so the kill falls mid-run
     * on fast and slow (sanitizer) builds alike. */
    int midway = 0;
    long last = 0;
    for (int round = 0; round < 3; round++) {
        snprintf(cmd, sizeof cmd,
                 "%s >/dev/null 2>&1 & pid=$!; i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); "
                 "n=$('%s/dbtool/nhdb' stats --json '%s' 2>/dev/null | grep -o '\"entries\":[0-9]*' | cut -d: -f2); "
                 "[ \"${n:-0}\" -gt %ld ] && break; done; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; true",
                 job, getenv("NH_BINARY_DIR"), db, 2 * last);
        assert_int_equal(system(cmd), 0);
        long now = set_count(db, "digest");
        printf("  after kill %d: %ld files in the set\n", round + 1, now);
        assert_true(now >= last);
        midway |= now > 0 && now < NFILES;
        last = now;
    }
    assert_true(midway);
    int rc;
    snprintf(cmd, sizeof cmd, "%s 2>&1 >/dev/null", job);
    char *out = nh_test_capture(cmd, &rc);
    printf("  re-run: %s", out);
    assert_int_equal(rc, 0);
    free(out);
    long digests = set_count(db, "digest"), neural = set_count(db, "neural");
    snprintf(cmd, sizeof cmd, "xargs -d '\\n' xxhsum -H2 < '%s' | cut -d' ' -f1 | sort -u | wc -l", list);
    out = nh_test_capture(cmd, &rc);
    long distinct = atol(out);
    free(out);
    printf("  %d files, %ld distinct contents, %ld digest and %ld neural entries\n", NFILES,
           distinct, digests, neural);
    /* Every file once; a file whose twin (same bytes) was committed first is skipped. */
    assert_true(digests >= distinct && digests <= NFILES);
    assert_int_equal(neural, digests);
    snprintf(cmd, sizeof cmd, "%s 2>&1 >/dev/null", job);
    out = nh_test_capture(cmd, &rc);
    assert_non_null(strstr(out, " 0 entries added"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s/dbtool/nhdb' verify '%s' >/dev/null", getenv("NH_BINARY_DIR"), db);
    assert_int_equal(system(cmd), 0);
}

/* Audit: resized and recompressed copies of set images are found and confirmed (neural and
 * PDQ agree), a disjoint archive reports nothing, the threshold sets the exit status,
 * rotations need --pdq-dihedral and, matched by PDQ alone, are listed but not counted unless
 * --count any; mirror images are found with --neural-mirror. */
static void test_audit(void **state)
{
    (void)state;
    /* the trained default model: the test network's random weights are no perceptual hash */
    static char model[1200];
    snprintf(model, sizeof model, "%s/models/default.nhm", src_dir);
    if (!have_data())
        return;
    const char *data = getenv("NH_DATA_DIR");
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p aset acopies aother arot amirror && cp '%s'/dlib/faces/2008_00*.jpg aset/ && "
             "for f in aset/*.jpg; do b=$(basename $f .jpg); "
             "vips resize $f acopies/${b}_half.jpg[Q=85] 0.5 && vips copy $f acopies/${b}_q70.jpg[Q=70] && "
             "vips rot $f arot/${b}_r90.png d90 && vips flip $f amirror/${b}_fx.png horizontal || exit 1; done && "
             "cp '%s'/dlib/video_frames/frame_00010*.jpg '%s'/sklearn/*.jpg aother/",
             tmp, data, data, data);
    assert_int_equal(system(cmd), 0);
    int rc;
    snprintf(cmd, sizeof cmd, "cd '%s' && ls aset | wc -l && ls aother | wc -l", tmp);
    char *out = nh_test_capture(cmd, &rc);
    long nset = 0, nother = 0;
    sscanf(out, "%ld %ld", &nset, &nother);
    free(out);
    assert_true(nset >= 5 && nother >= 5);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' hash --model '%s' --algo neural,pdq --db a.set --label test aset "
             ">/dev/null 2>&1", tmp, nhash, model);
    assert_int_equal(system(cmd), 0);
    /* copies: every one matched, threshold reached -> exit 3 */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db a.set --model '%s' --threshold %ld acopies",
             tmp, nhash, model, nset);
    out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 3);
    char want[128];
    snprintf(want, sizeof want, "\"matched_files\":%ld,\"confirmed_files\":%ld,\"counted_files\":%ld,",
             2 * nset, 2 * nset, 2 * nset);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "\"threshold_reached\":true"));
    assert_null(strstr(out, "\"status\":\"unconfirmed\""));
    assert_null(strstr(out, "\"warning\""));
    /* one record per copy: the neural and PDQ evidence of the one known image */
    {
        long recs = 0;
        for (const char *q = out; (q = strstr(q, "\"status\":\"confirmed\",\"confirmed_by\":\"neural+pdq\"")); q++)
            recs++;
        assert_int_equal(recs, 2 * nset);
    }
    assert_non_null(strstr(out, "\"label\":\"test\""));
    assert_non_null(strstr(out, "\"source\":\"aset/"));
    free(out);
    /* disjoint archive: nothing */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db a.set --model '%s' aother", tmp, nhash, model);
    out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "\"type\":\"match\""));
    assert_non_null(strstr(out, "\"matched_files\":0,"));
    free(out);
    /* rotations: only with the dihedral variants */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db a.set --model '%s' arot", tmp, nhash, model);
    out = nh_test_capture(cmd, &rc);
    assert_non_null(strstr(out, "\"matched_files\":0,"));
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db a.set --model '%s' --pdq-dihedral "
             "--threshold %ld arot", tmp, nhash, model, nset);
    out = nh_test_capture(cmd, &rc);
    snprintf(want, sizeof want, "\"matched_files\":%ld,\"confirmed_files\":0,\"counted_files\":0,", nset);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "\"variant\":\"rotate"));
    assert_non_null(strstr(out, "\"status\":\"unconfirmed\",\"counted\":false"));
    assert_int_equal(rc, 0); /* PDQ alone: listed for review, not counted */
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db a.set --model '%s' --pdq-dihedral "
             "--threshold %ld --count any arot 2>&1", tmp, nhash, model, nset);
    out = nh_test_capture(cmd, &rc);
    snprintf(want, sizeof want, "\"matched_files\":%ld,\"confirmed_files\":0,\"counted_files\":%ld,",
             nset, nset);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "\"count\":\"any\""));
    assert_non_null(strstr(out, "nhash audit: warning: --count any"));
    assert_int_equal(rc, 3);
    free(out);
    /* mirrored copies: the neural hash finds them through --neural-mirror, as variant flipx
     * (the mirror image of a mirrored PNG is the original's pixels up to resize rounding) */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db a.set --model '%s' --algo neural --neural-mirror amirror",
             tmp, nhash, model);
    out = nh_test_capture(cmd, &rc);
    snprintf(want, sizeof want, "\"matched_files\":%ld,", nset);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "\"variant\":\"flipx\""));
    /* one perceptual kind compared: the summary says its matches rest on one hash */
    assert_non_null(strstr(out, "\"counted_files\":0,"));
    assert_non_null(strstr(out, "\"warning\":\"only one perceptual hash is compared (neural)"));
    for (const char *q = out; (q = strstr(q, "\"kind\":\"neural\",\"distance\":")) != NULL; q++)
        assert_true(atoi(q + strlen("\"kind\":\"neural\",\"distance\":")) <= 2);
    free(out);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db a.set --model '%s' --algo neural amirror", tmp,
             nhash, model);
    out = nh_test_capture(cmd, &rc);
    assert_null(strstr(out, "flipx"));
    free(out);
    /* csv: one line per match plus the header */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db a.set --model '%s' --format csv acopies 2>/dev/null | wc -l",
             tmp, nhash, model);
    out = nh_test_capture(cmd, &rc);
    assert_true(atol(out) >= 2 * nset + 1);
    free(out);
    /* csv: a row per piece of evidence; the PDQ rows name the dihedral variant that matched */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db a.set --model '%s' --format csv --pdq-dihedral arot "
             "2>/dev/null | grep -c ',1,unconfirmed,,0,pdq,[0-9]*,[0-9]*,rotate[0-9]*,'", tmp, nhash, model);
    out = nh_test_capture(cmd, &rc);
    assert_true(atol(out) >= nset);
    free(out);
}

/* Ctrl-C: the batch in flight is finished and written out, the set holds what was
 * printed, the exit status says interrupted. */
static void test_sigint(void **state)
{
    (void)state;
    const char *model = test_model();
    if (!model || !have_data())
        return;
    const char *data = getenv("NH_DATA_DIR");
    char cmd[8192], out_path[600], db[600];
    snprintf(out_path, sizeof out_path, "%s/sigint.out", tmp);
    snprintf(db, sizeof db, "%s/sigint.set", tmp);
    snprintf(cmd, sizeof cmd,
             "ls '%s'/dlib/video_frames/*.jpg > '%s/sigint.list'; : > '%s'; "
             "'%s' hash --model '%s' --backend ref --batch 4 --algo neural,digest --db '%s' "
             "- < '%s/sigint.list' > '%s' 2>/dev/null & pid=$!; "
             "i=0; while [ $i -lt 600 ] && [ $(wc -l < '%s') -lt 4 ]; do sleep 0.1; i=$((i+1)); done; "
             "kill -INT $pid; wait $pid; echo $? > '%s/sigint.rc'",
             data, tmp, out_path, nhash, model, db, tmp, out_path, out_path, tmp);
    assert_int_equal(system(cmd), 0);
    int rc;
    snprintf(cmd, sizeof cmd, "cat '%s/sigint.rc'; wc -l < '%s'; grep -c '  ' '%s'", tmp, out_path,
             out_path);
    char *out = nh_test_capture(cmd, &rc);
    int status = 0, lines = 0, complete = 0;
    sscanf(out, "%d %d %d", &status, &lines, &complete);
    free(out);
    printf("  interrupted with exit status %d after %d records\n", status, lines);
    assert_int_equal(status, 130);
    assert_true(lines >= 4 && lines < 151);
    assert_int_equal(complete, lines); /* every written line is a whole record */
    /* Everything written out is in the set. */
    snprintf(cmd, sizeof cmd, "'%s/dbtool/nhdb' stats --json '%s'", getenv("NH_BINARY_DIR"), db);
    out = nh_test_capture(cmd, &rc);
    char *c = strstr(out, "\"kind\":\"digest\"");
    c = c ? strstr(c, "\"count\":") : NULL;
    assert_non_null(c);
    assert_int_equal(atol(c + 8), lines);
    free(out);
}

/* Crafted collisions (tests/data/adversarial, made by scripts/adversarial/ against
 * models/default.nhm; the distances in its pairs.tsv and evaded.tsv are nhash's own): a set
 * built from the known images; each crafted innocent image carries its target's neural hash,
 * so it is listed as an unconfirmed neural match of that target and never counts, and the
 * archive stays under a threshold it would reach under --count any. The evaded images (the
 * neural hash moved past the radius) are still listed, through PDQ. */
static void test_audit_crafted(void **state)
{
    (void)state;
    char cmd[8192], want[512], model[1200], dir[1200];
    snprintf(model, sizeof model, "%s/models/default.nhm", src_dir);
    snprintf(dir, sizeof dir, "%s/tests/data/adversarial", src_dir);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && rm -rf adv && mkdir adv && cp -R '%s/targets' '%s/crafted' '%s/evaded' adv/ && "
             "'%s' hash --model '%s' --algo neural,pdq --db adv/set --label known adv/targets >/dev/null 2>&1",
             tmp, dir, dir, dir, nhash, model);
    assert_int_equal(system(cmd), 0);
    int rc;
    snprintf(cmd, sizeof cmd, "ls '%s/crafted' | wc -l; ls '%s/evaded' | wc -l", dir, dir);
    char *out = nh_test_capture(cmd, &rc);
    long ncraft = 0, nevade = 0;
    sscanf(out, "%ld %ld", &ncraft, &nevade);
    free(out);
    assert_true(ncraft >= 5 && nevade >= 3);

    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db adv/set --model '%s' --threshold %ld adv/crafted",
             tmp, nhash, model, ncraft);
    out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0); /* not reached */
    snprintf(want, sizeof want,
             "\"files\":%ld,\"failed\":0,\"matched_files\":%ld,\"confirmed_files\":0,\"counted_files\":0,",
             ncraft, ncraft);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "\"threshold_reached\":false"));
    assert_null(strstr(out, "\"status\":\"confirmed\""));
    assert_null(strstr(out, "\"kind\":\"pdq\"")); /* PDQ never followed the neural hash */
    /* each crafted file is an unconfirmed neural match of its own target (pairs.tsv) */
    snprintf(cmd, sizeof cmd, "tail -n +2 '%s/pairs.tsv'", dir);
    char *pairs = nh_test_capture(cmd, &rc);
    long seen = 0;
    for (char *line = pairs, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        char crafted[256], target[256];
        if (sscanf(line, "%255s %255s", crafted, target) != 2)
            continue;
        char path[600], source[600];
        snprintf(path, sizeof path, "\"path\":\"adv/%s\",\"status\":\"unconfirmed\",\"counted\":false,", crafted);
        snprintf(source, sizeof source,
                 "\"evidence\":[{\"kind\":\"neural\",\"distance\":");
        char *rec = strstr(out, path);
        if (!rec)
            fail_msg("crafted %s is not an unconfirmed match", crafted);
        char *end = strchr(rec, '\n');
        assert_non_null(end);
        *end = '\0';
        char *ev = strstr(rec, source);
        assert_non_null(ev);
        assert_true(atoi(ev + strlen(source)) <= 12);
        snprintf(source, sizeof source, "\"source\":\"adv/%s\"", target);
        if (!strstr(rec, source))
            fail_msg("crafted %s does not name its target %s: %s", crafted, target, rec);
        *end = '\n';
        seen++;
    }
    free(pairs);
    assert_int_equal(seen, ncraft);
    free(out);

    /* the old rule, one hash suffices: the crafted images alone raise the flag */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db adv/set --model '%s' --threshold %ld "
             "--count any adv/crafted 2>/dev/null", tmp, nhash, model, ncraft);
    out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 3);
    snprintf(want, sizeof want, "\"counted_files\":%ld,\"count\":\"any\"", ncraft);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "\"threshold_reached\":true"));
    free(out);

    /* evasion: the neural hash is past its radius, PDQ still lists every evaded image */
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' audit --db adv/set --model '%s' adv/evaded", tmp, nhash, model);
    out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    snprintf(want, sizeof want, "\"files\":%ld,\"failed\":0,\"matched_files\":%ld,\"confirmed_files\":0,",
             nevade, nevade);
    assert_non_null(strstr(out, want));
    assert_null(strstr(out, "\"kind\":\"neural\""));
    long pdq = 0;
    for (const char *q = out; (q = strstr(q, "\"status\":\"unconfirmed\",\"counted\":false,")); q++)
        pdq++;
    assert_int_equal(pdq, nevade);
    free(out);
}

/* SIGTERM during an audit: the batch in flight is finished, its matches and the archive's
 * summary (marked interrupted) are written, the exit status is 143. Every file hashed before
 * the signal is a known file (the set is the archive), so the summary's file count equals the
 * number of files with a match record. */
static void test_audit_sigterm(void **state)
{
    (void)state;
    const char *model = test_model();
    if (!model || !have_data())
        return;
    const char *data = getenv("NH_DATA_DIR");
    char cmd[8192], out_path[600], db[600];
    snprintf(out_path, sizeof out_path, "%s/sigterm.out", tmp);
    snprintf(db, sizeof db, "%s/sigterm.set", tmp);
    snprintf(cmd, sizeof cmd,
             "ls '%s'/dlib/video_frames/*.jpg > '%s/sigterm.list' && "
             "'%s' hash --model '%s' --backend ref --algo neural,digest --db '%s' "
             "- < '%s/sigterm.list' >/dev/null 2>&1",
             data, tmp, nhash, model, db, tmp);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             ": > '%s'; '%s' audit --db '%s' --model '%s' --backend ref --batch 4 --threshold 1000 "
             "- < '%s/sigterm.list' > '%s' 2>'%s.err' & pid=$!; "
             "i=0; while [ $i -lt 600 ] && [ $(wc -l < '%s') -lt 4 ]; do sleep 0.1; i=$((i+1)); done; "
             "kill -TERM $pid; wait $pid; echo $? > '%s/sigterm.rc'",
             out_path, nhash, db, model, tmp, out_path, out_path, out_path, tmp);
    assert_int_equal(system(cmd), 0);
    int rc;
    snprintf(cmd, sizeof cmd,
             "cat '%s/sigterm.rc'; wc -l < '%s/sigterm.list'; "
             "grep -c '^{\"type\":\"summary\".*\"interrupted\":true}$' '%s'; "
             "tail -n 1 '%s' | sed 's/.*\"files\":\\([0-9]*\\),.*/\\1/'; "
             "grep '^{\"type\":\"match\"' '%s' | sed 's/.*\"path\":\\(\"[^\"]*\"\\).*/\\1/' | sort -u | wc -l; "
             "grep -vc '^{\"type\":\"\\(match\\|summary\\)\".*}$' '%s'; "
             "grep -c 'interrupted by SIGTERM' '%s.err'",
             tmp, tmp, out_path, out_path, out_path, out_path, out_path);
    char *out = nh_test_capture(cmd, &rc);
    int status = -1, total = 0, summaries = 0, files = -1, matched = -1, bad = -1, said = 0;
    sscanf(out, "%d %d %d %d %d %d %d", &status, &total, &summaries, &files, &matched, &bad,
           &said);
    free(out);
    printf("  audit interrupted with exit status %d after %d of %d files\n", status, files, total);
    assert_int_equal(status, 143);
    assert_int_equal(summaries, 1);   /* the last line, marked interrupted */
    assert_true(files >= 4 && files < total);
    assert_int_equal(matched, files); /* each file hashed was written out */
    assert_int_equal(bad, 0);         /* every line a whole record */
    assert_int_equal(said, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_matches_xxhsum),
        cmocka_unit_test(test_stdin_names),
        cmocka_unit_test(test_errors_go_on),
        cmocka_unit_test(test_pdq_backends_in_main_job),
        cmocka_unit_test(test_bracket_names),
        cmocka_unit_test(test_special_files),
        cmocka_unit_test(test_records_import),
        cmocka_unit_test(test_memory_flat_with_paths),
        cmocka_unit_test(test_decode_options_for_every_hasher),
        cmocka_unit_test(test_neural_end_to_end),
        cmocka_unit_test(test_mixed_folder),
        cmocka_unit_test(test_resume_after_kill),
        cmocka_unit_test(test_audit),
        cmocka_unit_test(test_audit_sigterm),
        cmocka_unit_test(test_audit_crafted),
        cmocka_unit_test(test_sigint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
