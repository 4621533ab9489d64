/*
 * cli_hardening: the nhash and nhbench command lines under attack and bad luck (issue 18):
 * a full disk under `nhash hash --db`, planted symlinks under `nhash decode --out`, SIGTERM
 * and a second Ctrl-C, numeric options given garbage, file names with control characters,
 * decode errors with their reason, `nhbench COMMAND --help`. Commands run in a temp dir.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_run.h"

static char tmp[256];
static char nhash[1024], nhdb[1024], nhbench[1024];
static const char *src_dir;

static int setup(void **state)
{
    (void)state;
    const char *bin = getenv("NH_BINARY_DIR");
    src_dir = getenv("NH_SOURCE_DIR");
    if (!bin || !src_dir)
        return -1;
    snprintf(nhash, sizeof nhash, "%s/host/nhash", bin);
    snprintf(nhdb, sizeof nhdb, "%s/dbtool/nhdb", bin);
    snprintf(nhbench, sizeof nhbench, "%s/bench/nhbench", bin);
    snprintf(tmp, sizeof tmp, "/tmp/nh_test_cli_hardening_XXXXXX");
    return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *path)
{
    char cmd[4200];
    int rc;
    snprintf(cmd, sizeof cmd, "cat '%s'", path);
    return nh_test_capture(cmd, &rc);
}

/* n small distinct files dir/fNNNN.bin (not images: --algo digest reads any regular file). */
static void make_files(const char *dir, int n)
{
    char p[1024];
    mkdir(dir, 0755);
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/f%04d.bin", dir, i);
        FILE *f = fopen(p, "wb");
        assert_non_null(f);
        fprintf(f, "file %d\n", i);
        fclose(f);
    }
}

static long db_entries(const char *db)
{
    char cmd[2400];
    int rc;
    snprintf(cmd, sizeof cmd, "'%s' stats '%s' 2>/dev/null | awk '$1==\"entries\"{print $2}'", nhdb,
             db);
    char *out = nh_test_capture(cmd, &rc);
    long n = rc == 0 && out[0] ? atol(out) : -1;
    free(out);
    return n;
}

/* Item 6: a full disk is a database error (exit 2, "no space left on device"), not an
 * interruption, and what was committed before stays and is counted. */
static void test_disk_full(void **state)
{
    (void)state;
    char mnt[512], cmd[4096], files[512], db[600];
    snprintf(mnt, sizeof mnt, "%s/full", tmp);
    mkdir(mnt, 0755);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
        printf("SKIP: cannot mount a 1 MiB tmpfs on %s (%s): needs root or CAP_SYS_ADMIN\n", mnt,
               strerror(errno));
        return;
    }
    /* Leave about 300 KiB free: two 512-file batches fit, the third does not. */
    snprintf(cmd, sizeof cmd, "head -c 700000 /dev/zero > '%s/filler'", mnt);
    int ok = system(cmd) == 0;
    snprintf(files, sizeof files, "%s/files", tmp);
    make_files(files, 3000);
    snprintf(db, sizeof db, "%s/set", mnt);
    snprintf(cmd, sizeof cmd,
             "'%s' hash --algo digest --no-progress --db '%s' '%s' > '%s/out.txt' 2> '%s/err.txt'",
             nhash, db, files, tmp, tmp);
    int st = system(cmd);
    long entries = db_entries(db);
    snprintf(cmd, sizeof cmd, "%s/err.txt", tmp);
    char *err = slurp(cmd);
    printf("disk full: exit %d, %ld entries kept; stderr:\n%s", WEXITSTATUS(st), entries, err);
    int unmounted = umount2(mnt, MNT_DETACH) == 0;
    assert_true(ok);
    assert_true(unmounted);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    assert_non_null(strstr(err, "no space left on device"));
    assert_null(strstr(err, "interrupted"));
    /* Whole batches were committed before the disk filled, and the summary says how many. */
    assert_true(entries > 0 && entries < 3000);
    char want[128];
    snprintf(want, sizeof want, ": %ld entries committed before the failure", entries);
    assert_non_null(strstr(err, want));
    free(err);
}

/* Item 8: --out creates each file new and never writes through a planted link. */
static void test_decode_out_never_follows_links(void **state)
{
    (void)state;
    char out[512], victim[512], dangling[512], p[700], cmd[4096];
    snprintf(out, sizeof out, "%s/rgb", tmp);
    snprintf(victim, sizeof victim, "%s/victim.txt", tmp);
    snprintf(dangling, sizeof dangling, "%s/created-through-link", tmp);
    mkdir(out, 0755);
    FILE *f = fopen(victim, "wb");
    assert_non_null(f);
    fputs("precious\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/0.rgb", out);
    assert_int_equal(symlink(victim, p), 0);
    snprintf(p, sizeof p, "%s/1.rgb", out);
    assert_int_equal(symlink(dangling, p), 0);
    int rc;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' decode --size 32 --out '%s' samples/coffee.png samples/horse.png "
             "samples/camera.png 2> '%s/decode_err.txt'",
             src_dir, nhash, out, tmp);
    char *o = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 1);
    free(o);
    char *v = slurp(victim);
    assert_string_equal(v, "precious\n");
    free(v);
    struct stat sb;
    assert_int_not_equal(lstat(dangling, &sb), 0);
    snprintf(p, sizeof p, "%s/0.rgb", out);
    assert_int_equal(lstat(p, &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    snprintf(p, sizeof p, "%s/2.rgb", out);
    assert_int_equal(lstat(p, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_size, 32 * 32 * 3);
    snprintf(p, sizeof p, "%s/decode_err.txt", tmp);
    char *e = slurp(p);
    assert_non_null(strstr(e, "0.rgb: File exists"));
    assert_non_null(strstr(e, "1.rgb: File exists"));
    free(e);
}

/* Item 10: SIGTERM and a second signal finish the batch in flight: the process exits
 * 128 + signal (not killed by it), says so, and every record written out is committed. */
static void signal_twice(int sig, int want_rc, const char *want_msg)
{
    char files[512], db[600], outp[600], errp[600];
    snprintf(files, sizeof files, "%s/sigfiles", tmp);
    make_files(files, 400);
    snprintf(db, sizeof db, "%s/sig%d.set", tmp, sig);
    snprintf(outp, sizeof outp, "%s/sig%d.out", tmp, sig);
    snprintf(errp, sizeof errp, "%s/sig%d.err", tmp, sig);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fds[0], 0);
        dup2(o, 1);
        dup2(e, 2);
        close(fds[0]);
        close(fds[1]);
        execl(nhash, nhash, "hash", "--algo", "digest", "--no-progress", "--batch", "4", "--db",
              db, "-", (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    signal(SIGPIPE, SIG_IGN);
    /* Feed paths slowly, so the job is mid-way when the signals come; after the first, keep
     * signalling every millisecond until the process has exited, so later signals land
     * while it finishes the batch in flight. */
    struct timespec ts = {0, 5 * 1000 * 1000}, ms = {0, 1000 * 1000};
    char line[700];
    int st = 0, done = 0, sent = 0;
    for (int i = 0; i < 400 && !done; i++) {
        snprintf(line, sizeof line, "%s/f%04d.bin\n", files, i);
        if (write(fds[1], line, strlen(line)) < 0)
            break;
        nanosleep(&ts, NULL);
        if (i < 100)
            continue;
        for (int k = 0; k < 5000 && !done; k++) {
            kill(pid, sig);
            sent++;
            nanosleep(&ms, NULL);
            done = waitpid(pid, &st, WNOHANG) == pid;
        }
    }
    close(fds[1]);
    if (!done)
        assert_int_equal(waitpid(pid, &st, 0), pid);
    printf("signal %d sent %d times\n", sig, sent);
    assert_true(sent >= 2);
    char *err = slurp(errp);
    printf("signal %d twice: %s", sig, err);
    assert_true(WIFEXITED(st)); /* not killed by a later signal */
    assert_int_equal(WEXITSTATUS(st), want_rc);
    assert_non_null(strstr(err, want_msg));
    assert_non_null(strstr(err, "still finishing the batch in flight"));
    assert_non_null(strstr(err, "and committed"));
    /* Every record written out is in the set. */
    char *out = slurp(outp);
    long lines = 0;
    for (char *q = out; *q; q++)
        lines += *q == '\n';
    free(out);
    free(err);
    assert_true(lines > 0 && lines < 400);
    assert_int_equal(db_entries(db), lines);
}

static void test_sigterm_and_second_sigint_finish_the_batch(void **state)
{
    (void)state;
    signal_twice(SIGTERM, 143, "interrupted by SIGTERM");
    signal_twice(SIGINT, 130, "interrupted by SIGINT");
}

/* Item 10: numeric options refuse garbage, signs, exponents and overflow with exit 2 and a
 * message naming the option. */
static void test_numeric_options(void **state)
{
    (void)state;
    static const struct {
        const char *args, *option;
    } cases[] = {
        {"hash --max-pixels -1 x", "--max-pixels"},
        {"hash --max-pixels 1e9 x", "--max-pixels"},
        {"hash --max-pixels abc x", "--max-pixels"},
        {"hash --max-pixels 18446744073709551616 x", "--max-pixels"},
        {"hash --batch 0 x", "--batch"},
        {"hash --batch 16x x", "--batch"},
        {"hash --threads -2 x", "--threads"},
        {"hash --threads ' 4' x", "--threads"},
        {"audit --db x --batch 2000 y", "--batch"},
        {"audit --db x --threads abc y", "--threads"},
        {"audit --db x --radius-neural -1 y", "--radius-neural"},
        {"audit --db x --radius-pdq 257 y", "--radius-pdq"},
        {"audit --db x --radius-pdq 4294967327 y", "--radius-pdq"},
        {"audit --db x --threshold 1.5 y", "--threshold"},
        {"audit --db x --threshold 0 y", "--threshold"},
        {"audit --db x --max-pixels '' y", "--max-pixels"},
        {"decode --size 4294967297x1 x", "--size"},
        {"decode --size 0 x", "--size"},
        {"decode --size 10x x", "--size"},
        {"decode --max-pixels -5 x", "--max-pixels"},
        {"decode --threads 1e3 x", "--threads"},
        {"model hash --batch -1 m x", "--batch"},
        {"model import --size 99999999999 a b -o c", "--size"},
    };
    char cmd[2400];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc;
        snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1 >/dev/null", tmp, nhash, cases[i].args);
        char *err = nh_test_capture(cmd, &rc);
        if (rc != 2 || !strstr(err, cases[i].option))
            printf("nhash %s: exit %d: %s\n", cases[i].args, rc, err);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(err, cases[i].option));
        free(err);
    }
    /* Good values still pass. */
    int rc;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' decode --size 20x30 --max-pixels 100000000 --threads 1 "
             "samples/coffee.png",
             src_dir, nhash);
    char *out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "samples/coffee.png\t20x30\t"));
    free(out);
}

/* Item 10: control characters in names are escaped on every text line (hex, base64,
 * decode); jsonl escapes them; csv keeps the exact bytes, quoted. */
static void test_control_characters_escaped(void **state)
{
    (void)state;
    char dir[512], p[700], cmd[2400];
    snprintf(dir, sizeof dir, "%s/ctl", tmp);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/esc\x1b[31mred\x07\t\x7f.png", dir);
    char copy[2000];
    snprintf(copy, sizeof copy, "cp '%s/samples/coffee.png' '%s'", src_dir, p);
    assert_int_equal(system(copy), 0);
    static const char *formats[] = {"hex", "base64"};
    for (int k = 0; k < 2; k++) {
        int rc;
        snprintf(cmd, sizeof cmd, "'%s' hash --algo digest --format %s '%s'", nhash, formats[k], dir);
        char *out = nh_test_capture(cmd, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(out[0], '\\');
        assert_non_null(strstr(out, "/esc\\x1b[31mred\\x07\\t\\x7f.png\n"));
        for (char *q = out; *q; q++)
            assert_false(((unsigned char)*q < 0x20 && *q != '\n') || *q == 0x7f);
        free(out);
    }
    int rc;
    snprintf(cmd, sizeof cmd, "'%s' hash --algo digest --format jsonl '%s'", nhash, dir);
    char *out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "esc\\u001b[31mred\\u0007\\t\\u007f.png"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' hash --algo digest --format csv '%s'", nhash, dir);
    out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "esc\x1b[31mred\x07\t\x7f.png,"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' decode --size 8 '%s'", nhash, p);
    out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(out[0], '\\');
    assert_non_null(strstr(out, "esc\\x1b[31mred\\x07\\t\\x7f.png\t8x8\t"));
    free(out);
}

/* Item 10: `nhash decode` errors carry their reason on stdout (and on stderr). */
static void test_decode_error_reason(void **state)
{
    (void)state;
    char p[600], cmd[2400];
    snprintf(p, sizeof p, "%s/notimage.png", tmp);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs("this is not an image at all, just some text\n", f);
    fclose(f);
    int rc;
    snprintf(cmd, sizeof cmd, "'%s' decode '%s' '%s/missing.png' 2>'%s/dec.err'", nhash, p, tmp,
             tmp);
    char *out = nh_test_capture(cmd, &rc);
    assert_int_equal(rc, 1);
    printf("decode errors:\n%s", out);
    char want[700];
    snprintf(want, sizeof want, "%s/missing.png\terror\tno such file\n", tmp);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "%s\terror\t", p);
    char *line = strstr(out, want);
    assert_non_null(line);
    /* a reason in words, not a status name */
    line += strlen(want);
    assert_true(strchr(line, ' ') != NULL && strchr(line, ' ') < strchr(line, '\n'));
    assert_null(strstr(out, "NH_ERR"));
    free(out);
}

/* Item 10: every nhbench command answers --help with its options and exit 0. */
static void test_nhbench_help(void **state)
{
    (void)state;
    if (access(nhbench, X_OK) != 0) {
        printf("SKIP: %s not built (NH_BUILD_BENCH=OFF)\n", nhbench);
        return;
    }
    static const char *cmds[] = {"decode", "net", "pdq", "db", "quality"};
    char cmd[1400], want[64];
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        for (int k = 0; k < 2; k++) {
            int rc;
            snprintf(cmd, sizeof cmd, "'%s' %s %s 2>&1", nhbench, cmds[i], k ? "-h" : "--help");
            char *out = nh_test_capture(cmd, &rc);
            snprintf(want, sizeof want, "usage: nhbench-%s", cmds[i]);
            if (rc != 0 || !strstr(out, want))
                printf("nhbench %s --help: exit %d: %s\n", cmds[i], rc, out);
            assert_int_equal(rc, 0);
            assert_non_null(strstr(out, want));
            assert_non_null(strstr(out, "  --"));
            free(out);
        }
    }
    int rc;
    snprintf(cmd, sizeof cmd, "'%s' --help", nhbench);
    free(nh_test_capture(cmd, &rc));
    assert_int_equal(rc, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_decode_out_never_follows_links),
        cmocka_unit_test(test_sigterm_and_second_sigint_finish_the_batch),
        cmocka_unit_test(test_numeric_options),
        cmocka_unit_test(test_control_characters_escaped),
        cmocka_unit_test(test_decode_error_reason),
        cmocka_unit_test(test_nhbench_help),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
