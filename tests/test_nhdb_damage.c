/*
 * nhdb on damaged sets: a seeded corruption campaign. A small set (neural, PDQ and digest
 * kinds, labels, digests, qualities, a progress record, three commits so that runs were merged
 * and pages freed) is copied NHDB_DAMAGE_COPIES times (default 150), each copy's data.mdb
 * damaged once at a seeded random place: one bit flipped, or 1..256 bytes zeroed or
 * randomised, anywhere or at the start of a page (its header and node offsets). On each copy
 * the nhdb CLI runs verify, stats, a radius query, a k-nearest query and export, then nhash
 * audit and nhash hash --db (digests of one file: the set's reads, the resume walk over every
 * entry), each in a child process.
 *
 * Asserted: no command dies of a signal or meets a sanitizer error (nhdb's CLI turns a fault
 * inside LMDB into a message and exit status 1, nhash into one and status 2, counted below); and verify reports (exit
 * status 1) every copy whose damage is visible, that is whose `mdb_dump -a` (lmdb-utils, the
 * independent reader) differs from the pristine set's or fails. A copy whose dump is unchanged
 * had its damage land on free pages, LMDB's free list, page padding or the older of the two
 * meta pages, none of which any reader uses; it may pass.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nhdb/nhdb.h"

#ifndef NHDB_EXE
#error "NHDB_EXE must name the nhdb binary"
#endif
#ifndef NHASH_EXE
#error "NHASH_EXE must name the nhash binary"
#endif

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void hex(char *out, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The whole of a file (or of a command's stdout with popen) into a malloc'd buffer. */
static char *read_all(FILE *f, size_t *n)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    *n = len;
    return buf;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *b = read_all(f, n);
    fclose(f);
    return b;
}

/* `mdb_dump -a dir` without its mapsize= and maxreaders= lines, which come from the lock
 * file and the map, not the data (NULL when mdb_dump fails: exit status or signal). */
static char *dump(const char *dir, const char *tmp, size_t *n)
{
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "mdb_dump -a '%s' > '%s' 2>/dev/null", dir, tmp);
    if (system(cmd) != 0)
        return NULL;
    size_t len;
    char *b = slurp(tmp, &len), *w = b;
    for (size_t i = 0; i < len;) {
        char *nl = memchr(b + i, '\n', len - i);
        size_t l = nl ? (size_t)(nl - (b + i)) + 1 : len - i;
        if (strncmp(b + i, "mapsize=", 8) != 0 && strncmp(b + i, "maxreaders=", 11) != 0) {
            memmove(w, b + i, l);
            w += l;
        }
        i += l;
    }
    *n = (size_t)(w - b);
    return b;
}

/* Run nhdb with argv (NULL-terminated after argv[0] = the command name); stderr to errf. The
 * exit status, or 128 + the signal. */
static int run_exe(const char *exe, const char *errf, const char *const *args)
{
    const char *argv[16] = {exe};
    int n = 1;
    while (args[n - 1] && n < 15) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open("/dev/null", O_WRONLY);
        int fe = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0)
            _exit(127);
        dup2(fo, 1);
        dup2(fe, 2);
        alarm(60); /* a hang shows as SIGALRM */
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run_nhdb(const char *errf, const char *const *args)
{
    return run_exe(NHDB_EXE, errf, args);
}

/* Whether the library opens dir (in a child: a damaged file must not take the test down). */
static int opens(const char *dir)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        nh_db *db = NULL;
        _exit(nh_db_open(dir, NH_DB_OPEN_READONLY, NULL, &db, NULL) == NH_OK ? 0 : 1);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

typedef struct query_hashes {
    char neural[25], pdq[65], digest[33];
} query_hashes;

/* The set: 1200 neural (96-bit, half with a digest, labels, notes), 600 PDQ with qualities,
 * 300 digests, in commits of 700, the second with a progress record that stays. */
static void build_set(const char *dir, query_hashes *q)
{
    nh_db_create_opts o = {.neural_substrings = 5, .pdq_substrings = 16};
    nh_db *db = NULL;
    nh_error err = {0};
    if (nh_db_open(dir, NH_DB_OPEN_CREATE | NH_DB_OPEN_NOSYNC, &o, &db, &err))
        fail_msg("create: %s", err.msg);
    nh_kind neural = {.type = NH_KIND_NEURAL, .model = {1, 2, 3, 4, 5, 6, 7, 8}, .bits = 96};
    nh_kind pdq = nh_kind_of(NH_KIND_PDQ), dig = nh_kind_of(NH_KIND_DIGEST);
    for (int i = 0; i < 2100; i++) {
        if (i % 700 == 0)
            assert_int_equal(nh_db_batch_begin(db, &err), NH_OK);
        uint8_t h[32], d[16];
        char src[64], label[32];
        for (int b = 0; b < 32; b++)
            h[b] = (uint8_t)rnd();
        for (int b = 0; b < 16; b++)
            d[b] = (uint8_t)rnd();
        snprintf(src, sizeof src, "/photos/%05d.jpg", i);
        snprintf(label, sizeof label, "series-%d", i % 7);
        nh_db_entry e = {.hash = h,
                         .quality = -1,
                         .source = src,
                         .label = label,
                         .note = i % 3 ? "" : "seen twice",
                         .added = 1700000000 + i};
        if (i < 1200) {
            e.kind = neural;
            e.digest = i % 2 ? d : NULL;
            if (i == 5)
                hex(q->neural, h, 12);
        } else if (i < 1800) {
            e.kind = pdq;
            e.quality = i % 101;
            if (i == 1300)
                hex(q->pdq, h, 32);
        } else {
            e.kind = dig;
            e.digest = h;
            if (i == 1900)
                hex(q->digest, h, 16);
        }
        assert_int_equal(nh_db_add(db, &e, &err), NH_OK);
        if (i == 1000) {
            const char pr[] = "offset 123456, line 1001";
            assert_int_equal(nh_db_batch_set_progress(db, "/lists/a.txt", pr, sizeof pr, &err),
                             NH_OK);
        }
        if (i % 700 == 699 && nh_db_batch_commit(db, NULL, NULL, &err))
            fail_msg("commit: %s", err.msg);
    }
    nh_db_close(db);
}

static void test_damage_campaign(void **state)
{
    (void)state;
    char top[] = "/tmp/nhdb-damage-XXXXXX";
    assert_non_null(mkdtemp(top));
    char base[300], copy[300], file[320], errf[320], tmp[320], cmd[1024];
    snprintf(base, sizeof base, "%s/base", top);
    snprintf(copy, sizeof copy, "%s/copy", top);
    snprintf(errf, sizeof errf, "%s/err.txt", top);
    snprintf(tmp, sizeof tmp, "%s/dump.txt", top);
    query_hashes q;
    build_set(base, &q);
    const char *va[] = {"verify", base, NULL};
    assert_int_equal(run_nhdb(errf, va), 0);
    size_t n_data, n_pristine;
    snprintf(file, sizeof file, "%s/data.mdb", base);
    char *data = slurp(file, &n_data);
    char *pristine = dump(base, tmp, &n_pristine);
    assert_non_null(pristine);
    assert_int_equal(mkdir(copy, 0755), 0);
    snprintf(file, sizeof file, "%s/data.mdb", copy);

    const char *env = getenv("NHDB_DAMAGE_COPIES");
    int copies = env ? atoi(env) : 150;
    int refused = 0, visible = 0, reported = 0, passed = 0, reported_unseen = 0, caught = 0;
    int mode_n[4] = {0};
    const char *const cmds[5][10] = {
        {"verify", copy, NULL},
        {"stats", copy, NULL},
        {"query", copy, "--radius", "8", q.neural, q.pdq, q.digest, NULL},
        {"query", copy, "--k", "5", q.neural, q.pdq, NULL},
        {"export", copy, "--format", "jsonl", NULL},
    };
    char probe[600];
    snprintf(probe, sizeof probe, "%s/probe.bin", top);
    FILE *pf = fopen(probe, "wb");
    assert_non_null(pf);
    fputs("a file to hash\n", pf);
    fclose(pf);
    const char *const nh_cmds[2][10] = {
        {"audit", "--db", copy, "--algo", "digest", probe, NULL},
        {"hash", "--db", copy, "--algo", "digest", probe, NULL},
    };
    int nh_caught = 0;
    for (int c = 0; c < copies; c++) {
        /* the damage */
        char *d = malloc(n_data);
        assert_non_null(d);
        memcpy(d, data, n_data);
        unsigned mode = (unsigned)(rnd() % 4);
        size_t off = mode == 3 ? (size_t)(rnd() % (n_data / 4096)) * 4096 + rnd() % 64
                               : (size_t)(rnd() % n_data);
        size_t len = mode == 0 ? 1 : 1 + (size_t)(rnd() % 256);
        if (off + len > n_data)
            len = n_data - off;
        for (size_t i = 0; i < len; i++)
            d[off + i] = mode == 0   ? (char)(d[off + i] ^ (1 << (rnd() % 8)))
                         : mode == 1 ? 0
                                     : (char)rnd();
        mode_n[mode]++;
        snprintf(cmd, sizeof cmd, "rm -f '%s/lock.mdb'", copy);
        assert_int_equal(system(cmd), 0);
        FILE *f = fopen(file, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(d, 1, n_data, f), n_data);
        fclose(f);
        free(d);

        size_t n_dump = 0;
        char *dd = dump(copy, tmp, &n_dump);
        int seen = !dd || n_dump != n_pristine || memcmp(dd, pristine, n_dump) != 0;
        free(dd);
        if (!opens(copy))
            refused++;
        int verify_rc = -1;
        for (int k = 0; k < 5; k++) {
            int rc = run_nhdb(errf, cmds[k]);
            size_t ne;
            char *e = slurp(errf, &ne);
            e = realloc(e, ne + 1);
            e[ne] = 0;
            if (rc > 128 || rc == 127 || strstr(e, "Sanitizer") || strstr(e, "runtime error"))
                fail_msg("copy %d (mode %u, %zu bytes at %zu): nhdb %s: status %d\n%s", c, mode,
                         len, off, cmds[k][0], rc, e);
            if (strstr(e, "LMDB structure is damaged (signal"))
                caught++;
            free(e);
            if (k == 0)
                verify_rc = rc;
        }
        /* nhash on the same copy, last (hash --db may write into it): the audit's reads and the
         * resume walk of `hash --db` over every entry; a fault inside LMDB is a message and
         * exit 2, never a signal */
        for (int k = 0; k < 2; k++) {
            int rc = run_exe(NHASH_EXE, errf, nh_cmds[k]);
            size_t ne;
            char *e = slurp(errf, &ne);
            e = realloc(e, ne + 1);
            e[ne] = 0;
            if (rc > 128 || rc == 127 || strstr(e, "Sanitizer") || strstr(e, "runtime error"))
                fail_msg("copy %d (mode %u, %zu bytes at %zu): nhash %s: status %d\n%s", c, mode,
                         len, off, nh_cmds[k][0], rc, e);
            if (strstr(e, "LMDB structure is damaged (signal"))
                nh_caught++;
            free(e);
        }
        visible += seen;
        if (verify_rc != 0) {
            reported++;
            reported_unseen += !seen;
        } else {
            if (seen)
                fail_msg("copy %d (mode %u, %zu bytes at %zu, page %zu): mdb_dump sees the "
                         "damage, nhdb verify passes",
                         c, mode, len, off, off / 4096);
            passed++;
        }
    }
    printf("damage campaign: %d copies of a %zu-byte data.mdb (bit flips %d, zeroed %d, "
           "randomised %d, page starts %d): the library refused %d at open; mdb_dump saw the "
           "damage in %d; verify reported %d (%d of them with mdb_dump's output unchanged) and "
           "passed %d, none with visible damage; %d command runs ended in a fault inside "
           "LMDB, caught and reported; nhash audit and hash --db: %d\n",
           copies, n_data, mode_n[0], mode_n[1], mode_n[2], mode_n[3], refused, visible, reported,
           reported_unseen, passed, caught, nh_caught);
    free(data);
    free(pristine);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_damage_campaign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
