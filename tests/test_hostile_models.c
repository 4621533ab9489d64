/*
 * Hostile model files: every .onnx and .nhm in tests/data/hostile/ (copies of the libFuzzer
 * reproducers of fuzz/crashes/, docs/fuzzing.md "Findings") goes through the library calls
 * the fuzz harnesses make (fuzz/fuzz_onnx.c, fuzz/fuzz_nhm.c), each in a child process with
 * an alarm and, outside AddressSanitizer (whose shadow memory an address-space limit would
 * refuse), RLIMIT_AS of 1 GiB. Each must be refused with the message its defect now gets, or,
 * for the .nhm inputs, be refused or load and serialize back to the same bytes. The child
 * reports its status, message, peak RSS and (under LeakSanitizer, ASAN_OPTIONS=detect_leaks=1)
 * whether it leaked. Every file in the folder needs a row in the table below, so a new
 * reproducer cannot be skipped silently.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xxhash.h>

#include "nhash/net.h"
#include "nhash/nhm.h"

#if defined(__SANITIZE_ADDRESS__)
#define NH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NH_ASAN 1
#endif
#endif
#ifdef NH_ASAN
#include <sanitizer/lsan_interface.h>
#endif

#define CHILD_SECONDS 30
#define CHILD_AS_BYTES (1ull << 30)
#define CHILD_RSS_KIB (512l * 1024)

typedef struct expect {
    const char *file;   /* name in tests/data/hostile/ */
    nh_status status;   /* NH_OK: loads and round-trips byte for byte */
    const char *needle; /* part of the message; the defect's own check */
} expect;

static const expect g_expect[] = {
    /* tensor_floats failed after its malloc and ConstantOfShape leaked the buffer */
    {"onnx-leak-fold_node.onnx", NH_ERR_UNSUPPORTED,
     "(ConstantOfShape): constant data count does not match the dimensions"},
    /* (uint32_t) of a split size that does not fit */
    {"onnx-ubsan-split-float-to-u32.onnx", NH_ERR_UNSUPPORTED,
     "(Split): split size 7 (6.3136e+11) is not a whole number of channels"},
    /* a repeated perm axis: dims and strides that do not describe the input */
    {"onnx-asan-transpose-overread.onnx", NH_ERR_UNSUPPORTED, "(Transpose): perm repeats axis"},
    /* Pad with an empty input 0 */
    {"onnx-ubsan-pad-null-input.onnx", NH_ERR_UNSUPPORTED, "(Pad): missing input 0 (data)"},
    /* -step of INT64_MIN */
    {"onnx-ubsan-slice-negate-int64min.onnx", NH_ERR_UNSUPPORTED,
     "(Slice): step 0 (-9.22337e+18) is not a whole number in +-2^40"},
    /* folded constants of GiBs from 9 KB */
    {"onnx-oom-347dc2f91cd175d679efd897378b88b0c12d319f.onnx", NH_ERR_UNSUPPORTED,
     "(ConstantOfShape): folded constant is over the limit of 16777216 floats"},
    {"onnx-oom-3c977ac574c769badcbfd1e8f87b29446a361d6c.onnx", NH_ERR_UNSUPPORTED,
     "(ConstantOfShape): folded constant is over the limit of 16777216 floats"},
    {"onnx-oom-7e06ac8e8590da6fd04a0ab742ca7c191a4e89b0.onnx", NH_ERR_UNSUPPORTED,
     "(ConstantOfShape): folded constant is over the limit of 16777216 floats"},
    {"onnx-oom-a410ebc002717b2129db33b0536890d7423366c9.onnx", NH_ERR_UNSUPPORTED,
     "(ConstantOfShape): folded constant is over the limit of 16777216 floats"},
    {"onnx-timeout-constantofshape.onnx", NH_ERR_UNSUPPORTED,
     "(ConstantOfShape): folded constant is over the limit of 16777216 floats"},
    /* bytes after the name's NUL: loaded, but its writer made other bytes */
    {"nhm-roundtrip-name-padding-1.nhm", NH_ERR_FORMAT,
     "model name is not NUL-padded after its terminator"},
    {"nhm-roundtrip-name-padding-2.nhm", NH_ERR_FORMAT,
     "model name is not NUL-padded after its terminator"},
};

typedef struct result {
    int status;
    int roundtrip; /* -1 not reached, 0 differs or refused, 1 same bytes */
    int leaked;
    long rss_kib;
    char msg[1024];
} result;

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *b2 = realloc(buf, cap);
            if (!b2) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    *len = n;
    return buf;
}

static void keep_msg(result *r, nh_status st, const nh_error *err)
{
    r->status = (int)st;
    snprintf(r->msg, sizeof r->msg, "%s", st == NH_OK ? "" : err->msg);
}

/* fuzz_onnx: import without a seed; on success again with 8 rows, serialize, load. */
static void run_onnx(const uint8_t *data, size_t size, result *r)
{
    static const nh_onnx_opts opts = {32, 32, "fuzz", "1"};
    nh_error err;
    nh_error_clear(&err);
    nh_model *m = NULL;
    nh_status st = nh_onnx_import(data, size, NULL, 0, &opts, &m, &err);
    keep_msg(r, st, &err);
    if (st != NH_OK)
        return;
    uint32_t out_dim = m->out_dim, rows = 8;
    nh_model_destroy(m);
    m = NULL;
    float *seed = malloc((size_t)rows * out_dim * sizeof(float));
    if (!seed)
        return;
    for (size_t i = 0; i < (size_t)rows * out_dim; i++)
        seed[i] = (i % 3 == 0) ? 0.5f : -0.25f;
    st = nh_onnx_import(data, size, seed, rows, &opts, &m, &err);
    keep_msg(r, st, &err);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (st == NH_OK && (st = nh_model_serialize(m, &buf, &len, &err)) == NH_OK) {
        nh_model *again = NULL;
        st = nh_model_load_buffer(buf, len, "again", &again, &err);
        r->roundtrip = st == NH_OK;
        nh_model_destroy(again);
    }
    keep_msg(r, st, &err);
    free(buf);
    nh_model_destroy(m);
    free(seed);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* fuzz_nhm: load as given and with file_size and fingerprint made to match (the reproducers
 * are the harness's inputs before that fix-up); a model that loads must serialize back to
 * the bytes it was loaded from. The fixed-up load's outcome is the one reported. */
static void run_nhm(const uint8_t *data, size_t size, result *r)
{
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed)
        return;
    memcpy(fixed, data, size);
    if (size >= 32) {
        put_u64(fixed + 16, size);
        put_u64(fixed + 24, 0);
        put_u64(fixed + 24, XXH64(fixed, size, 0));
    }
    const uint8_t *in[2] = {data, fixed};
    for (int k = 0; k < 2; k++) {
        nh_error err;
        nh_error_clear(&err);
        nh_model *m = NULL;
        nh_status st = nh_model_load_buffer(in[k], size, "hostile", &m, &err);
        keep_msg(r, st, &err);
        if (st != NH_OK)
            continue;
        nh_net_plan plan = {0};
        if (nh_net_plan_build(m, &plan, &err) == NH_OK)
            nh_net_plan_free(&plan);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (nh_model_serialize(m, &buf, &len, &err) == NH_OK)
            r->roundtrip = len == size && memcmp(buf, in[k], size) == 0;
        else
            r->roundtrip = 0;
        free(buf);
        nh_model_destroy(m);
    }
    free(fixed);
}

/* Runs one file in a child under the alarm and memory limit; 0 when the child ended cleanly. */
static int run_child(const char *path, int is_onnx, result *out)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        alarm(CHILD_SECONDS);
#ifndef NH_ASAN
        struct rlimit rl = {CHILD_AS_BYTES, CHILD_AS_BYTES};
        setrlimit(RLIMIT_AS, &rl);
#endif
        result r;
        memset(&r, 0, sizeof r);
        r.status = -1;
        r.roundtrip = -1;
        size_t len = 0;
        uint8_t *data = read_all(path, &len);
        if (data) {
            if (is_onnx)
                run_onnx(data, len, &r);
            else
                run_nhm(data, len, &r);
        } else {
            snprintf(r.msg, sizeof r.msg, "cannot read %s", path);
        }
        free(data);
#ifdef NH_ASAN
        r.leaked = __lsan_do_recoverable_leak_check() != 0;
#endif
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        r.rss_kib = ru.ru_maxrss;
        _exit(write(fds[1], &r, sizeof r) == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], out, sizeof *out);
    close(fds[0]);
    int ws = 0;
    waitpid(pid, &ws, 0);
    if (WIFSIGNALED(ws)) {
        printf("  child for %s killed by signal %d%s\n", path, WTERMSIG(ws),
               WTERMSIG(ws) == SIGALRM ? " (over the time bound)" : "");
        return -1;
    }
    return got == (ssize_t)sizeof *out && WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? 0 : -1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks one file's outcome against its row; prints why not and returns 0 when it differs. */
static int check(const char *file, int rc, const result *r, const expect *x)
{
    const char *why = rc != 0                                   ? "the child did not end cleanly"
                      : r->leaked                               ? "it leaked"
                      : r->rss_kib >= CHILD_RSS_KIB             ? "peak RSS over the bound"
                      : r->status != (int)x->status             ? "another status"
                      : x->status == NH_OK && r->roundtrip != 1 ? "no byte-exact round trip"
                      : x->status != NH_OK && !strstr(r->msg, x->needle) ? "another message"
                                                                         : NULL;
    if (why)
        print_error("%s: %s (expected status %d, \"%s\")\n", file, why, (int)x->status, x->needle);
    return why == NULL;
}

static void test_reproducers_refused(void **state)
{
    (void)state;
    const char *fx = getenv("NH_FIXTURE_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/hostile", fx ? fx : "tests/data");
    /* Names first, so no directory handle is open when an assertion jumps out. */
    char *names[256];
    size_t nn = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) && nn < 256)
        if (ends_with(e->d_name, ".onnx") || ends_with(e->d_name, ".nhm"))
            names[nn++] = strdup(e->d_name);
    closedir(d);
    qsort(names, nn, sizeof *names, by_name);
    size_t nexp = sizeof g_expect / sizeof g_expect[0], failed = 0;
    int done[sizeof g_expect / sizeof g_expect[0]] = {0};
    for (size_t i = 0; i < nn; i++) {
        size_t k = 0;
        while (k < nexp && strcmp(g_expect[k].file, names[i]))
            k++;
        if (k == nexp) {
            print_error("%s/%s has no row in the table of test_hostile_models.c\n", dir, names[i]);
            failed++;
            continue;
        }
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        result r;
        memset(&r, 0, sizeof r);
        int rc = run_child(path, ends_with(names[i], ".onnx"), &r);
        printf("  %-56s status %d, peak %ld KiB%s: %s\n", names[i], r.status, r.rss_kib,
               r.leaked ? ", LEAKED" : "", r.msg);
        failed += !check(names[i], rc, &r, &g_expect[k]);
        done[k] = 1;
    }
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    for (size_t k = 0; k < nexp; k++)
        if (!done[k]) {
            print_error("%s/%s is missing\n", dir, g_expect[k].file);
            failed++;
        }
    assert_int_equal(failed, 0);
}

/* ---- made here: the bounds on the sum, which no single reproducer reaches ---- */

/* A protobuf message being written (the few wire types ONNX needs). */
typedef struct pb {
    uint8_t b[4096];
    size_t n;
} pb;

static void pb_varint(pb *p, uint64_t v)
{
    do {
        assert_true(p->n < sizeof p->b);
        p->b[p->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static void pb_bytes(pb *p, unsigned field, const void *d, size_t len)
{
    pb_varint(p, (uint64_t)field << 3 | 2);
    pb_varint(p, len);
    assert_true(p->n + len <= sizeof p->b);
    memcpy(p->b + p->n, d, len);
    p->n += len;
}

static void pb_str(pb *p, unsigned field, const char *s)
{
    pb_bytes(p, field, s, strlen(s));
}

static void pb_msg(pb *p, unsigned field, const pb *m)
{
    pb_bytes(p, field, m->b, m->n);
}

static void pb_int(pb *p, unsigned field, int64_t v)
{
    pb_varint(p, (uint64_t)field << 3);
    pb_varint(p, (uint64_t)v);
}

/* NodeProto: op, inputs (NULL-ended), one output; a Constant gets value_ints = ints. */
static void add_node(pb *graph, const char *op, const char *const *in, const char *out,
                     const int64_t *ints, size_t nints)
{
    pb node = {0}, at = {0};
    for (size_t k = 0; in && in[k]; k++)
        pb_str(&node, 1, in[k]);
    pb_str(&node, 2, out);
    pb_str(&node, 3, out);
    pb_str(&node, 4, op);
    if (ints) {
        pb_str(&at, 1, "value_ints");
        for (size_t k = 0; k < nints; k++)
            pb_int(&at, 8, ints[k]);
        pb_int(&at, 20, 7); /* INTS */
        pb_msg(&node, 5, &at);
    }
    pb_msg(graph, 1, &node);
}

/* ModelProto around a graph with image input "x" and output "y". */
static void finish_model(pb *model, pb *graph)
{
    pb vi = {0}, vo = {0}, ops = {0};
    pb_str(&vi, 1, "x");
    pb_str(&vo, 1, "y");
    pb_str(graph, 2, "hostile");
    pb_msg(graph, 11, &vi);
    pb_msg(graph, 12, &vo);
    pb_int(model, 1, 8);
    pb_msg(model, 7, graph);
    pb_int(&ops, 2, 14);
    pb_msg(model, 8, &ops);
}

static void import_in_child(const pb *model, result *r)
{
    char path[] = "/tmp/nh_hostile_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, model->b, model->n), (ssize_t)model->n);
    close(fd);
    memset(r, 0, sizeof *r);
    int rc = run_child(path, 1, r);
    unlink(path);
    printf("  status %d, peak %ld KiB%s: %s\n", r->status, r->rss_kib, r->leaked ? ", LEAKED" : "",
           r->msg);
    assert_int_equal(rc, 0);
    assert_false(r->leaked);
    assert_true(r->rss_kib < CHILD_RSS_KIB);
}

/* Three ConstantOfShape of 2^23 floats each: the third passes the total of 2^24. */
static void test_folded_total_bounded(void **state)
{
    (void)state;
    pb model = {0}, graph = {0};
    const int64_t shape[1] = {INT64_C(1) << 23};
    const char *in[] = {"s", NULL};
    add_node(&graph, "Constant", NULL, "s", shape, 1);
    add_node(&graph, "ConstantOfShape", in, "c1", NULL, 0);
    add_node(&graph, "ConstantOfShape", in, "c2", NULL, 0);
    add_node(&graph, "ConstantOfShape", in, "c3", NULL, 0);
    finish_model(&model, &graph);
    result r;
    import_in_child(&model, &r);
    assert_int_equal(r.status, NH_ERR_UNSUPPORTED);
    assert_non_null(strstr(r.msg, "node 3 'c3' (ConstantOfShape): constant folding would make "
                                  "more than 16777216 floats in all"));
}

/* One folded 65536 x 3 x 1 x 1 weight used by ten convolutions of the input: the network's
 * weights would be ten times the constants; refused when they pass twice plus 2^20. */
static void test_weights_bounded(void **state)
{
    (void)state;
    pb model = {0}, graph = {0};
    const int64_t shape[4] = {65536, 3, 1, 1};
    const char *in_s[] = {"s", NULL}, *in_conv[] = {"x", "w", NULL};
    add_node(&graph, "Constant", NULL, "s", shape, 4);
    add_node(&graph, "ConstantOfShape", in_s, "w", NULL, 0);
    char out[10][8];
    for (int k = 0; k < 10; k++) {
        snprintf(out[k], sizeof out[k], "y%d", k);
        add_node(&graph, "Conv", in_conv, out[k], NULL, 0);
    }
    finish_model(&model, &graph);
    result r;
    import_in_child(&model, &r);
    assert_int_equal(r.status, NH_ERR_UNSUPPORTED);
    assert_non_null(strstr(r.msg, "(Conv): network weights (1572864 floats) would exceed twice "
                                  "the constants of the file and of folding (196612) plus "
                                  "1048576"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reproducers_refused),
        cmocka_unit_test(test_folded_total_bounded),
        cmocka_unit_test(test_weights_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
