/*
 * nhdb: multi-index search against brute force, dedupe, map growth, text round trips through
 * the nhdb CLI, merge, malformed input, and SIGKILL during imports. Every test works in its
 * own temporary directory. Brute force here is nh_hamming over the test's own copy of the
 * hashes; lmdb-utils' mdb_stat is the independent check of table row counts.
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

#include <lmdb.h>
#include <xxhash.h>

#include "nhdb/nhdb.h"

#ifndef NHDB_EXE
#error "NHDB_EXE must name the nhdb binary"
#endif

static uint64_t rng = 0x243f6a8885a308d3u;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

typedef struct tdir {
    char path[256];
} tdir;

static void tdir_make(tdir *t)
{
    snprintf(t->path, sizeof t->path, "/tmp/nhdb-test-XXXXXX");
    assert_non_null(mkdtemp(t->path));
}

static void tdir_remove(tdir *t)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->path);
    assert_int_equal(system(cmd), 0);
}

static void path_in(char *out, size_t n, const tdir *t, const char *name)
{
    snprintf(out, n, "%s/%s", t->path, name);
}

/* Run nhdb with args (NULL-terminated); stdout/stderr to files (NULL: /dev/null). Returns the
 * exit status, or 128+signal. */
static int run_nhdb(const char *out, const char *errf, ...)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = NHDB_EXE;
    va_list ap;
    va_start(ap, errf);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 31)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(errf ? errf : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0)
            _exit(127);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(NHDB_EXE, (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    if (n)
        *n = (size_t)len;
    return buf;
}

static void assert_files_equal(const char *a, const char *b)
{
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    if (na != nb || memcmp(x, y, na) != 0)
        fail_msg("%s and %s differ", a, b);
    free(x);
    free(y);
}

static uint64_t db_count(const char *path)
{
    nh_error err = {0};
    nh_db *db = NULL;
    nh_db_stats s;
    if (nh_db_open(path, NH_DB_OPEN_READONLY, NULL, &db, &err))
        fail_msg("open %s: %s", path, err.msg);
    assert_int_equal(nh_db_stats_get(db, &s, &err), NH_OK);
    nh_db_close(db);
    return s.entries;
}

static void assert_verified(const char *path)
{
    nh_error err = {0};
    nh_db *db = NULL;
    uint64_t problems = 1;
    if (nh_db_open(path, NH_DB_OPEN_READONLY, NULL, &db, &err))
        fail_msg("open %s: %s", path, err.msg);
    if (nh_db_verify(db, &problems, &err))
        fail_msg("verify %s: %s", path, err.msg);
    assert_int_equal(problems, 0);
    nh_db_close(db);
}

/* Rows of one table according to mdb_stat (lmdb-utils), -1 if it cannot be read. */
static long mdb_stat_rows(const char *dir, const char *table)
{
    char cmd[512], line[256];
    snprintf(cmd, sizeof cmd, "mdb_stat -s %s '%s' 2>/dev/null", table, dir);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    long rows = -1;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, " Entries: %ld", &rows) == 1)
            break;
    pclose(p);
    return rows;
}

/* ---- search against brute force ---- */

typedef struct hashset {
    unsigned hb;
    size_t n;
    uint8_t *h; /* n x hb */
} hashset;

static void gen_set(hashset *s, unsigned hb, size_t n, int clustered)
{
    s->hb = hb;
    s->n = n;
    s->h = malloc(n * hb);
    assert_non_null(s->h);
    size_t i = 0;
    while (i < n) {
        uint8_t c[NH_DB_HASH_MAX];
        for (unsigned b = 0; b < hb; b++)
            c[b] = (uint8_t)rnd();
        unsigned members = clustered ? 1 + (unsigned)(rnd() % 12) : 1;
        for (unsigned j = 0; j < members && i < n; j++, i++) {
            memcpy(s->h + i * hb, c, hb);
            unsigned flips = clustered ? (unsigned)(rnd() % 9) : 0;
            for (unsigned f = 0; f < flips; f++) {
                unsigned bit = (unsigned)(rnd() % (hb * 8));
                s->h[i * hb + bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
            }
        }
    }
}

/* Add s in batches of `batch` entries (0: random sizes from 1 to 300). */
static void fill_db(nh_db *db, const nh_kind *kind, const hashset *s, size_t batch)
{
    nh_error err = {0};
    char src[32];
    size_t step = batch;
    for (size_t i = 0; i < s->n; i += step) {
        step = batch ? batch : 1 + (size_t)(rnd() % 300);
        assert_int_equal(nh_db_batch_begin(db, &err), NH_OK);
        for (size_t j = i; j < s->n && j < i + step; j++) {
            snprintf(src, sizeof src, "src/%zu", j);
            nh_db_entry e = {.kind = *kind, .hash = s->h + j * s->hb, .quality = -1, .source = src};
            assert_int_equal(nh_db_add(db, &e, &err), NH_OK);
        }
        uint64_t a = 0, k = 0;
        if (nh_db_batch_commit(db, &a, &k, &err))
            fail_msg("commit: %s", err.msg);
    }
}

static int match_cmp(const void *a, const void *b)
{
    const nh_db_match *x = a, *y = b;
    if (x->distance != y->distance)
        return x->distance < y->distance ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Brute force: all (ordinal, distance) within r, sorted as nh_db_query sorts. Entry ids are
 * kind << 40 | insertion ordinal, so the expected ids follow from the insertion order. */
static size_t brute(const hashset *s, const uint8_t *q, unsigned r, uint64_t base, nh_db_match *out)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        unsigned d = nh_hamming(s->h + i * s->hb, q, s->hb);
        if (d <= r) {
            out[n].id = base | i;
            out[n].distance = d;
            n++;
        }
    }
    qsort(out, n, sizeof *out, match_cmp);
    return n;
}

static void make_query(uint8_t *q, const hashset *s, int near)
{
    if (near) {
        memcpy(q, s->h + (rnd() % s->n) * s->hb, s->hb);
        unsigned flips = (unsigned)(rnd() % 6);
        for (unsigned f = 0; f < flips; f++) {
            unsigned bit = (unsigned)(rnd() % (s->hb * 8));
            q[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
        }
    } else {
        for (unsigned b = 0; b < s->hb; b++)
            q[b] = (uint8_t)rnd();
    }
}

/* Every radius (and k nearest) against brute force; the set is added in batches of
 * `batch` (0: random sizes, many MIH runs and merges; SIZE_MAX: three batches). width: the
 * neural kind's bits (0: the type's standard width). */
static void check_search_w(const nh_db_create_opts *o, nh_kind_type type, unsigned width,
                           size_t n, int clustered, unsigned nq, unsigned mih_max_radius,
                           unsigned step, size_t batch, unsigned max_radius)
{
    tdir t;
    tdir_make(&t);
    nh_error err = {0};
    nh_db *db = NULL;
    nh_db_reader *rd = NULL;
    unsigned bits = width ? width : nh_kind_type_bits(type), hb = bits / 8;
    hashset s;
    gen_set(&s, hb, n, clustered);
    nh_kind kind = {.type = type, .bits = width};
    if (type == NH_KIND_NEURAL)
        memcpy(kind.model, "modelfp!", 8);
    assert_int_equal(nh_db_open(t.path, NH_DB_OPEN_CREATE | NH_DB_OPEN_NOSYNC, o, &db, &err),
                     NH_OK);
    fill_db(db, &kind, &s, batch == SIZE_MAX ? n / 3 + 1 : batch);
    /* MIH runs at least double in size towards the oldest: at most log2(n) + 1 per substring */
    nh_db_stats st;
    assert_int_equal(nh_db_stats_get(db, &st, &err), NH_OK);
    assert_int_equal(st.kinds[0].bits, bits);
    unsigned m = st.kinds[0].substrings, lg = 0;
    /* substrings of at most 32 bits; neural widths keep the 96-bit default's length */
    assert_true(m >= 2 && (bits + m - 1) / m <= 32);
    while (((size_t)1 << lg) < n)
        lg++;
    assert_int_equal(st.mih_rows, (uint64_t)n * m);
    assert_true(st.mih_runs >= m && st.mih_runs <= (uint64_t)m * (lg + 1));
    assert_int_equal(nh_db_reader_create(db, &rd, &err), NH_OK);
    nh_db_match *want = malloc(n * sizeof *want);
    assert_non_null(want);
    uint64_t base = (uint64_t)1 << 40; /* the first kind has id 1 */
    for (unsigned qi = 0; qi < nq; qi++) {
        uint8_t q[NH_DB_HASH_MAX];
        make_query(q, &s, qi % 3 != 2);
        for (unsigned r = 0; r <= bits && r <= max_radius; r += (r < 24 ? 1 : step)) {
            size_t nw = brute(&s, q, r, base, want);
            static const nh_db_method methods[] = {NH_DB_METHOD_AUTO, NH_DB_METHOD_LINEAR,
                                                   NH_DB_METHOD_MIH};
            for (int mi = 0; mi < 3; mi++) {
                if (methods[mi] == NH_DB_METHOD_MIH && r > mih_max_radius)
                    continue;
                nh_db_query_opts qo = {.radius = r, .method = methods[mi]};
                const nh_db_match *got;
                size_t ng;
                assert_int_equal(nh_db_query(rd, &kind, q, &qo, &got, &ng, &err), NH_OK);
                if (ng != nw)
                    fail_msg("%u-bit r=%u method %d: %zu matches, brute force %zu", bits, r,
                             methods[mi], ng, nw);
                for (size_t i = 0; i < ng; i++)
                    if (got[i].id != want[i].id || got[i].distance != want[i].distance)
                        fail_msg("%u-bit r=%u method %d: match %zu differs", bits, r, methods[mi],
                                 i);
            }
        }
        /* k nearest: the first k of the brute-force order */
        static const unsigned ks[] = {1, 5, 50};
        size_t nw = brute(&s, q, bits, base, want);
        for (int ki = 0; ki < 3; ki++)
            for (int mi = 0; mi < 2; mi++) {
                nh_db_query_opts qo = {.k = ks[ki],
                                       .method = mi ? NH_DB_METHOD_LINEAR : NH_DB_METHOD_AUTO};
                const nh_db_match *got;
                size_t ng;
                assert_int_equal(nh_db_query(rd, &kind, q, &qo, &got, &ng, &err), NH_OK);
                assert_int_equal(ng, ks[ki] < nw ? ks[ki] : nw);
                for (size_t i = 0; i < ng; i++) {
                    assert_int_equal(got[i].distance, want[i].distance);
                    assert_int_equal(got[i].id, want[i].id);
                }
            }
    }
    free(want);
    free(s.h);
    nh_db_reader_destroy(rd);
    assert_verified(t.path);
    nh_db_close(db);
    tdir_remove(&t);
}

static void check_search_b(const nh_db_create_opts *o, nh_kind_type type, size_t n,
                           int clustered, unsigned nq, unsigned mih_max_radius, unsigned step,
                           size_t batch, unsigned max_radius)
{
    check_search_w(o, type, 0, n, clustered, nq, mih_max_radius, step, batch, max_radius);
}

static void check_search(const nh_db_create_opts *o, nh_kind_type type, size_t n, int clustered,
                         unsigned nq, unsigned mih_max_radius, unsigned step)
{
    check_search_b(o, type, n, clustered, nq, mih_max_radius, step, SIZE_MAX, UINT32_MAX);
}

/* Many small batches of random sizes: the runs are merged over and over. */
static void test_mih_many_batches_96(void **state)
{
    (void)state;
    check_search_b(NULL, NH_KIND_NEURAL, 6000, 1, 8, 15, 1, 0, UINT32_MAX);
}

static void test_mih_many_batches_256(void **state)
{
    (void)state;
    check_search_b(NULL, NH_KIND_PDQ, 3000, 1, 4, 35, 5, 0, UINT32_MAX);
}

/* 1.1M entries in two batches: runs of more than one part (2^20 postings each), a merge that
 * reads across part boundaries, and the commit's multi-threaded sort (batches >= 65536). */
static void test_mih_multipart_runs(void **state)
{
    (void)state;
    check_search_b(NULL, NH_KIND_NEURAL, 1100000, 1, 3, 12, 1, 600000, 12);
}

static void test_mih_random_96(void **state)
{
    (void)state;
    check_search(NULL, NH_KIND_NEURAL, 20000, 0, 12, 15, 1);
}

static void test_mih_clustered_96(void **state)
{
    (void)state;
    check_search(NULL, NH_KIND_NEURAL, 20000, 1, 12, 15, 1);
}

/* Five substrings of 96 bits: unequal lengths (19 and 20 bits). */
static void test_mih_clustered_96_m5(void **state)
{
    (void)state;
    nh_db_create_opts o = {.neural_substrings = 5};
    check_search(&o, NH_KIND_NEURAL, 15000, 1, 8, 19, 1);
}

static void test_mih_clustered_256(void **state)
{
    (void)state;
    check_search(NULL, NH_KIND_PDQ, 8000, 1, 8, 35, 3); /* default: 12 substrings */
}

/* Sixteen 16-bit substrings: no occupancy bitmap. */
static void test_mih_clustered_256_m16(void **state)
{
    (void)state;
    nh_db_create_opts o = {.pdq_substrings = 16};
    check_search(&o, NH_KIND_PDQ, 6000, 1, 6, 47, 5);
}

static void test_mih_random_256_m9(void **state)
{
    (void)state;
    nh_db_create_opts o = {.pdq_substrings = 9}; /* 28- and 29-bit substrings: bitmap on some */
    check_search(&o, NH_KIND_PDQ, 6000, 0, 6, 26, 5);
}

/* Neural widths other than 96 (models with another hash_bits): 64 bits in 3 substrings of
 * 21-22 bits, 128 in 5 of 25-26, 256 in 11 of 23-24 (the 96-bit default's 24-bit length). */
static void test_mih_neural_64(void **state)
{
    (void)state;
    check_search_w(NULL, NH_KIND_NEURAL, 64, 12000, 1, 8, 14, 1, 0, UINT32_MAX);
    check_search_w(NULL, NH_KIND_NEURAL, 64, 12000, 0, 6, 14, 1, SIZE_MAX, UINT32_MAX);
}

static void test_mih_neural_128(void **state)
{
    (void)state;
    check_search_w(NULL, NH_KIND_NEURAL, 128, 12000, 1, 8, 19, 2, 0, UINT32_MAX);
    check_search_w(NULL, NH_KIND_NEURAL, 128, 12000, 0, 6, 19, 2, SIZE_MAX, UINT32_MAX);
}

static void test_mih_neural_256(void **state)
{
    (void)state;
    check_search_w(NULL, NH_KIND_NEURAL, 256, 6000, 1, 6, 35, 5, 0, UINT32_MAX);
    check_search_w(NULL, NH_KIND_NEURAL, 256, 6000, 0, 4, 35, 5, SIZE_MAX, UINT32_MAX);
}

/* Odd widths: 8 bits (2 substrings of 4) and 136 bits (not a multiple of 64). */
static void test_mih_neural_odd_widths(void **state)
{
    (void)state;
    check_search_w(NULL, NH_KIND_NEURAL, 8, 500, 0, 4, 8, 1, SIZE_MAX, UINT32_MAX);
    check_search_w(NULL, NH_KIND_NEURAL, 136, 4000, 1, 4, 19, 3, SIZE_MAX, UINT32_MAX);
}

/* One set holding 96-bit and 128-bit neural kinds of one model fingerprint and of another:
 * three kinds, each searched against its own brute force, never mixed. A width outside
 * 8..1024 is refused. */
static void test_mixed_neural_widths(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    nh_error err = {0};
    nh_db *db = NULL;
    nh_db_reader *rd = NULL;
    assert_int_equal(nh_db_open(t.path, NH_DB_OPEN_CREATE | NH_DB_OPEN_NOSYNC, NULL, &db, &err),
                     NH_OK);
    nh_kind k96 = nh_kind_neural(0x1122334455667788u, 0);
    nh_kind k128 = nh_kind_neural(0x1122334455667788u, 128); /* same fingerprint, wider */
    nh_kind o128 = nh_kind_neural(0x99aabbccddeeff00u, 128);
    const nh_kind *kinds[3] = {&k96, &k128, &o128};
    hashset s[3];
    gen_set(&s[0], 12, 3000, 1);
    gen_set(&s[1], 16, 3000, 1);
    /* the other model's set: the first model's 128-bit hashes, so only the kind separates */
    s[2].hb = 16;
    s[2].n = 3000;
    s[2].h = malloc(3000 * 16);
    assert_non_null(s[2].h);
    memcpy(s[2].h, s[1].h, 3000 * 16);
    /* interleaved in each batch: kinds resolved per entry */
    char src[32];
    for (size_t i = 0; i < 3000; i += 500) {
        assert_int_equal(nh_db_batch_begin(db, &err), NH_OK);
        for (size_t j = i; j < i + 500; j++)
            for (int k = 0; k < 3; k++) {
                snprintf(src, sizeof src, "src/%zu", j);
                nh_db_entry e = {.kind = *kinds[k], .hash = s[k].h + j * s[k].hb, .quality = -1,
                                 .source = src};
                assert_int_equal(nh_db_add(db, &e, &err), NH_OK);
            }
        uint64_t a = 0, sk = 0;
        assert_int_equal(nh_db_batch_commit(db, &a, &sk, &err), NH_OK);
        assert_int_equal(a, 1500);
    }
    /* a bad width is refused at nh_db_add */
    assert_int_equal(nh_db_batch_begin(db, &err), NH_OK);
    uint8_t big[NH_DB_HASH_MAX + 1] = {0};
    nh_kind bad = nh_kind_neural(1, 100); /* not whole bytes */
    nh_db_entry e = {.kind = bad, .hash = big, .quality = -1};
    assert_int_equal(nh_db_add(db, &e, &err), NH_ERR_INVALID);
    bad.bits = 1032;
    e.kind = bad;
    assert_int_equal(nh_db_add(db, &e, &err), NH_ERR_INVALID);
    nh_kind pdq = nh_kind_of(NH_KIND_PDQ);
    pdq.bits = 128;
    e.kind = pdq;
    assert_int_equal(nh_db_add(db, &e, &err), NH_ERR_INVALID);
    nh_db_batch_abort(db);

    nh_db_stats st;
    assert_int_equal(nh_db_stats_get(db, &st, &err), NH_OK);
    assert_int_equal(st.n_kinds, 3);
    assert_int_equal(st.kinds[0].bits, 96);
    assert_int_equal(st.kinds[0].substrings, 4);
    assert_int_equal(st.kinds[1].bits, 128);
    assert_int_equal(st.kinds[1].substrings, 5);
    assert_int_equal(st.kinds[2].bits, 128);
    for (int k = 0; k < 3; k++) {
        assert_true(nh_kind_equal(&st.kinds[k].kind, kinds[k]));
        assert_int_equal(st.kinds[k].count, 3000);
    }
    assert_int_equal(nh_db_reader_create(db, &rd, &err), NH_OK);
    nh_db_match *want = malloc(3000 * sizeof *want);
    assert_non_null(want);
    for (int k = 0; k < 3; k++) {
        uint64_t base = (uint64_t)(k + 1) << 40;
        for (unsigned qi = 0; qi < 6; qi++) {
            uint8_t q[NH_DB_HASH_MAX];
            make_query(q, &s[k], qi % 3 != 2);
            for (unsigned r = 0; r <= 20; r++)
                for (int mi = 0; mi < 2; mi++) {
                    size_t nw = brute(&s[k], q, r, base, want);
                    nh_db_query_opts qo = {.radius = r,
                                           .method = mi ? NH_DB_METHOD_MIH : NH_DB_METHOD_LINEAR};
                    const nh_db_match *got;
                    size_t ng;
                    assert_int_equal(nh_db_query(rd, kinds[k], q, &qo, &got, &ng, &err), NH_OK);
                    if (ng != nw)
                        fail_msg("kind %d r=%u: %zu matches, brute force %zu", k, r, ng, nw);
                    for (size_t i = 0; i < ng; i++)
                        assert_true(got[i].id == want[i].id && got[i].distance == want[i].distance);
                }
        }
        /* records read back carry their kind's width */
        nh_db_record rec;
        assert_int_equal(nh_db_reader_get(rd, base | 7, &rec, &err), NH_OK);
        assert_int_equal(rec.bits, 8 * s[k].hb);
        assert_true(nh_kind_equal(&rec.kind, kinds[k]));
        assert_memory_equal(rec.hash, s[k].h + 7 * s[k].hb, s[k].hb);
    }
    /* a width the set does not hold: no matches, not another width's */
    nh_kind k64 = nh_kind_neural(0x1122334455667788u, 64);
    nh_db_query_opts qo = {.radius = 64};
    const nh_db_match *got;
    size_t ng = 1;
    assert_int_equal(nh_db_query(rd, &k64, s[1].h, &qo, &got, &ng, &err), NH_OK);
    assert_int_equal(ng, 0);
    free(want);
    for (int k = 0; k < 3; k++)
        free(s[k].h);
    nh_db_reader_destroy(rd);
    assert_verified(t.path);
    nh_db_close(db);
    tdir_remove(&t);
}

/* ---- dedupe, digests, kinds, growth ---- */

static void test_dedupe_and_digest(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    nh_error err = {0};
    nh_db *db = NULL;
    nh_db_create_opts o = {.initial_mapsize = 256 << 10}; /* forces the map to grow */
    assert_int_equal(nh_db_open(t.path, NH_DB_OPEN_CREATE, &o, &db, &err), NH_OK);
    nh_kind neural = {.type = NH_KIND_NEURAL}, other = {.type = NH_KIND_NEURAL};
    memcpy(neural.model, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
    memcpy(other.model, "\x99\x22\x33\x44\x55\x66\x77\x88", 8);
    nh_kind pdq = {.type = NH_KIND_PDQ}, dig = {.type = NH_KIND_DIGEST};
    uint8_t h[32], d[16];
    for (int round = 0; round < 2; round++) {
        rng = 42;
        assert_int_equal(nh_db_batch_begin(db, &err), NH_OK);
        for (int i = 0; i < 3000; i++) {
            for (int b = 0; b < 32; b++)
                h[b] = (uint8_t)rnd();
            for (int b = 0; b < 16; b++)
                d[b] = (uint8_t)rnd();
            char src[32];
            snprintf(src, sizeof src, "/data/%d.jpg", i);
            nh_db_entry e = {.kind = neural,
                             .hash = h,
                             .digest = d,
                             .quality = -1,
                             .source = src,
                             .label = "csam",
                             .note = "n"};
            assert_int_equal(nh_db_add(db, &e, &err), NH_OK);
            assert_int_equal(nh_db_add(db, &e, &err), NH_OK); /* same batch: once */
            e.kind = other;                                   /* another model: another kind */
            assert_int_equal(nh_db_add(db, &e, &err), NH_OK);
            e.kind = pdq;
            e.quality = 90;
            assert_int_equal(nh_db_add(db, &e, &err), NH_OK);
            e.kind = dig;
            e.quality = -1;
            e.hash = d;
            assert_int_equal(nh_db_add(db, &e, &err), NH_OK);
            e.source = "elsewhere"; /* another source: a new entry */
            e.kind = neural;
            e.hash = h;
            assert_int_equal(nh_db_add(db, &e, &err), NH_OK);
        }
        int present = 0;
        assert_int_equal(nh_db_has_digest(db, d, &present, &err), NH_OK);
        assert_true(present); /* seen in the open batch */
        uint64_t a = 0, s = 0;
        if (nh_db_batch_commit(db, &a, &s, &err))
            fail_msg("commit: %s", err.msg);
        assert_int_equal(a, round == 0 ? 15000 : 0);
        assert_int_equal(s, round == 0 ? 3000 : 18000);
    }
    int present = 1;
    assert_int_equal(nh_db_has_digest(db, d, &present, &err), NH_OK);
    assert_true(present);
    uint8_t absent[16] = {1, 2, 3};
    assert_int_equal(nh_db_has_digest(db, absent, &present, &err), NH_OK);
    assert_false(present);
    nh_db_stats st;
    assert_int_equal(nh_db_stats_get(db, &st, &err), NH_OK);
    assert_int_equal(st.entries, 15000);
    assert_int_equal(st.n_kinds, 4);
    assert_true(st.mapsize > (256u << 10));
    /* digest rows: 4 entries carry d, the digest entry's hash is d too (one row) */
    assert_int_equal(st.digests, 3000 * 5);

    /* an exact digest query finds only the digest kind's entry */
    nh_db_reader *rd = NULL;
    assert_int_equal(nh_db_reader_create(db, &rd, &err), NH_OK);
    nh_db_query_opts qo = {0};
    const nh_db_match *m;
    size_t n;
    assert_int_equal(nh_db_query(rd, &dig, d, &qo, &m, &n, &err), NH_OK);
    assert_int_equal(n, 1);
    nh_db_record rec;
    assert_int_equal(nh_db_reader_get(rd, m[0].id, &rec, &err), NH_OK);
    assert_int_equal(rec.kind.type, NH_KIND_DIGEST);
    assert_string_equal(rec.source, "/data/2999.jpg");
    assert_string_equal(rec.label, "csam");
    /* a reader of this process blocks remapping: a commit that needs more map fails cleanly */
    assert_int_equal(nh_db_batch_begin(db, &err), NH_OK);
    static char big[60000];
    memset(big, 'x', sizeof big - 1);
    for (int i = 0; i < 2000; i++) {
        for (int b = 0; b < 32; b++)
            h[b] = (uint8_t)rnd();
        nh_db_entry e = {.kind = pdq, .hash = h, .quality = -1, .source = "big", .note = big};
        assert_int_equal(nh_db_add(db, &e, &err), NH_OK);
    }
    assert_int_equal(nh_db_batch_commit(db, NULL, NULL, &err), NH_ERR_DB);
    nh_db_reader_destroy(rd);
    assert_int_equal(nh_db_stats_get(db, &st, &err), NH_OK);
    assert_int_equal(st.entries, 15000);
    nh_db_close(db);
    assert_verified(t.path);
    assert_int_equal(mdb_stat_rows(t.path, "entries"), 15000);
    /* neural kinds have 4 MIH postings per entry, PDQ 12; every run here is a header and
     * one part in the run table (as LMDB's mdb_stat counts it), and each of the 4 kinds has
     * its dedupe runs there too */
    assert_int_equal(st.mih_rows, 4 * 9000 + 12 * 3000);
    assert_true(st.dedupe_runs >= 4);
    assert_int_equal(mdb_stat_rows(t.path, "mihrun"), (long)(2 * (st.mih_runs + st.dedupe_runs)));
    assert_int_equal(mdb_stat_rows(t.path, "dedupe"), -1); /* schema 1's table */
    tdir_remove(&t);
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Different entries whose dedupe keys share their top 32 bits (the values the dedupe runs
 * keep) are all kept, across batches, and adding them all again adds nothing. */
static void test_dedupe_key_collisions(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    nh_error err = {0};
    nh_db *db = NULL;
    hashset s;
    rng = 7;
    gen_set(&s, 12, 200000, 0);
    /* the key nhdb uses (docs/nhdb.md): XXH3-64 of the source seeded with XXH3-64 of the hash;
     * fill_db's sources are "src/<index>" */
    uint32_t *top = malloc(s.n * sizeof *top);
    assert_non_null(top);
    for (size_t i = 0; i < s.n; i++) {
        char src[32];
        snprintf(src, sizeof src, "src/%zu", i);
        top[i] = (uint32_t)(XXH3_64bits_withSeed(src, strlen(src), XXH3_64bits(s.h + i * 12, 12)) >>
                            32);
    }
    qsort(top, s.n, sizeof *top, u32_cmp);
    size_t pairs = 0;
    for (size_t i = 1; i < s.n; i++)
        pairs += top[i] == top[i - 1];
    free(top);
    assert_true(pairs >= 1); /* about 200000^2 / 2^33 = 4.7 expected */
    nh_kind kind = {.type = NH_KIND_NEURAL};
    assert_int_equal(nh_db_open(t.path, NH_DB_OPEN_CREATE | NH_DB_OPEN_NOSYNC, NULL, &db, &err),
                     NH_OK);
    fill_db(db, &kind, &s, 70000);
    nh_db_stats st;
    assert_int_equal(nh_db_stats_get(db, &st, &err), NH_OK);
    assert_int_equal(st.entries, s.n);
    fill_db(db, &kind, &s, 200000); /* all again, in one batch */
    assert_int_equal(nh_db_stats_get(db, &st, &err), NH_OK);
    assert_int_equal(st.entries, s.n);
    nh_db_close(db);
    assert_verified(t.path);
    free(s.h);
    tdir_remove(&t);
}

/* verify notices a wrong MIH posting and a missing run header, written behind libnhdb's
 * back. */
static void test_verify_detects_damage(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    nh_error err = {0};
    nh_db *db = NULL;
    hashset s;
    gen_set(&s, 12, 500, 1);
    nh_kind kind = {.type = NH_KIND_NEURAL};
    assert_int_equal(nh_db_open(t.path, NH_DB_OPEN_CREATE, NULL, &db, &err), NH_OK);
    fill_db(db, &kind, &s, 1000);
    nh_db_close(db);
    assert_verified(t.path);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *c;
    MDB_val k, v;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, t.path, 0, 0664), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "mihrun", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    /* 1: the lowest value bit of one posting of substring 0 flipped in place */
    assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0); /* kind 1, s 0, run 0 header */
    assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_NEXT), 0);  /* its postings */
    assert_int_equal(v.mv_size, 500 * 8 + 8); /* and the checksum (schema 3) */
    uint8_t *copy = malloc(v.mv_size);
    assert_non_null(copy);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[10 * 8 + 5] ^= 1; /* byte 5 of the u64 LE: bit 40, the value's lowest kept bit */
    MDB_val nv = {v.mv_size, copy};
    assert_int_equal(mdb_cursor_put(c, &k, &nv, MDB_CURRENT), 0);
    free(copy);
    mdb_cursor_close(c);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    uint64_t problems = 0;
    assert_int_equal(nh_db_open(t.path, NH_DB_OPEN_READONLY, NULL, &db, &err), NH_OK);
    assert_int_equal(nh_db_verify(db, &problems, &err), NH_ERR_FORMAT);
    assert_true(problems >= 1);
    assert_non_null(strstr(err.msg, "MIH list 0"));
    nh_db_close(db);
    assert_int_equal(run_nhdb(NULL, NULL, "verify", t.path, NULL), 1);

    /* 2: a run's header deleted */
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
    assert_int_equal(mdb_env_open(env, t.path, 0, 0664), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "mihrun", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    assert_int_equal(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
    assert_int_equal(mdb_cursor_del(c, 0), 0);
    mdb_cursor_close(c);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    assert_int_equal(nh_db_open(t.path, NH_DB_OPEN_READONLY, NULL, &db, &err), NH_OK);
    assert_int_equal(nh_db_verify(db, &problems, &err), NH_ERR_FORMAT);
    assert_true(problems >= 2); /* the damaged runs and the table total */
    assert_non_null(strstr(err.msg, "MIH"));
    nh_db_close(db);
    assert_int_equal(run_nhdb(NULL, NULL, "verify", t.path, NULL), 1);
    free(s.h);
    tdir_remove(&t);
}

/* Rewrite every value of the tables nhdb seals, behind libnhdb's back: mode 0 strips the
 * 8-byte checksums and writes a 16-byte schema-2 record (what nhdb wrote before schema 3);
 * mode 1 flips one payload byte of the `which`-th value of `table` (its checksum kept). */
static void rewrite_values(const char *dir, int mode, const char *table, int which)
{
    static const char *const tables[] = {"meta", "entries", "mihrun", "packed", "occupancy"};
    MDB_env *env;
    MDB_txn *txn;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 10), 0);
    assert_int_equal(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0664), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    for (size_t t = 0; t < 5; t++) {
        if (mode == 1 && strcmp(tables[t], table) != 0)
            continue;
        MDB_dbi dbi;
        MDB_cursor *c;
        MDB_val k, v;
        assert_int_equal(mdb_dbi_open(txn, tables[t], 0, &dbi), 0);
        assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
        size_t n = 0, cap = 0;
        MDB_val *keys = NULL, *vals = NULL;
        for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                keys = realloc(keys, cap * sizeof *keys);
                vals = realloc(vals, cap * sizeof *vals);
                assert_true(keys && vals);
            }
            keys[n].mv_size = k.mv_size;
            keys[n].mv_data = malloc(k.mv_size);
            vals[n].mv_size = v.mv_size;
            vals[n].mv_data = malloc(v.mv_size);
            memcpy(keys[n].mv_data, k.mv_data, k.mv_size);
            memcpy(vals[n].mv_data, v.mv_data, v.mv_size);
            n++;
        }
        mdb_cursor_close(c);
        for (size_t i = 0; i < n; i++) {
            uint8_t *p = vals[i].mv_data;
            int put = 1;
            if (mode == 0) {
                assert_true(vals[i].mv_size > 8);
                vals[i].mv_size -= 8;
                if (keys[i].mv_size == 6 && memcmp(keys[i].mv_data, "schema", 6) == 0) {
                    assert_int_equal(vals[i].mv_size, 16);
                    p[4] = 2;
                }
            } else if ((int)i == which) {
                p[vals[i].mv_size / 2 - 1] ^= 0x10; /* inside the payload */
            } else {
                put = 0;
            }
            if (put)
                assert_int_equal(mdb_put(txn, dbi, &keys[i], &vals[i], 0), 0);
            free(keys[i].mv_data);
            free(vals[i].mv_data);
        }
        free(keys);
        free(vals);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A small set of every kind, with a progress record, in two commits. */
static void small_set(const char *dir, uint64_t seed)
{
    nh_db *db = NULL;
    nh_error err = {0};
    uint64_t save = rng;
    rng = seed;
    assert_int_equal(nh_db_open(dir, NH_DB_OPEN_CREATE | NH_DB_OPEN_NOSYNC, NULL, &db, &err),
                     NH_OK);
    const nh_kind kinds[3] = {nh_kind_of(NH_KIND_NEURAL), nh_kind_of(NH_KIND_PDQ),
                              nh_kind_of(NH_KIND_DIGEST)};
    for (int b = 0; b < 2; b++) {
        assert_int_equal(nh_db_batch_begin(db, &err), NH_OK);
        for (int i = 0; i < 300; i++) {
            uint8_t h[32], d[16];
            char src[32];
            for (int j = 0; j < 32; j++)
                h[j] = (uint8_t)rnd();
            for (int j = 0; j < 16; j++)
                d[j] = (uint8_t)rnd();
            snprintf(src, sizeof src, "f/%d/%d", b, i);
            nh_db_entry e = {.kind = kinds[i % 3], .hash = h, .digest = i % 2 ? d : NULL,
                             .quality = i % 3 == 1 ? i % 101 : -1, .source = src,
                             .label = "lab", .note = "a note", .added = 1000 + i};
            assert_int_equal(nh_db_add(db, &e, &err), NH_OK);
        }
        assert_int_equal(nh_db_batch_set_progress(db, "job", "0123456789", 10, &err), NH_OK);
        uint64_t added = 0;
        assert_int_equal(nh_db_batch_commit(db, &added, NULL, &err), NH_OK);
        assert_int_equal(added, 300);
    }
    nh_db_close(db);
    rng = save;
}

static unsigned schema_of(const char *dir)
{
    nh_db *db = NULL;
    nh_error err = {0};
    nh_db_stats st;
    if (nh_db_open(dir, NH_DB_OPEN_READONLY, NULL, &db, &err))
        fail_msg("open %s: %s", dir, err.msg);
    assert_int_equal(nh_db_stats_get(db, &st, &err), NH_OK);
    nh_db_close(db);
    return st.schema_version;
}

/* A payload byte changed in one value of each sealed table (the checksum left as it was) is
 * a verify problem naming the checksum, and an entry record so damaged is refused where a
 * reader reads it. */
static void test_checksums_detect_damage(void **state)
{
    (void)state;
    static const struct {
        const char *table;
        int which;
    } cases[] = {{"meta", 0},   {"meta", 3},   {"entries", 17},  {"mihrun", 5},
                 {"packed", 1}, {"mihrun", 0}, {"occupancy", 2}, {"meta", 4}};
    tdir t;
    tdir_make(&t);
    char db[300], cmd[800], errf[300];
    path_in(errf, sizeof errf, &t, "err.txt");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        path_in(db, sizeof db, &t, "set");
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", db);
        assert_int_equal(system(cmd), 0);
        small_set(db, 0x1234567u);
        assert_verified(db);
        assert_int_equal(schema_of(db), NH_DB_SCHEMA_VERSION);
        rewrite_values(db, 1, cases[i].table, cases[i].which);
        /* the CLI: verify reports it, by the first problem it meets (a changed posting may be
         * out of order before its checksum is read; meta row 4, the schema record, already
         * fails the open); a label byte or the progress record only their checksum shows */
        int rc = run_nhdb(NULL, errf, "verify", db, NULL);
        char *e = slurp(errf, NULL);
        int only_sum = strcmp(cases[i].table, "entries") == 0 ||
                       (strcmp(cases[i].table, "meta") == 0 && cases[i].which == 3);
        if (rc != 1 || (only_sum && !strstr(e, "checksum")))
            fail_msg("%s row %d: verify %d: %s", cases[i].table, cases[i].which, rc, e);
        free(e);
    }
    /* an entry record: nh_db_reader_get and export refuse it */
    nh_db *d = NULL;
    nh_error err = {0};
    nh_db_reader *rd = NULL;
    nh_db_record r;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", db);
    assert_int_equal(system(cmd), 0);
    small_set(db, 0x1234567u);
    rewrite_values(db, 1, "entries", 0); /* the first: neural ordinal 0 */
    assert_int_equal(nh_db_open(db, NH_DB_OPEN_READONLY, NULL, &d, &err), NH_OK);
    assert_int_equal(nh_db_reader_create(d, &rd, &err), NH_OK);
    assert_int_equal(nh_db_reader_get(rd, (uint64_t)1 << 40, &r, &err), NH_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "checksum"));
    assert_int_equal(nh_db_reader_get(rd, (uint64_t)1 << 40 | 1, &r, &err), NH_OK);
    nh_db_reader_destroy(rd);
    nh_db_close(d);
    assert_int_equal(run_nhdb(NULL, NULL, "export", db, NULL), 1);
    tdir_remove(&t);
}

/* A schema-2 set (schema 3 without its checksums) opens read-only and for writing, verifies
 * with a note, takes new batches as schema 2, and `nhdb upgrade` gives it checksums with the
 * same content. */
static void test_schema2_sets(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char db[300], out[300], a[300], b[300];
    path_in(db, sizeof db, &t, "set");
    path_in(out, sizeof out, &t, "out.txt");
    path_in(a, sizeof a, &t, "a.jsonl");
    path_in(b, sizeof b, &t, "b.jsonl");
    small_set(db, 0x7654321u);
    rewrite_values(db, 0, NULL, 0);
    assert_int_equal(schema_of(db), 2);
    assert_verified(db);
    assert_int_equal(run_nhdb(out, NULL, "verify", db, NULL), 0);
    char *o = slurp(out, NULL);
    assert_non_null(strstr(o, "no checksums"));
    assert_non_null(strstr(o, "nhdb upgrade"));
    free(o);
    /* reads: every entry by id, and a query that finds it */
    nh_db *d = NULL;
    nh_error err = {0};
    nh_db_reader *rd = NULL;
    assert_int_equal(nh_db_open(db, NH_DB_OPEN_READONLY, NULL, &d, &err), NH_OK);
    assert_int_equal(nh_db_reader_create(d, &rd, &err), NH_OK);
    nh_db_record r;
    assert_int_equal(nh_db_reader_get(rd, (uint64_t)2 << 40 | 7, &r, &err), NH_OK);
    uint8_t q[32];
    memcpy(q, r.hash, 32);
    nh_kind pdq = nh_kind_of(NH_KIND_PDQ);
    nh_db_query_opts qo = {.radius = 10, .method = NH_DB_METHOD_MIH};
    const nh_db_match *m;
    size_t n;
    assert_int_equal(nh_db_query(rd, &pdq, q, &qo, &m, &n, &err), NH_OK);
    assert_true(n >= 1);
    assert_int_equal(m[0].id, (uint64_t)2 << 40 | 7);
    nh_db_reader_destroy(rd);
    nh_db_close(d);
    char pr[32];
    size_t pn = 0;
    assert_int_equal(nh_db_open(db, 0, NULL, &d, &err), NH_OK);
    assert_int_equal(nh_db_get_progress(d, "job", pr, sizeof pr, &pn, &err), NH_OK);
    assert_int_equal(pn, 10);
    assert_memory_equal(pr, "0123456789", 10);
    /* a write keeps schema 2 */
    assert_int_equal(nh_db_batch_begin(d, &err), NH_OK);
    uint8_t h[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    nh_db_entry e = {.kind = nh_kind_of(NH_KIND_NEURAL), .hash = h, .quality = -1,
                     .source = "late", .added = 5};
    assert_int_equal(nh_db_add(d, &e, &err), NH_OK);
    assert_int_equal(nh_db_batch_commit(d, NULL, NULL, &err), NH_OK);
    nh_db_close(d);
    assert_int_equal(schema_of(db), 2);
    assert_verified(db);
    assert_int_equal(run_nhdb(a, NULL, "export", db, "--format", "jsonl", NULL), 0);
    /* upgrade: checksums, same content, and then damage is seen */
    assert_int_equal(run_nhdb(NULL, NULL, "upgrade", db, NULL), 0);
    assert_int_equal(schema_of(db), NH_DB_SCHEMA_VERSION);
    assert_verified(db);
    assert_int_equal(run_nhdb(out, NULL, "verify", db, NULL), 0);
    o = slurp(out, NULL);
    assert_non_null(strstr(o, "every checksum matches"));
    free(o);
    assert_int_equal(run_nhdb(b, NULL, "export", db, "--format", "jsonl", NULL), 0);
    assert_files_equal(a, b);
    assert_int_equal(run_nhdb(NULL, NULL, "upgrade", db, NULL), 0); /* nothing left to do */
    rewrite_values(db, 1, "packed", 0);
    assert_int_equal(run_nhdb(NULL, NULL, "verify", db, NULL), 1);
    tdir_remove(&t);
}

/* A schema-1 database (tests/data/nhdb/make_v1_fixture.sh: written by nhdb as of commit
 * 191b967) is refused read-only with a pointer to `nhdb upgrade`, upgrades in place, and then
 * holds exactly what a fresh import of the same file holds, with MIH answers equal to the
 * scan's. */
static void test_upgrade_v1(void **state)
{
    (void)state;
    const char *fx = getenv("NH_FIXTURE_DIR");
    assert_non_null(fx);
    tdir t;
    tdir_make(&t);
    char db[300], fresh[300], a[300], b[300], jsonl[400], cmd[1200];
    path_in(db, sizeof db, &t, "v1");
    path_in(fresh, sizeof fresh, &t, "fresh");
    path_in(a, sizeof a, &t, "a.jsonl");
    path_in(b, sizeof b, &t, "b.jsonl");
    snprintf(jsonl, sizeof jsonl, "%s/nhdb/v1.jsonl", fx);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/nhdb/v1/data.mdb' '%s/'", db, fx, db);
    assert_int_equal(system(cmd), 0);

    nh_error err = {0};
    nh_db *d = NULL;
    assert_int_equal(nh_db_open(db, NH_DB_OPEN_READONLY, NULL, &d, &err), NH_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "nhdb upgrade"));
    /* a set query cannot open: 2, as `nhash audit` */
    assert_int_equal(run_nhdb(NULL, NULL, "query", db, "--kind", "pdq",
                              "0000000000000000000000000000000000000000000000000000000000000000",
                              NULL),
                     2);
    assert_int_equal(run_nhdb(NULL, NULL, "upgrade", db, NULL), 0);
    assert_verified(db);
    assert_int_equal(run_nhdb(NULL, NULL, "upgrade", db, NULL), 0); /* nothing left to do */

    nh_db_stats st;
    assert_int_equal(nh_db_open(db, NH_DB_OPEN_READONLY, NULL, &d, &err), NH_OK);
    assert_int_equal(nh_db_stats_get(d, &st, &err), NH_OK);
    assert_int_equal(st.schema_version, NH_DB_SCHEMA_VERSION); /* 1 -> 2 -> 3 */
    assert_int_equal(st.entries, 800);
    assert_int_equal(st.mih_rows, 600 * 6 + 200 * 16);
    assert_int_equal(mdb_stat_rows(db, "mih"), -1); /* the schema-1 tables are gone */
    assert_int_equal(mdb_stat_rows(db, "dedupe"), -1);
    assert_int_equal(st.dedupe_runs, 2);

    /* every stored hash as a query: MIH == scan at radii 0..12 */
    nh_db_reader *rd = NULL;
    assert_int_equal(nh_db_reader_create(d, &rd, &err), NH_OK);
    for (size_t ki = 0; ki < st.n_kinds; ki++) {
        nh_kind kind = st.kinds[ki].kind;
        for (uint64_t o = 0; o < st.kinds[ki].count; o += 7) {
            nh_db_record rec;
            uint64_t id = (uint64_t)st.kinds[ki].kind_id << 40 | o;
            assert_int_equal(nh_db_reader_get(rd, id, &rec, &err), NH_OK);
            uint8_t q[32];
            memcpy(q, rec.hash, rec.bits / 8);
            for (unsigned r = 0; r <= 12; r += 3) {
                nh_db_query_opts ql = {.radius = r, .method = NH_DB_METHOD_LINEAR};
                nh_db_query_opts qm = {.radius = r, .method = NH_DB_METHOD_MIH};
                const nh_db_match *ml, *mm;
                size_t nl, nm;
                assert_int_equal(nh_db_query(rd, &kind, q, &ql, &ml, &nl, &err), NH_OK);
                nh_db_match *copy = malloc((nl + 1) * sizeof *copy);
                assert_non_null(copy);
                memcpy(copy, ml, nl * sizeof *copy);
                assert_int_equal(nh_db_query(rd, &kind, q, &qm, &mm, &nm, &err), NH_OK);
                assert_int_equal(nm, nl);
                assert_true(nl >= 1);
                for (size_t i = 0; i < nl; i++) {
                    assert_int_equal(mm[i].id, copy[i].id);
                    assert_int_equal(mm[i].distance, copy[i].distance);
                }
                free(copy);
            }
        }
    }
    nh_db_reader_destroy(rd);
    nh_db_close(d);

    /* same content as a fresh import of the file the fixture was made from */
    assert_int_equal(run_nhdb(NULL, NULL, "create", fresh, "--neural-substrings", "6",
                              "--pdq-substrings", "16", NULL),
                     0);
    assert_int_equal(run_nhdb(NULL, NULL, "import", fresh, jsonl, NULL), 0);
    assert_int_equal(run_nhdb(a, NULL, "export", db, "--format", "jsonl", NULL), 0);
    assert_int_equal(run_nhdb(b, NULL, "export", fresh, "--format", "jsonl", NULL), 0);
    assert_files_equal(a, b);
    tdir_remove(&t);
}

/* ---- the CLI: round trips, malformed lines, merge ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void write_bytes(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void assert_contains(const char *file, const char *needle)
{
    char *e = slurp(file, NULL);
    if (!strstr(e, needle))
        fail_msg("%s lacks \"%s\": %.400s", file, needle, e);
    free(e);
}

static void assert_lacks(const char *file, const char *needle)
{
    char *e = slurp(file, NULL);
    if (strstr(e, needle))
        fail_msg("%s holds \"%s\": %.400s", file, needle, e);
    free(e);
}

static void write_neural_list(const char *path, size_t n, size_t first, const char *prefix)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = first; i < first + n; i++) {
        uint64_t a = rnd();
        uint32_t b = (uint32_t)rnd();
        fprintf(f, "%016llx%08x %s%zu.jpg\n", (unsigned long long)a, b, prefix, i);
    }
    fclose(f);
}

/* Neural lists of 64, 128 and 256 bits (16, 32, 64 hex digits) beside a 96-bit one: the
 * width is the hash's length, each width its own kind, export gives the same bytes back,
 * jsonl re-imports to the same sets, query finds each width by its length. */
static void write_neural_list_w(const char *path, size_t n, unsigned hb, const char *prefix)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        for (unsigned b = 0; b < hb; b++)
            fprintf(f, "%02x", (unsigned)(rnd() & 0xff));
        fprintf(f, " %s%zu.jpg\n", prefix, i);
    }
    fclose(f);
}

static void test_cli_neural_widths(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char db[300], db2[300], in[300], out[300], out2[300], errf[300], name[32];
    path_in(db, sizeof db, &t, "db");
    path_in(db2, sizeof db2, &t, "db2");
    path_in(errf, sizeof errf, &t, "err");
    static const unsigned widths[] = {12, 8, 16, 32}; /* bytes: 96, 64, 128, 256 bits */
    rng = 11;
    for (int w = 0; w < 4; w++) {
        snprintf(name, sizeof name, "n%u.txt", widths[w]);
        path_in(in, sizeof in, &t, name);
        write_neural_list_w(in, 400, widths[w], "/w/");
        /* auto-detected as a neural list, one model for all widths */
        if (run_nhdb(NULL, errf, "import", db, in, "--model", "0123456789abcdef", NULL) != 0)
            fail_msg("import %s: %s", name, slurp(errf, NULL));
    }
    assert_verified(db);
    nh_error err = {0};
    nh_db *d = NULL;
    nh_db_stats st;
    assert_int_equal(nh_db_open(db, NH_DB_OPEN_READONLY, NULL, &d, &err), NH_OK);
    assert_int_equal(nh_db_stats_get(d, &st, &err), NH_OK);
    assert_int_equal(st.n_kinds, 4);
    for (int w = 0; w < 4; w++) {
        assert_int_equal(st.kinds[w].bits, 8 * widths[w]);
        assert_int_equal(st.kinds[w].count, 400);
    }
    nh_db_close(d);
    /* stats names each width */
    path_in(out, sizeof out, &t, "stats");
    assert_int_equal(run_nhdb(out, errf, "stats", db, NULL), 0);
    char *txt = slurp(out, NULL);
    assert_non_null(strstr(txt, "400 entries, 64 bits, 3 substrings"));
    assert_non_null(strstr(txt, "400 entries, 96 bits, 4 substrings"));
    assert_non_null(strstr(txt, "400 entries, 128 bits, 5 substrings"));
    assert_non_null(strstr(txt, "400 entries, 256 bits, 11 substrings"));
    free(txt);
    /* export (insertion order, kind by kind) is the four lists concatenated */
    path_in(out, sizeof out, &t, "n.out");
    path_in(out2, sizeof out2, &t, "n.cat");
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "cd '%s' && cat n12.txt n8.txt n16.txt n32.txt > n.cat", t.path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(run_nhdb(out, errf, "export", db, "--format", "neural", NULL), 0);
    assert_files_equal(out, out2);
    /* jsonl round trip into a new set: the same export */
    path_in(in, sizeof in, &t, "all.jsonl");
    assert_int_equal(run_nhdb(in, errf, "export", db, NULL), 0);
    assert_int_equal(run_nhdb(NULL, errf, "import", db2, in, NULL), 0);
    path_in(out2, sizeof out2, &t, "all2.jsonl");
    assert_int_equal(run_nhdb(out2, errf, "export", db2, NULL), 0);
    assert_files_equal(in, out2);
    /* query: the first line of each list finds itself at distance 0 (32 and 64 digits are
     * neural here: the set holds no digest or PDQ entries) */
    for (int w = 0; w < 4; w++) {
        snprintf(name, sizeof name, "n%u.txt", widths[w]);
        path_in(in, sizeof in, &t, name);
        char *list = slurp(in, NULL);
        char hex[80];
        memcpy(hex, list, 2 * widths[w]);
        hex[2 * widths[w]] = 0;
        free(list);
        path_in(out, sizeof out, &t, "q.out");
        assert_int_equal(run_nhdb(out, errf, "query", db, hex, NULL), 0);
        char *q = slurp(out, NULL);
        char want[200];
        snprintf(want, sizeof want, "%s\t0\t%s\t/w/0.jpg\t", hex, hex);
        if (strncmp(q, want, strlen(want)) != 0)
            fail_msg("query %s: %s", hex, q);
        free(q);
    }
    /* a PDQ entry makes 64 digits PDQ again unless --model or --kind neural says otherwise */
    path_in(in, sizeof in, &t, "n32.txt");
    char *list = slurp(in, NULL);
    char hex[80];
    memcpy(hex, list, 64);
    hex[64] = 0;
    free(list);
    path_in(in, sizeof in, &t, "p.csv");
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fprintf(f, "%s,90,pdq.jpg\n", hex);
    fclose(f);
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, NULL), 0);
    path_in(out, sizeof out, &t, "q.out");
    assert_int_equal(run_nhdb(out, errf, "query", db, hex, NULL), 0);
    txt = slurp(out, NULL);
    assert_non_null(strstr(txt, "\tpdq.jpg\t"));
    assert_null(strstr(txt, "/w/0.jpg"));
    free(txt);
    assert_int_equal(run_nhdb(out, errf, "query", db, "--kind", "neural", hex, NULL), 0);
    txt = slurp(out, NULL);
    assert_non_null(strstr(txt, "/w/0.jpg"));
    assert_null(strstr(txt, "pdq.jpg"));
    free(txt);
    assert_int_equal(run_nhdb(out, errf, "query", db, "--model", "0123456789abcdef", hex, NULL), 0);
    txt = slurp(out, NULL);
    assert_non_null(strstr(txt, "/w/0.jpg"));
    free(txt);
    /* a neural list line of a width that is not whole bytes or over 1024 bits is refused */
    path_in(in, sizeof in, &t, "bad.txt");
    write_file(in, "0123456789abcdef01234 x.jpg\n");
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--format", "neural", "--model",
                              "0123456789abcdef", NULL), 1);
    tdir_remove(&t);
}

static void test_cli_round_trips(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char db[300], db2[300], in[300], out[300], out2[300], errf[300];
    path_in(db, sizeof db, &t, "db");
    path_in(db2, sizeof db2, &t, "db2");
    path_in(errf, sizeof errf, &t, "err");
    assert_int_equal(run_nhdb(NULL, NULL, "create", db, NULL), 0);

    /* NeuralHash list: export gives the same bytes back */
    path_in(in, sizeof in, &t, "n.txt");
    path_in(out, sizeof out, &t, "n.out");
    rng = 7;
    write_neural_list(in, 3000, 0, "/photos/a b/");
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--model", "0123456789abcdef", NULL),
                     0);
    assert_int_equal(run_nhdb(out, errf, "export", db, "--format", "neural", NULL), 0);
    assert_files_equal(in, out);

    /* PDQ CSV as pdq-photo-hasher writes it (filenames may hold commas) */
    path_in(in, sizeof in, &t, "p.csv");
    path_in(out, sizeof out, &t, "p.out");
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    for (int i = 0; i < 500; i++) {
        fprintf(f, "%016llx%016llx%016llx%016llx,%d,/x/%d,with comma.jpg\n",
                (unsigned long long)rnd(), (unsigned long long)rnd(), (unsigned long long)rnd(),
                (unsigned long long)rnd(), (int)(rnd() % 101), i);
    }
    fclose(f);
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, NULL), 0);
    assert_int_equal(run_nhdb(out, errf, "export", db, "--format", "pdq", NULL), 0);
    assert_files_equal(in, out);

    /* JSONL with every field, escapes and non-ASCII */
    path_in(in, sizeof in, &t, "m.jsonl");
    write_file(in,
               "{\"kind\":\"digest\",\"hash\":\"00112233445566778899aabbccddeeff\",\"source\":"
               "\"s1\",\"label\":\"l\",\"note\":\"quote \\\" backslash \\\\ tab\\t nl\\n "
               "\\u00e9\\ud83d\\ude00\",\"added\":1700000000}\n"
               "{\"kind\":\"neural\",\"model\":\"0123456789abcdef\",\"hash\":"
               "\"74afaa222cbf971c26dd40cb\",\"digest\":\"ffeeddccbbaa99887766554433221100\","
               "\"source\":\"a,b \\\"c\\\"\",\"label\":\"cat\",\"note\":\"\",\"added\":5}\n"
               "{\"kind\":\"pdq\",\"hash\":\""
               "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
               "\",\"quality\":77,\"source\":\"p\",\"label\":\"\",\"note\":\"x\",\"added\":6}\n");
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, NULL), 0);
    assert_int_equal(db_count(db), 3503);

    /* all formats: jsonl and csv exports re-import to the same database content */
    path_in(out, sizeof out, &t, "all.jsonl");
    path_in(out2, sizeof out2, &t, "all.csv");
    assert_int_equal(run_nhdb(out, errf, "export", db, NULL), 0);
    assert_int_equal(run_nhdb(out2, errf, "export", db, "--format", "csv", NULL), 0);
    char *j = slurp(out, NULL);
    assert_non_null(strstr(j, "\xc3\xa9\xf0\x9f\x98\x80"));
    assert_non_null(strstr(j, "\"note\":\"quote \\\" backslash \\\\ tab\\t nl\\n"));
    free(j);
    char again[300];
    path_in(again, sizeof again, &t, "again.jsonl");
    assert_int_equal(run_nhdb(NULL, errf, "import", db2, out2, NULL), 0);
    assert_int_equal(run_nhdb(again, errf, "export", db2, NULL), 0);
    assert_files_equal(out, again);
    /* importing the same lists again adds nothing */
    assert_int_equal(run_nhdb(NULL, errf, "import", db2, out, NULL), 0);
    assert_int_equal(db_count(db2), 3503);
    assert_verified(db2);

    /* query, text and JSON */
    path_in(out, sizeof out, &t, "q.txt");
    assert_int_equal(
        run_nhdb(out, errf, "query", db, "--radius", "0", "74afaa222cbf971c26dd40cb", NULL), 0);
    j = slurp(out, NULL);
    assert_string_equal(j,
                        "74afaa222cbf971c26dd40cb\t0\t74afaa222cbf971c26dd40cb\ta,b \"c\"\tcat\n");
    free(j);
    assert_int_equal(
        run_nhdb(out, errf, "query", db, "--k", "1", "--json", "74afaa222cbf971c26dd40cc", NULL),
        0);
    j = slurp(out, NULL);
    assert_non_null(strstr(j, "\"distance\":3,\"hash\":\"74afaa222cbf971c26dd40cb\""));
    free(j);
    assert_int_equal(run_nhdb(out, errf, "stats", db, "--json", NULL), 0);
    j = slurp(out, NULL);
    assert_non_null(strstr(j, "\"entries\":3503"));
    free(j);
    static const char *cmds[] = {"create", "import", "export", "query", "stats", "merge", "verify"};
    for (int i = 0; i < 7; i++) {
        assert_int_equal(run_nhdb(out, errf, cmds[i], "--help", NULL), 0);
        j = slurp(out, NULL);
        assert_non_null(strstr(j, "usage: nhdb"));
        free(j);
    }
    tdir_remove(&t);
}

static void test_cli_malformed_line(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char db[300], in[300], errf[300];
    path_in(db, sizeof db, &t, "db");
    path_in(in, sizeof in, &t, "bad.txt");
    path_in(errf, sizeof errf, &t, "err");
    write_file(in, "74afaa222cbf971c26dd40cb a.jpg\n"
                   "# comment\n"
                   "\n"
                   "74afaa222cbf971c26dd40cz b.jpg\n"
                   "74afaa222cbf971c26dd40cd c.jpg\n");
    /* default: the whole file is rejected, the error names line 4 */
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--model", "0000000000000001", NULL),
                     1);
    char *e = slurp(errf, NULL);
    assert_non_null(strstr(e, "bad.txt:4:"));
    assert_non_null(strstr(e, "nothing imported"));
    free(e);
    assert_false(exists(db)); /* nor is the set it would have created left behind */
    /* --skip-bad: the rest goes in, the bad line is still reported, exit status 1 */
    assert_int_equal(
        run_nhdb(NULL, errf, "import", db, in, "--model", "0000000000000001", "--skip-bad", NULL),
        1);
    e = slurp(errf, NULL);
    assert_non_null(strstr(e, "bad.txt:4:"));
    free(e);
    assert_int_equal(db_count(db), 2);
    /* a CSV record spanning lines keeps the line count right */
    write_file(in,
               "kind,model,hash,digest,quality,source,label,note,added\n"
               "pdq,,f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,,50,\"two\n"
               "lines\",,,1\n"
               "pdq,,f8f8,,50,x,,,1\n");
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--format", "csv", NULL), 1);
    e = slurp(errf, NULL);
    assert_non_null(strstr(e, "bad.txt:4:"));
    free(e);
    /* a neural list needs its model */
    write_file(in, "74afaa222cbf971c26dd40cb a.jpg\n");
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, NULL), 1);
    assert_int_equal(db_count(db), 2);
    tdir_remove(&t);
}

static void test_cli_merge(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char a[300], b[300], m[300], la[300], lb[300], out[300], errf[300];
    path_in(a, sizeof a, &t, "a");
    path_in(b, sizeof b, &t, "b");
    path_in(m, sizeof m, &t, "merged");
    path_in(la, sizeof la, &t, "a.txt");
    path_in(lb, sizeof lb, &t, "b.txt");
    path_in(out, sizeof out, &t, "out");
    path_in(errf, sizeof errf, &t, "err");
    rng = 99;
    write_neural_list(la, 4000, 0, "/m/");
    FILE *f = fopen(lb, "w");
    assert_non_null(f);
    /* b: the second half of a plus 2000 new lines */
    char *text = slurp(la, NULL);
    char *half = text;
    for (int i = 0; i < 2000; i++)
        half = strchr(half, '\n') + 1;
    fputs(half, f);
    fclose(f);
    free(text);
    write_neural_list(out, 2000, 4000, "/m/");
    text = slurp(out, NULL);
    f = fopen(lb, "a");
    fputs(text, f);
    fclose(f);
    free(text);
    assert_int_equal(run_nhdb(NULL, errf, "import", a, la, "--model", "00000000000000aa", NULL), 0);
    assert_int_equal(run_nhdb(NULL, errf, "import", b, lb, "--model", "00000000000000aa", NULL), 0);
    assert_int_equal(run_nhdb(out, errf, "merge", m, a, b, "--json", NULL), 0);
    char *j = slurp(out, NULL);
    assert_string_equal(j, "{\"added\":6000,\"present\":2000}\n");
    free(j);
    assert_int_equal(db_count(m), 6000);
    assert_verified(m);
    /* merging again adds nothing */
    assert_int_equal(run_nhdb(out, errf, "merge", m, b, a, NULL), 0);
    assert_int_equal(db_count(m), 6000);
    /* a's entries come first, in order, with their fields */
    char ea[300];
    path_in(ea, sizeof ea, &t, "ea");
    assert_int_equal(run_nhdb(ea, errf, "export", a, "--format", "neural", NULL), 0);
    assert_int_equal(run_nhdb(out, errf, "export", m, "--format", "neural", NULL), 0);
    char *x = slurp(ea, NULL), *y = slurp(out, NULL);
    assert_int_equal(strncmp(x, y, strlen(x)), 0);
    free(x);
    free(y);
    tdir_remove(&t);
}

/* ---- hostile input and unlucky operators (issue 18) ---- */

/* A source over nh_db_add's 65,535 bytes in a later batch: the validation pass rejects the
 * file whole (nothing committed, and a set that did not exist is not left behind); with
 * --skip-bad the line is reported and skipped and the run goes on. 65,535 bytes pass. */
static void test_cli_long_string(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char db[300], in[300], one[300], errf[300];
    path_in(db, sizeof db, &t, "db");
    path_in(in, sizeof in, &t, "long.txt");
    path_in(one, sizeof one, &t, "one.txt");
    path_in(errf, sizeof errf, &t, "err");
    rng = 18;
    write_neural_list(in, 300, 0, "/a/");
    FILE *f = fopen(in, "a");
    assert_non_null(f);
    fprintf(f, "74afaa222cbf971c26dd40cb /");
    for (int i = 0; i < 70000; i++)
        putc('x', f);
    putc('\n', f);
    fclose(f);
    write_neural_list(one, 100, 300, "/a/");
    char *tail = slurp(one, NULL);
    f = fopen(in, "a");
    fputs(tail, f);
    fclose(f);
    free(tail);
    const char *model = "0000000000000001";
    assert_int_equal(
        run_nhdb(NULL, errf, "import", db, in, "--model", model, "--batch", "100", NULL), 1);
    assert_contains(errf, "long.txt:301: source is 70001 bytes, over the limit of 65535");
    assert_contains(errf, "nothing imported");
    assert_false(exists(db)); /* the failed import created the set: it is gone again */
    /* into an existing set: nothing of the file is committed */
    write_file(one, "74afaa222cbf971c26dd40cd one.jpg\n");
    assert_int_equal(run_nhdb(NULL, errf, "import", db, one, "--model", model, NULL), 0);
    assert_int_equal(
        run_nhdb(NULL, errf, "import", db, in, "--model", model, "--batch", "100", NULL), 1);
    assert_int_equal(db_count(db), 1);
    /* --skip-bad: reported, skipped, the other 400 lines imported (exit 1: a bad line) */
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--model", model, "--batch", "100",
                              "--skip-bad", NULL),
                     1);
    assert_contains(errf, "long.txt:301: source is 70001 bytes, over the limit of 65535 (skipped)");
    assert_int_equal(db_count(db), 401);
    assert_verified(db);
    /* the limit itself is accepted, in every string */
    f = fopen(one, "w");
    assert_non_null(f);
    fprintf(f, "74afaa222cbf971c26dd40ce /");
    for (int i = 0; i < 65534; i++)
        putc('y', f);
    putc('\n', f);
    fclose(f);
    assert_int_equal(run_nhdb(NULL, errf, "import", db, one, "--model", model, NULL), 0);
    assert_int_equal(db_count(db), 402);
    /* --label and --note over the limit are usage errors */
    char *big = malloc(65537);
    assert_non_null(big);
    memset(big, 'z', 65536);
    big[65536] = '\0';
    assert_int_equal(
        run_nhdb(NULL, errf, "import", db, one, "--model", model, "--label", big, NULL), 2);
    assert_contains(errf, "--label is 65536 bytes, over the limit of 65535");
    assert_int_equal(run_nhdb(NULL, errf, "import", db, one, "--model", model, "--note", big, NULL),
                     2);
    assert_contains(errf, "--note is 65536 bytes");
    free(big);
    assert_int_equal(db_count(db), 402);
    tdir_remove(&t);
}

/* A NUL byte inside a line (or a JSON "\u0000") is an error naming the line, in every
 * format, never a path cut short; --skip-bad skips it and imports the rest. */
static void test_cli_nul_in_line(void **state)
{
    (void)state;
    static const char neural[] = "74afaa222cbf971c26dd40cb a.jpg\n"
                                 "74afaa222cbf971c26dd40cc b.jpg\0.png\n";
    static const char pdq[] =
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,50,a.jpg\n"
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b23,50,b.jpg\0.png\n";
    static const char jsonl[] =
        "{\"kind\":\"pdq\",\"hash\":"
        "\"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22\","
        "\"source\":\"a2.jpg\"}\n"
        "{\"kind\":\"pdq\",\"hash\":"
        "\"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b23\","
        "\"source\":\"b.jpg\\u0000.png\"}\n"
        "{\"path\":\"b.jpg\\u0000.png\",\"xxh128\":\"000102030405060708090a0b0c0d0e0f\"}\n"
        "{\"kind\":\"pdq\",\"hash\":"
        "\"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b24\","
        "\"source\":\"b.jpg\0.png\"}\n"
        "{\"kind\":\"pdq\\u0000x\",\"hash\":"
        "\"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b25\","
        "\"source\":\"b.jpg\"}\n";
    static const char csv[] =
        "kind,model,hash,digest,quality,source,label,note,added\n"
        "pdq,,f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,,50,a3.jpg,,,1\n"
        "pdq,,f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b23,,50,b.jpg\0.png,,,"
        "1\n"
        "pdq,,f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b24,,50,c.jpg,,,"
        "1\0junk\n";
    static const struct {
        const char *name, *fmt, *data;
        size_t n;
        const char *errs[4];
    } cases[] = {
        {"nul.txt", "neural", neural, sizeof neural - 1, {"nul.txt:2: a NUL byte at column 31"}},
        {"nul.pdq", "pdq", pdq, sizeof pdq - 1, {"nul.pdq:2: a NUL byte at column 74"}},
        {"nul.jsonl",
         "jsonl",
         jsonl,
         sizeof jsonl - 1,
         {"nul.jsonl:2: source holds a NUL character", "nul.jsonl:3: path holds a NUL character",
          "nul.jsonl:4: a NUL byte at column", "nul.jsonl:5: kind holds a NUL character"}},
        {"nul.csv",
         "csv",
         csv,
         sizeof csv - 1,
         {"nul.csv:3: a NUL byte at column 80", "nul.csv:4: a NUL byte at column 84"}},
    };
    tdir t;
    tdir_make(&t);
    char db[300], in[300], errf[300], out[300];
    path_in(db, sizeof db, &t, "db");
    path_in(errf, sizeof errf, &t, "err");
    path_in(out, sizeof out, &t, "out");
    assert_int_equal(run_nhdb(NULL, errf, "create", db, NULL), 0);
    uint64_t count = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        path_in(in, sizeof in, &t, cases[i].name);
        write_bytes(in, cases[i].data, cases[i].n);
        /* by format and by sniffing */
        for (int sniff = 0; sniff < 2; sniff++) {
            assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--model", "0000000000000001",
                                      "--format", sniff ? "auto" : cases[i].fmt, NULL),
                             1);
            for (int k = 0; k < 4 && cases[i].errs[k]; k++)
                assert_contains(errf, cases[i].errs[k]);
            assert_contains(errf, "nothing imported");
            assert_int_equal(db_count(db), count);
        }
        assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--model", "0000000000000001",
                                  "--format", cases[i].fmt, "--skip-bad", NULL),
                         1);
        for (int k = 0; k < 4 && cases[i].errs[k]; k++)
            assert_contains(errf, cases[i].errs[k]);
        count += 1; /* the a*.jpg line only */
        assert_int_equal(db_count(db), count);
    }
    /* no entry carries a path cut at the NUL */
    assert_int_equal(run_nhdb(out, errf, "export", db, NULL), 0);
    assert_lacks(out, "b.jpg");
    assert_lacks(out, "c.jpg");
    tdir_remove(&t);
}

/* Numeric options take digits only, within their range: exit 2 and a message naming the
 * option, for garbage, negatives, exponents and overflow. */
static void test_cli_numeric_options(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char db[300], in[300], errf[300];
    path_in(db, sizeof db, &t, "db");
    path_in(in, sizeof in, &t, "in.txt");
    path_in(errf, sizeof errf, &t, "err");
    write_file(in, "74afaa222cbf971c26dd40cb a.jpg\n");
    static const char *const bad[] = {"-1",
                                      "1e9",
                                      "abc",
                                      "",
                                      " 5",
                                      "+5",
                                      "5x",
                                      "0x10",
                                      "18446744073709551616",
                                      "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--model", "0000000000000001",
                                  "--batch", bad[i], NULL),
                         2);
        assert_contains(errf, "nhdb: --batch takes an integer 1..100000000, not '");
        assert_int_equal(run_nhdb(NULL, errf, "create", db, "--neural-substrings", bad[i], NULL),
                         2);
        assert_contains(errf, "nhdb: --neural-substrings takes an integer 3..32");
        assert_int_equal(
            run_nhdb(NULL, errf, "query", db, "--radius", bad[i], "74afaa222cbf971c26dd40cb", NULL),
            2);
        assert_contains(errf, "nhdb: --radius takes an integer 0..1000000000");
        assert_int_equal(
            run_nhdb(NULL, errf, "query", db, "--k", bad[i], "74afaa222cbf971c26dd40cb", NULL), 2);
        assert_contains(errf, "nhdb: --k takes an integer");
    }
    /* out of range (0 used to take the default silently; 33 and 65 failed only at open) */
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--batch", "0", NULL), 2);
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--batch", "100000001", NULL), 2);
    assert_int_equal(run_nhdb(NULL, errf, "create", db, "--neural-substrings", "0", NULL), 2);
    assert_int_equal(run_nhdb(NULL, errf, "create", db, "--neural-substrings", "33", NULL), 2);
    assert_int_equal(run_nhdb(NULL, errf, "create", db, "--pdq-substrings", "7", NULL), 2);
    assert_int_equal(run_nhdb(NULL, errf, "create", db, "--pdq-substrings", "65", NULL), 2);
    assert_contains(errf, "nhdb: --pdq-substrings takes an integer 8..64, not '65'");
    assert_int_equal(
        run_nhdb(NULL, errf, "query", db, "--k", "1000000001", "74afaa222cbf971c26dd40cb", NULL),
        2);
    assert_false(exists(db)); /* no usage error created anything */
    /* the bounds themselves are accepted */
    assert_int_equal(run_nhdb(NULL, errf, "create", db, "--neural-substrings", "32",
                              "--pdq-substrings", "8", NULL),
                     0);
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--model", "0000000000000001",
                              "--batch", "100000000", NULL),
                     0);
    assert_int_equal(run_nhdb(NULL, errf, "query", db, "--radius", "0", "--k", "1000000000",
                              "74afaa222cbf971c26dd40cb", NULL),
                     0);
    tdir_remove(&t);
}

/* `nhdb query` on a set it cannot open exits 2, as `nhash audit` does (host/cli_audit.c). */
static void test_cli_query_missing_set(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char db[300], errf[300], file[300];
    path_in(db, sizeof db, &t, "none");
    path_in(errf, sizeof errf, &t, "err");
    path_in(file, sizeof file, &t, "file");
    assert_int_equal(run_nhdb(NULL, errf, "query", db, "74afaa222cbf971c26dd40cb", NULL), 2);
    assert_contains(errf, "no database");
    assert_false(exists(db));
    write_file(file, "not a set\n");
    assert_int_equal(run_nhdb(NULL, errf, "query", file, "74afaa222cbf971c26dd40cb", NULL), 2);
    tdir_remove(&t);
}

/* A failed import leaves no empty set behind where there was none; a directory that was
 * there stays (emptied of what the import made), and a set that existed stays as it was. */
static void test_cli_failed_import_no_empty_set(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char db[300], bad[300], mixed[300], good[300], errf[300], missing[300];
    path_in(db, sizeof db, &t, "db");
    path_in(bad, sizeof bad, &t, "bad.txt");
    path_in(mixed, sizeof mixed, &t, "mixed.txt");
    path_in(good, sizeof good, &t, "good.txt");
    path_in(errf, sizeof errf, &t, "err");
    path_in(missing, sizeof missing, &t, "missing.txt");
    write_file(bad, "74afaa222cbf971c26dd40cz a.jpg\n74afaa222cbf971c26dd40cy b.jpg\n");
    write_file(mixed, "74afaa222cbf971c26dd40cz a.jpg\n74afaa222cbf971c26dd40cb b.jpg\n");
    write_file(good, "74afaa222cbf971c26dd40cb b.jpg\n");
    const char *m = "0000000000000001";
    /* every line bad: by default, and with --skip-bad */
    assert_int_equal(
        run_nhdb(NULL, errf, "import", db, bad, "--model", m, "--format", "neural", NULL), 1);
    assert_false(exists(db));
    assert_int_equal(run_nhdb(NULL, errf, "import", db, bad, "--model", m, "--format", "neural",
                              "--skip-bad", NULL),
                     1);
    assert_false(exists(db));
    /* a neural list without its model; an input that is not there */
    assert_int_equal(run_nhdb(NULL, errf, "import", db, good, NULL), 1);
    assert_contains(errf, "needs --model");
    assert_false(exists(db));
    assert_int_equal(run_nhdb(NULL, errf, "import", db, missing, "--model", m, NULL), 1);
    assert_false(exists(db));
    /* a directory that was there stays, empty */
    assert_int_equal(mkdir(db, 0775), 0);
    assert_int_equal(run_nhdb(NULL, errf, "import", db, good, NULL), 1);
    assert_true(exists(db));
    char f[400];
    snprintf(f, sizeof f, "%s/data.mdb", db);
    assert_false(exists(f));
    snprintf(f, sizeof f, "%s/lock.mdb", db);
    assert_false(exists(f));
    assert_int_equal(rmdir(db), 0);
    /* a failed import that committed something keeps it */
    assert_int_equal(run_nhdb(NULL, errf, "import", db, mixed, "--model", m, "--format", "neural",
                              "--skip-bad", NULL),
                     1);
    assert_int_equal(db_count(db), 1);
    /* an existing set, even an empty one, is never removed */
    path_in(db, sizeof db, &t, "empty");
    assert_int_equal(run_nhdb(NULL, errf, "create", db, NULL), 0);
    assert_int_equal(
        run_nhdb(NULL, errf, "import", db, bad, "--model", m, "--format", "neural", NULL), 1);
    assert_int_equal(db_count(db), 0);
    assert_verified(db);
    tdir_remove(&t);
}

/* A full disk (a 24 MiB tmpfs; needs root, else skipped) stops an import with "no space
 * left on device" and exit status 1; the batches committed before it stay, verify, and are
 * the list's first lines; a second run resumes after them and stops the same way. */
static void test_cli_disk_full(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char mnt[300], db[300], in[300], errf[300], out[300], want[300];
    path_in(mnt, sizeof mnt, &t, "mnt");
    path_in(db, sizeof db, &t, "mnt/db");
    path_in(in, sizeof in, &t, "list.txt");
    path_in(errf, sizeof errf, &t, "err");
    path_in(out, sizeof out, &t, "out.txt");
    path_in(want, sizeof want, &t, "want.txt");
    assert_int_equal(mkdir(mnt, 0755), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=24m") != 0) {
        print_message("skipped: cannot mount a small tmpfs to fill (%s); run as root\n",
                      strerror(errno));
        tdir_remove(&t);
        skip();
    }
    rng = 6;
    write_neural_list(in, 60000, 0, "/some/longer/path/to/a/file/number/");
    int rc = run_nhdb(NULL, errf, "import", db, in, "--model", "0000000000000001", "--batch", "500",
                      NULL);
    char *e = slurp(errf, NULL);
    print_message("%s", e);
    uint64_t n = db_count(db);
    int rc2 = -1;
    char *e2 = NULL;
    if (n > 0) {
        /* resumes after the committed lines, and stops again */
        rc2 = run_nhdb(NULL, errf, "import", db, in, "--model", "0000000000000001", "--batch",
                       "500", NULL);
        e2 = slurp(errf, NULL);
        assert_int_equal(run_nhdb(out, NULL, "export", db, "--format", "neural", NULL), 0);
    }
    uint64_t n2 = db_count(db);
    int verified = run_nhdb(NULL, NULL, "verify", db, NULL);
    assert_int_equal(umount2(mnt, MNT_DETACH), 0);
    assert_int_equal(verified, 0);
    print_message("disk full after %llu entries (a second run: %llu)\n", (unsigned long long)n,
                  (unsigned long long)n2);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(e, "commit: no space left on device"));
    assert_null(strstr(e, "Input/output error"));
    assert_non_null(strstr(e, "entries this run committed before the error are kept"));
    assert_true(n > 0 && n < 60000 && n % 500 == 0);
    assert_int_equal(rc2, 1);
    char resumed[64];
    snprintf(resumed, sizeof resumed, "resuming at line %llu", (unsigned long long)n + 1);
    assert_non_null(strstr(e2, resumed));
    assert_non_null(strstr(e2, "no space left on device"));
    assert_true(n2 >= n && n2 % 500 == 0);
    /* what was committed is the list's first n2 lines */
    char *list = slurp(in, NULL), *p = list;
    for (uint64_t i = 0; i < n2; i++)
        p = strchr(p, '\n') + 1;
    *p = '\0';
    write_file(want, list);
    free(list);
    assert_files_equal(out, want);
    free(e);
    free(e2);
    tdir_remove(&t);
}

/* ---- crash safety ---- */

static void test_kill_during_import(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char db[300], in[300], errf[300];
    path_in(db, sizeof db, &t, "db");
    path_in(in, sizeof in, &t, "big.txt");
    path_in(errf, sizeof errf, &t, "err");
    const size_t n = 150000, batch = 5000;
    rng = 1234;
    write_neural_list(in, n, 0, "/kill/");
    char bs[16];
    snprintf(bs, sizeof bs, "%zu", batch);
    srand((unsigned)time(NULL));
    int kills = 0;
    for (int round = 0; round < 8; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, 1);
            dup2(fd, 2);
            execl(NHDB_EXE, NHDB_EXE, "import", db, in, "--model", "00000000000000bb", "--batch",
                  bs, (char *)NULL);
            _exit(127);
        }
        usleep((useconds_t)(20000 + rand() % 400000));
        if (kill(pid, SIGKILL) == 0)
            kills++;
        int st;
        waitpid(pid, &st, 0);
        /* whatever the moment, the database is consistent, whole batches only */
        if (access(db, F_OK) == 0 && mdb_stat_rows(db, "meta") >= 0) {
            uint64_t c = db_count(db);
            assert_true(c <= n);
            assert_true(c % batch == 0 || c == n);
            assert_verified(db);
        }
    }
    assert_true(kills > 0);
    /* a re-run completes the job with exactly n entries */
    assert_int_equal(
        run_nhdb(NULL, errf, "import", db, in, "--model", "00000000000000bb", "--batch", bs, NULL),
        0);
    assert_int_equal(db_count(db), n);
    assert_verified(db);
    assert_int_equal(mdb_stat_rows(db, "entries"), (long)n);
    {
        nh_error err = {0};
        nh_db *d = NULL;
        nh_db_stats st;
        assert_int_equal(nh_db_open(db, NH_DB_OPEN_READONLY, NULL, &d, &err), NH_OK);
        assert_int_equal(nh_db_stats_get(d, &st, &err), NH_OK);
        assert_int_equal(st.mih_rows, 4 * n);
        nh_db_close(d);
    }
    /* and again adds nothing */
    assert_int_equal(run_nhdb(NULL, errf, "import", db, in, "--model", "00000000000000bb", NULL),
                     0);
    assert_int_equal(db_count(db), n);
    tdir_remove(&t);
}

/* Readers keep answering during an import and only ever see whole batches. */
static void test_readers_during_write(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char db[300], in[300];
    path_in(db, sizeof db, &t, "db");
    path_in(in, sizeof in, &t, "big.txt");
    const size_t n = 60000, batch = 2000;
    rng = 555;
    write_neural_list(in, n, 0, "/r/");
    assert_int_equal(run_nhdb(NULL, NULL, "create", db, NULL), 0);
    nh_error err = {0};
    nh_db *h = NULL;
    nh_db_reader *rd = NULL;
    assert_int_equal(nh_db_open(db, NH_DB_OPEN_READONLY, NULL, &h, &err), NH_OK);
    assert_int_equal(nh_db_reader_create(h, &rd, &err), NH_OK);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(NHDB_EXE, NHDB_EXE, "import", db, in, "--model", "00000000000000cc", "--batch",
              "2000", (char *)NULL);
        _exit(127);
    }
    nh_kind kind = {.type = NH_KIND_NEURAL};
    memcpy(kind.model, "\0\0\0\0\0\0\0\xcc", 8);
    uint8_t q[12] = {0};
    int st, done = 0;
    unsigned snapshots = 0;
    uint64_t last = 0;
    while (!done) {
        done = waitpid(pid, &st, WNOHANG) == pid;
        if (nh_db_reader_refresh(rd, &err))
            fail_msg("refresh: %s", err.msg);
        uint64_t c = nh_db_reader_kind_count(rd, &kind);
        assert_true(c % batch == 0);
        assert_true(c >= last);
        last = c;
        nh_db_query_opts qo = {.k = 3};
        const nh_db_match *m;
        size_t nm;
        assert_int_equal(nh_db_query(rd, &kind, q, &qo, &m, &nm, &err), NH_OK);
        assert_int_equal(nm, c < 3 ? c : 3);
        snapshots++;
        usleep(2000);
    }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(nh_db_reader_refresh(rd, &err), NH_OK);
    assert_int_equal(nh_db_reader_kind_count(rd, &kind), n);
    nh_db_reader_destroy(rd);
    nh_db_close(h);
    print_message("readers saw %u snapshots during the import\n", snapshots);
    tdir_remove(&t);
}

/*
 * A data.mdb cut short (a copy interrupted, a full disk, a damaged medium) is refused at open
 * with a message, by the library and by every nhdb command, never with SIGBUS at the first
 * read of a missing page (the previous build died of SIGBUS in every command); an LMDB
 * environment that is not an nhdb set is never written into.
 */
static void test_truncated_and_foreign(void **state)
{
    (void)state;
    tdir t;
    tdir_make(&t);
    char db[300], file[320];
    path_in(db, sizeof db, &t, "set");
    nh_db *d = NULL;
    assert_int_equal(nh_db_open(db, NH_DB_OPEN_CREATE | NH_DB_OPEN_NOSYNC, NULL, &d, NULL), NH_OK);
    assert_int_equal(nh_db_batch_begin(d, NULL), NH_OK);
    nh_kind pdq = nh_kind_of(NH_KIND_PDQ);
    for (int i = 0; i < 20000; i++) {
        uint8_t h[32];
        for (int b = 0; b < 32; b++)
            h[b] = (uint8_t)rnd();
        nh_db_entry e = {.kind = pdq, .hash = h, .quality = 90, .source = "s"};
        assert_int_equal(nh_db_add(d, &e, NULL), NH_OK);
    }
    assert_int_equal(nh_db_batch_commit(d, NULL, NULL, NULL), NH_OK);
    nh_db_close(d);
    snprintf(file, sizeof file, "%s/data.mdb", db);
    struct stat sb;
    assert_int_equal(stat(file, &sb), 0);
    const off_t full = sb.st_size;
    const off_t cuts[3] = {full - 1, full / 2, 3 * 4096};
    for (int k = 0; k < 3; k++) {
        char cut[300], cmd[2048];
        path_in(cut, sizeof cut, &t, "cut");
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && truncate -s %lld '%s/data.mdb'",
                 cut, db, cut, (long long)cuts[k], cut);
        assert_int_equal(system(cmd), 0);
        /* the library, in a child so that a SIGBUS would show as such */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            nh_db *x = NULL;
            nh_error err = {0};
            nh_status st = nh_db_open(cut, NH_DB_OPEN_READONLY, NULL, &x, &err);
            _exit(st == NH_ERR_FORMAT && strstr(err.msg, "truncated") ? 0 : 1);
        }
        int ws;
        waitpid(pid, &ws, 0);
        assert_true(WIFEXITED(ws));
        assert_int_equal(WEXITSTATUS(ws), 0);
        /* every command: an error status and a message, no signal */
        char errf[320];
        path_in(errf, sizeof errf, &t, "err.txt");
        const char *cmds[3][3] = {{"stats", NULL, NULL}, {"verify", NULL, NULL},
                                  {"export", "--format", "jsonl"}};
        for (int c = 0; c < 3; c++) {
            int rc = cmds[c][1] ? run_nhdb(NULL, errf, cmds[c][0], cut, cmds[c][1], cmds[c][2], NULL)
                                : run_nhdb(NULL, errf, cmds[c][0], cut, NULL);
            assert_true(rc >= 1 && rc <= 3);
            FILE *f = fopen(errf, "r");
            char line[512] = "";
            assert_non_null(f);
            assert_non_null(fgets(line, sizeof line, f));
            fclose(f);
            assert_non_null(strstr(line, "truncated"));
        }
    }
    /* A foreign LMDB environment: one key of its own. */
    char foreign[300];
    path_in(foreign, sizeof foreign, &t, "foreign");
    assert_int_equal(mkdir(foreign, 0755), 0);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, foreign, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_val k = {3, "key"}, v = {5, "value"};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    nh_error err = {0};
    d = NULL;
    assert_int_equal(nh_db_open(foreign, NH_DB_OPEN_CREATE, NULL, &d, &err), NH_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "not an nhdb set"));
    char list[320];
    path_in(list, sizeof list, &t, "list.txt");
    FILE *f = fopen(list, "w");
    assert_non_null(f);
    fprintf(f, "%064d,100,x\n", 0);
    fclose(f);
    assert_int_not_equal(run_nhdb(NULL, NULL, "import", foreign, list, NULL), 0);
    /* untouched: still only its own key */
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, foreign, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_stat ms;
    assert_int_equal(mdb_stat(txn, dbi, &ms), 0);
    assert_int_equal(ms.ms_entries, 1);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    tdir_remove(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mih_random_96),
        cmocka_unit_test(test_mih_clustered_96),
        cmocka_unit_test(test_mih_clustered_96_m5),
        cmocka_unit_test(test_mih_clustered_256),
        cmocka_unit_test(test_mih_clustered_256_m16),
        cmocka_unit_test(test_mih_random_256_m9),
        cmocka_unit_test(test_mih_many_batches_96),
        cmocka_unit_test(test_mih_many_batches_256),
        cmocka_unit_test(test_mih_multipart_runs),
        cmocka_unit_test(test_mih_neural_64),
        cmocka_unit_test(test_mih_neural_128),
        cmocka_unit_test(test_mih_neural_256),
        cmocka_unit_test(test_mih_neural_odd_widths),
        cmocka_unit_test(test_mixed_neural_widths),
        cmocka_unit_test(test_dedupe_and_digest),
        cmocka_unit_test(test_dedupe_key_collisions),
        cmocka_unit_test(test_verify_detects_damage),
        cmocka_unit_test(test_upgrade_v1),
        cmocka_unit_test(test_checksums_detect_damage),
        cmocka_unit_test(test_schema2_sets),
        cmocka_unit_test(test_cli_round_trips),
        cmocka_unit_test(test_cli_neural_widths),
        cmocka_unit_test(test_cli_malformed_line),
        cmocka_unit_test(test_cli_merge),
        cmocka_unit_test(test_cli_long_string),
        cmocka_unit_test(test_cli_nul_in_line),
        cmocka_unit_test(test_cli_numeric_options),
        cmocka_unit_test(test_cli_query_missing_set),
        cmocka_unit_test(test_cli_failed_import_no_empty_set),
        cmocka_unit_test(test_cli_disk_full),
        cmocka_unit_test(test_truncated_and_foreign),
        cmocka_unit_test(test_kill_during_import),
        cmocka_unit_test(test_readers_during_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
