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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Run a shell command, capture stdout into a malloc'd string; *rc gets the exit status. */
static char *run(const char *cmd, int *rc)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 >= cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int st = pclose(f);
    *rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
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
    char *ours = run(cmd, &rc);
    assert_int_equal(rc, 0);
    snprintf(cmd, sizeof cmd, "cd '%s' && xxhsum -H2 $(find samples -type f | LC_ALL=C sort)",
             src_dir);
    char *theirs = run(cmd, &rc);
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
    char *out = run(cmd, &rc);
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
    out = run(cmd, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "/new\\nline.png\n"));
    assert_true(out[0] != '\\');
    assert_non_null(strstr(out, "\n\\")); /* the escaped record's line starts with '\\' */
    free(out);
    /* Newline-separated list: spaces survive. */
    snprintf(cmd, sizeof cmd, "printf '%%s\\n' '%s' | '%s' hash --algo digest -", a, nhash);
    out = run(cmd, &rc);
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
    char *out = run(cmd, &rc);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "path,neural,pdq,pdq_quality,xxh128,error\n"));
    assert_non_null(strstr(out, "samples/coffee.png,,,,398ea8877a201501d5097d427020b37a,\n"));
    assert_non_null(strstr(out, "/no/such.jpg,,,,,/no/such.jpg: no such file"));
    assert_non_null(strstr(out, "samples/horse.png,"));
    free(out);
    snprintf(cmd, sizeof cmd, "cat '%s/err.txt'", tmp);
    out = run(cmd, &rc);
    assert_non_null(strstr(out, "/no/such.jpg: no such file"));
    free(out);
    /* Usage errors exit 2. */
    snprintf(cmd, sizeof cmd, "'%s' hash --algo nope x 2>/dev/null", nhash);
    free(run(cmd, &rc));
    assert_int_equal(rc, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest_matches_xxhsum),
        cmocka_unit_test(test_stdin_names),
        cmocka_unit_test(test_errors_go_on),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
