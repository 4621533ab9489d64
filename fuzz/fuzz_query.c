/*
 * libFuzzer harness: `nhdb query` input. The query logic of the CLI (dbtool/nhdb_main.c,
 * query_one) is a static function of the CLI and not separable, so this harness does what it
 * does with the library calls it makes: a query list (--input) is split into records by
 * nhdb_text_read, each record's first word (up to space, tab or comma) is read as a hash
 * whose kind follows from its length (24 hex digits: neural 96; 64: PDQ; 32: digest; other
 * even lengths: neural of that width), decoded by nh_hex_decode, and searched with
 * nh_db_query in a small set built once at start (neural 96 and 64 bits, PDQ, digest).
 * The first input byte picks the search: radius (low 6 bits), k-nearest (bit 6), forced
 * linear scan (bit 7). Corpus: fuzz/corpus/query.
 */
#define _GNU_SOURCE /* fmemopen, mkdtemp */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nhdb/nhdb.h"
#include "text.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FP_MODEL 0x00112233445566eeULL

static char g_dir[64];
static nh_db *g_db;
static nh_db_reader *g_rd;

static void cleanup(void)
{
    char p[96];
    nh_db_reader_destroy(g_rd);
    nh_db_close(g_db);
    snprintf(p, sizeof p, "%s/data.mdb", g_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", g_dir);
    unlink(p);
    rmdir(g_dir);
}

/* Deterministic pseudo-random bytes (xorshift), so every run searches the same set. */
static void fill(uint64_t *s, uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        b[i] = (uint8_t)*s;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/nhfuzzq.XXXXXX",
             tmp && *tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    nh_error err = {0};
    nh_db_create_opts o = {0, 0, (size_t)64 << 20};
    if (!mkdtemp(g_dir) ||
        nh_db_open(g_dir, NH_DB_OPEN_CREATE | NH_DB_OPEN_NOSYNC, &o, &g_db, &err) ||
        nh_db_batch_begin(g_db, &err)) {
        fprintf(stderr, "fuzz_query: cannot create the set in %s: %s\n", g_dir, err.msg);
        exit(1);
    }
    const nh_kind kinds[] = {nh_kind_neural(FP_MODEL, 96), nh_kind_neural(FP_MODEL, 64),
                             nh_kind_of(NH_KIND_PDQ), nh_kind_of(NH_KIND_DIGEST)};
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int i = 0; i < 200; i++) {
            uint8_t h[NH_DB_HASH_MAX];
            char src[32];
            fill(&s, h, sizeof h);
            if (i % 10 == 1) /* near neighbours of a hash in the set */
                memset(h, 0, 4);
            snprintf(src, sizeof src, "k%zu/%d.jpg", k, i);
            nh_db_entry e = {kinds[k], h, NULL, -1, src, "fuzz", NULL, 1764000000};
            if (nh_db_add(g_db, &e, &err)) {
                fprintf(stderr, "fuzz_query: add: %s\n", err.msg);
                exit(1);
            }
        }
    }
    if (nh_db_batch_commit(g_db, NULL, NULL, &err) || nh_db_reader_create(g_db, &g_rd, &err)) {
        fprintf(stderr, "fuzz_query: commit: %s\n", err.msg);
        exit(1);
    }
    atexit(cleanup);
    return 0;
}

static void query_one(const char *hex, const nh_db_query_opts *qo)
{
    size_t n = strlen(hex);
    nh_kind kind;
    if (n == 64)
        kind = nh_kind_of(NH_KIND_PDQ);
    else if (n == 32)
        kind = nh_kind_of(NH_KIND_DIGEST);
    else if (n % 2 == 0 && n <= 2 * NH_DB_HASH_MAX &&
             nh_kind_bits_valid(NH_KIND_NEURAL, (unsigned)n * 4))
        kind = nh_kind_neural(FP_MODEL, (unsigned)n * 4);
    else
        return;
    uint8_t h[NH_DB_HASH_MAX];
    size_t hb = nh_kind_bits(&kind) / 8;
    if (n != 2 * hb || nh_hex_decode(hex, n, h, hb))
        return;
    const nh_db_match *m;
    size_t nm;
    nh_error err = {0};
    if (nh_db_query(g_rd, &kind, h, qo, &m, &nm, &err))
        return;
    for (size_t i = 0; i < nm; i++) {
        nh_db_record r;
        if (nh_db_reader_get(g_rd, m[i].id, &r, &err) || r.bits != 8 * hb ||
            m[i].distance != nh_hamming(r.hash, h, hb)) {
            /* a match the set cannot give back, or at the wrong distance */
            fprintf(stderr, "fuzz_query: match %zu (id %llu) is wrong: %s\n", i,
                    (unsigned long long)m[i].id, err.msg);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    nh_db_query_opts qo = {data[0] & 63u, (data[0] & 64u) ? 1u + (data[0] & 7u) : 0,
                           (data[0] & 128u) ? NH_DB_METHOD_LINEAR : NH_DB_METHOD_AUTO};
    char *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data + 1, size - 1);
    FILE *f = fmemopen(copy, size - 1, "r");
    if (!f) {
        free(copy);
        return 0;
    }
    char *line = NULL;
    size_t cap = 0, nl;
    while (nhdb_text_read(f, NHDB_FMT_NEURAL, &line, &cap, &nl, NULL) == 1) {
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        s[strcspn(s, " \t,")] = '\0';
        query_one(s, &qo);
    }
    free(line);
    fclose(f);
    free(copy);
    return 0;
}
