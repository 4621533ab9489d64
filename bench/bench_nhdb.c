/*
 * nhbench-db: build rate, query latency and throughput of nhdb, multi-index hashing against
 * the linear scan of the same database and (when built with FAISS) against FAISS's
 * IndexBinaryFlat and IndexBinaryMultiHash on the same data in the same run.
 *
 * Data: synthetic clustered hashes, to look like real image hash sets with many
 * near-duplicates: clusters of 1..8 members, each member its cluster's random centre with
 * 0..6 random bits flipped. Queries: half are stored hashes with 0..4 bits flipped, half are
 * uniformly random. Everything is single-threaded and seeded, so runs are comparable.
 *
 * usage: nhbench-db [--sizes 1000000,10000000] [--bits 96,256] [--queries 200]
 *                   [--dir DIR] [--batch N] [--keep] [--no-faiss]
 * --batch: entries per build transaction (default: all in one, the bulk-load case)
 * --faiss-mh-max: skip IndexBinaryMultiHash (slow to build) above this many entries
 * Each timing is the second of two identical rounds, so the map pages a serving process
 * would hold are resident. Times are per query; ratios are "how many times slower than MIH".
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nhdb/nhdb.h"

#ifdef NH_BENCH_FAISS
#include "bench_nhdb_faiss.h"
#endif

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static void gen_clustered(uint8_t *out, size_t n, unsigned hb)
{
    uint8_t centre[32];
    size_t i = 0;
    while (i < n) {
        for (unsigned b = 0; b < hb; b++)
            centre[b] = (uint8_t)rnd();
        unsigned members = 1 + (unsigned)(rnd() % 8);
        for (unsigned j = 0; j < members && i < n; j++, i++) {
            uint8_t *h = out + i * hb;
            memcpy(h, centre, hb);
            unsigned flips = (unsigned)(rnd() % 7);
            for (unsigned f = 0; f < flips; f++) {
                unsigned bit = (unsigned)(rnd() % (hb * 8));
                h[bit >> 3] ^= (uint8_t)(0x80 >> (bit & 7));
            }
        }
    }
}

static void gen_queries(uint8_t *q, size_t nq, const uint8_t *data, size_t n, unsigned hb)
{
    for (size_t i = 0; i < nq; i++) {
        uint8_t *h = q + i * hb;
        if (i % 2 == 0) {
            memcpy(h, data + (rnd() % n) * hb, hb);
            unsigned flips = (unsigned)(rnd() % 5);
            for (unsigned f = 0; f < flips; f++) {
                unsigned bit = (unsigned)(rnd() % (hb * 8));
                h[bit >> 3] ^= (uint8_t)(0x80 >> (bit & 7));
            }
        } else {
            for (unsigned b = 0; b < hb; b++)
                h[b] = (uint8_t)rnd();
        }
    }
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

static void die(const nh_error *err)
{
    char buf[2200];
    fprintf(stderr, "nhbench-db: %s\n", nh_error_format(err, buf, sizeof buf));
    exit(1);
}

/* Mean seconds per query over nq queries; *matches gets the total. */
static double time_queries(nh_db_reader *rd, const nh_kind *kind, const uint8_t *q, size_t nq,
                           unsigned hb, unsigned r, nh_db_method method, uint64_t *matches,
                           uint64_t *mih_used)
{
    nh_error err = {0};
    nh_db_query_opts o = {.radius = r, .method = method};
    uint64_t total = 0, used = 0;
    double t0 = 0;
    /* round 0 warms the map pages these queries touch; round 1 is timed */
    for (int round = 0; round < 2; round++) {
        total = used = 0;
        t0 = nh_time_now();
        for (size_t i = 0; i < nq; i++) {
            const nh_db_match *m;
            size_t n;
            if (nh_db_query(rd, kind, q + i * hb, &o, &m, &n, &err))
                die(&err);
            total += n;
            nh_db_query_info info;
            nh_db_reader_last_info(rd, &info);
            used += info.method == NH_DB_METHOD_MIH;
        }
    }
    double t = (nh_time_now() - t0) / (double)nq;
    *matches = total;
    if (mih_used)
        *mih_used = used;
    return t;
}

static uint64_t dir_bytes(const char *dir)
{
    char p[1200];
    struct stat sb;
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    return stat(p, &sb) ? 0 : (uint64_t)sb.st_blocks * 512;
}

static int keep_db;
static size_t mh_max = SIZE_MAX; /* no IndexBinaryMultiHash above this many entries */
static size_t build_batch = 0;   /* 0: the whole set in one transaction */


/* "s" and j in decimal, as snprintf("s%zu") writes it, without printf's cost inside the
 * timed build (the rate is nhdb's, not libc's). */
static void fmt_source(char *out, size_t j)
{
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + j % 10);
        j /= 10;
    } while (j);
    *out++ = 's';
    while (n)
        *out++ = d[--n];
    *out = '\0';
}

static void run(const char *dir, unsigned bits, size_t n, size_t nq, int use_faiss)
{
    unsigned hb = bits / 8;
    nh_error err = {0};
    char path[1100];
    snprintf(path, sizeof path, "%s/bench-%u-%zu", dir, bits, n);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "nhbench-db: could not clear %s\n", path);

    uint8_t *data = malloc(n * hb);
    uint8_t *q = malloc(nq * hb);
    if (!data || !q) {
        fprintf(stderr, "nhbench-db: out of memory\n");
        exit(1);
    }
    rng_state = 0x9e3779b97f4a7c15u ^ bits ^ n;
    gen_clustered(data, n, hb);
    gen_queries(q, nq, data, n, hb);

    nh_kind kind = {.type = bits == 96 ? NH_KIND_NEURAL : NH_KIND_PDQ};
    if (bits == 96)
        memcpy(kind.model, "\x01\x23\x45\x67\x89\xab\xcd\xef", 8);
    nh_db *db = NULL;
    if (nh_db_open(path, NH_DB_OPEN_CREATE, NULL, &db, &err))
        die(&err);
    const size_t batch = build_batch ? build_batch : n;
    char src[32];
    double t0 = nh_time_now();
    for (size_t i = 0; i < n; i += batch) {
        if (nh_db_batch_begin(db, &err))
            die(&err);
        for (size_t j = i; j < n && j < i + batch; j++) {
            fmt_source(src, j);
            nh_db_entry e = {.kind = kind,
                             .hash = data + j * hb,
                             .quality = -1,
                             .source = src,
                             .added = 1700000000};
            if (nh_db_add(db, &e, &err))
                die(&err);
        }
        if (nh_db_batch_commit(db, NULL, NULL, &err))
            die(&err);
    }
    double build = nh_time_now() - t0;
    nh_db_stats st;
    if (nh_db_stats_get(db, &st, &err))
        die(&err);
    printf("\n== %u-bit, %zu entries, %u substrings ==\n", bits, n, st.kinds[0].substrings);
    printf("build: %.2f s, %.0f hashes/s (batches of %zu, fsync per commit); data.mdb %.1f MiB "
           "(%.0f bytes/entry)\n",
           build, n / build, batch, dir_bytes(path) / 1048576.0, (double)dir_bytes(path) / n);
    fflush(stdout);

    nh_db_reader *rd = NULL;
    if (nh_db_reader_create(db, &rd, &err))
        die(&err);

#ifdef NH_BENCH_FAISS
    nhb_faiss *flat = NULL, *mh = NULL;
    double tflat_build = 0, tmh_build = 0;
    if (use_faiss) {
        double a = nh_time_now();
        flat = nhb_faiss_create(bits, 0, n, data, 0);
        tflat_build = nh_time_now() - a;
        if (n <= mh_max) {
            a = nh_time_now();
            mh = nhb_faiss_create(bits, st.kinds[0].substrings, n, data, 1);
            tmh_build = nh_time_now() - a;
        }
        printf("faiss build: IndexBinaryFlat %.2f s, IndexBinaryMultiHash(nhash=%u, b=%u) %.2f s "
               "(%.0f hashes/s; 0: skipped)\n",
               tflat_build, st.kinds[0].substrings, bits / st.kinds[0].substrings, tmh_build,
               mh ? n / tmh_build : 0.0);
    }
#else
    (void)use_faiss;
#endif
    static const unsigned r96[] = {0, 4, 8, 12, 16}, r256[] = {0, 8, 16, 31};
    const unsigned *radii = bits == 96 ? r96 : r256;
    int nradii = bits == 96 ? (int)(sizeof r96 / sizeof *r96) : (int)(sizeof r256 / sizeof *r256);
    size_t nlin = nq < 20 ? nq : 20;
    printf("%-6s %10s %10s %10s %9s %10s %10s %9s %9s %9s %9s\n", "radius", "mih_us", "auto_us",
           "linear_us", "mih_qps", "flat_us", "mhash_us", "lin/mih", "lin/auto", "flat/mih",
           "mhash/mih");
    for (int ri = 0; ri < nradii; ri++) {
        unsigned r = radii[ri];
        uint64_t m_mih, m_auto, m_lin, m_lin2, used;
        double t_mih = time_queries(rd, &kind, q, nq, hb, r, NH_DB_METHOD_MIH, &m_mih, NULL);
        double t_auto = time_queries(rd, &kind, q, nq, hb, r, NH_DB_METHOD_AUTO, &m_auto, &used);
        double t_lin = time_queries(rd, &kind, q, nlin, hb, r, NH_DB_METHOD_LINEAR, &m_lin, NULL);
        uint64_t m_mih_part;
        time_queries(rd, &kind, q, nlin, hb, r, NH_DB_METHOD_MIH, &m_mih_part, NULL);
        m_lin2 = m_lin;
        double t_flat = 0, t_mh = 0;
        long f_flat = -1, f_mh = -1;
#ifdef NH_BENCH_FAISS
        if (flat) {
            double a = nh_time_now();
            f_flat = nhb_faiss_range(flat, nlin, q, r);
            t_flat = (nh_time_now() - a) / (double)nlin;
            if (mh) {
                a = nh_time_now();
                f_mh = nhb_faiss_range(mh, nq, q, r);
                t_mh = (nh_time_now() - a) / (double)nq;
            }
        }
#endif
        printf("%-6u %10.1f %10.1f %10.1f %9.0f %10.1f %10.1f %9.1f %9.1f %9.1f %9.1f\n", r,
               t_mih * 1e6, t_auto * 1e6, t_lin * 1e6, 1.0 / t_mih, t_flat * 1e6, t_mh * 1e6,
               t_lin / t_mih, t_lin / t_auto, t_flat / t_mih, t_mh / t_mih);
        printf("       matches: mih %" PRIu64 " auto %" PRIu64 " (mih chosen %" PRIu64 "/%zu); "
               "first %zu queries: mih %" PRIu64 " linear %" PRIu64 " faiss flat %ld; "
               "faiss multihash %ld%s\n",
               m_mih, m_auto, used, nq, nlin, m_mih_part, m_lin2, f_flat, f_mh,
               (m_mih != m_auto || m_mih_part != m_lin2 ||
                (f_flat >= 0 && (uint64_t)f_flat != m_lin2) ||
                (f_mh >= 0 && (uint64_t)f_mh != m_mih))
                   ? "  MISMATCH"
                   : "");
        fflush(stdout);
    }
#ifdef NH_BENCH_FAISS
    nhb_faiss_destroy(flat);
    nhb_faiss_destroy(mh);
#endif
    nh_db_reader_destroy(rd);
    nh_db_close(db);
    printf("peak RSS so far %.0f MiB (includes the mapped database pages touched)\n",
           peak_rss_mib());
    free(data);
    free(q);
    if (!keep_db && system(cmd) != 0)
        fprintf(stderr, "nhbench-db: could not remove %s\n", path);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nhbench-db [--sizes N,N] [--bits 96,256] [--queries Q] [--dir DIR] "
               "[--batch N] [--keep] [--no-faiss] [--faiss-mh-max N]\n\n"
               "nhdb build rate and query latency: multi-index hashing against the linear scan\n"
               "and (when built with FAISS) IndexBinaryFlat and IndexBinaryMultiHash, on\n"
               "synthetic clustered hashes, single-threaded and seeded.\n\n"
               "  --sizes LIST       set sizes, comma-separated (default 1000000,10000000)\n"
               "  --bits LIST        hash widths, comma-separated (default 96,256)\n"
               "  --queries Q        queries per radius (default 200, at least 2)\n"
               "  --dir DIR          where the databases are built (default /tmp)\n"
               "  --batch N          entries per build transaction (default: all in one)\n"
               "  --keep             keep the databases\n"
               "  --no-faiss         skip the FAISS peers\n"
               "  --faiss-mh-max N   skip IndexBinaryMultiHash above N entries\n"
               "  -h, --help         this help\n");
}

int main(int argc, char **argv)
{
    const char *sizes = "1000000,10000000", *bitlist = "96,256", *dir = "/tmp";
    size_t nq = 200;
    int use_faiss = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
            sizes = argv[++i];
        else if (strcmp(argv[i], "--bits") == 0 && i + 1 < argc)
            bitlist = argv[++i];
        else if (strcmp(argv[i], "--queries") == 0 && i + 1 < argc)
            nq = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            build_batch = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--faiss-mh-max") == 0 && i + 1 < argc)
            mh_max = (size_t)strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--keep") == 0)
            keep_db = 1;
        else if (strcmp(argv[i], "--no-faiss") == 0)
            use_faiss = 0;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (nq < 2)
        nq = 2;
#ifndef NH_BENCH_FAISS
    if (use_faiss)
        printf("built without FAISS (apt-get install libfaiss-dev): peers skipped\n");
    use_faiss = 0;
#endif
    printf("nhbench-db: synthetic clustered hashes, %zu queries per radius (linear scan and "
           "IndexBinaryFlat: first %zu), single thread\n",
           nq, nq < 20 ? nq : (size_t)20);
    char bl[64];
    snprintf(bl, sizeof bl, "%s", bitlist);
    for (char *b = strtok(bl, ","); b; b = strtok(NULL, ",")) {
        unsigned bits = (unsigned)atoi(b);
        if (bits != 96 && bits != 256)
            continue;
        char sl[256];
        snprintf(sl, sizeof sl, "%s", sizes);
        char *save = NULL;
        for (char *s = strtok_r(sl, ",", &save); s; s = strtok_r(NULL, ",", &save))
            run(dir, bits, (size_t)strtoull(s, NULL, 10), nq, use_faiss);
    }
    return 0;
}
