/*
 * nhbench-pdq: PDQ throughput end to end (decode + hash) against decode alone on the same
 * files, for the C path and the OpenCL path, reference input path and fast (shrink-on-load)
 * input path; plus how far the fast path lands from the reference path on these files, and
 * whether OpenCL gave the same bits as C.
 *
 * usage: nhbench-pdq [--runs N] [--batch N] FILE_OR_DIR...
 *
 * One thread, so the ratios compare work, not core counts. Each contender runs over every
 * file; each run is timed whole and the median of N runs is reported in images/s, with the
 * ratio against decode-only for the same input path. Files that fail to decode are
 * counted and left out of every contender.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_files.h"
#include "nhash/cl.h"
#include "nhash/pdq.h"

static char **files;
static size_t nfiles;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

enum { DECODE_ONLY, C_E2E, CL_E2E, C_HASH_ONLY, CL_HASH_ONLY };

struct ctx {
    nh_pdq_scratch *s;
    nh_pdq_cl *pcl;
    size_t batch;
    uint8_t *pix;       /* batch x NH_PDQ_FILE_PIXEL_BYTES */
    nh_pdq_image *imgs; /* batch */
    uint8_t *all_pix;   /* nfiles x NH_PDQ_FILE_PIXEL_BYTES for the hash-only rows */
    nh_pdq_image *all;  /* nfiles */
    uint8_t *hc, *hg;   /* nfiles x 32 */
    int *qc, *qg;
    int *ok; /* file decodes */
};

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double last_cpu; /* process CPU seconds of the last run_once (PoCL threads included) */

/* One timed run of a contender over every good file; returns wall seconds. */
static double run_once(struct ctx *c, int which, unsigned flags)
{
    nh_error err = {0};
    double c0 = cpu_now();
    double t0 = nh_time_now();
    size_t nb = 0, gi = 0;
    size_t first[1024];
    for (size_t i = 0; i < nfiles; i++) {
        if (!c->ok[i])
            continue;
        switch (which) {
        case DECODE_ONLY: {
            nh_pdq_image img;
            nh_pdq_load_file(files[i], flags, c->pix, &img, NULL, NULL, &err);
            break;
        }
        case C_E2E:
            nh_pdq_hash_file(files[i], flags, c->pix, c->s, c->hc + i * 32, &c->qc[i], NULL, NULL,
                             &err);
            break;
        case C_HASH_ONLY:
            /* all[] is packed over good files */
            nh_pdq_hash(c->s, &c->all[gi], 0, c->hc + gi * 32, &c->qc[gi], &err);
            gi++;
            break;
        case CL_E2E:
            nh_pdq_load_file(files[i], flags, c->pix + nb * NH_PDQ_FILE_PIXEL_BYTES, &c->imgs[nb],
                             NULL, NULL, &err);
            first[nb++] = i;
            if (nb == c->batch) {
                uint8_t h[1024 * 32];
                int q[1024];
                nh_pdq_cl_hash(c->pcl, c->imgs, nb, 0, h, q, &err);
                for (size_t k = 0; k < nb; k++) {
                    memcpy(c->hg + first[k] * 32, h + k * 32, 32);
                    c->qg[first[k]] = q[k];
                }
                nb = 0;
            }
            break;
        default:
            break;
        }
    }
    if (which == CL_E2E && nb) {
        uint8_t h[1024 * 32];
        int q[1024];
        nh_pdq_cl_hash(c->pcl, c->imgs, nb, 0, h, q, &err);
        for (size_t k = 0; k < nb; k++) {
            memcpy(c->hg + first[k] * 32, h + k * 32, 32);
            c->qg[first[k]] = q[k];
        }
    }
    if (which == CL_HASH_ONLY) {
        /* all[] holds only good files, packed */
        size_t n = 0;
        for (size_t i = 0; i < nfiles; i++)
            n += c->ok[i] != 0;
        nh_pdq_cl_hash(c->pcl, c->all, n, 0, c->hg, c->qg, &err);
    }
    double t = nh_time_now() - t0;
    last_cpu = cpu_now() - c0;
    return t;
}

enum { NCONT = 8 };
static const struct {
    int which;
    unsigned flags;
    const char *name;
} conts[NCONT] = {
    {DECODE_ONLY, 0, "ref path: decode only"},
    {C_E2E, 0, "ref path: decode + PDQ (C)"},
    {CL_E2E, 0, "ref path: decode + PDQ (OpenCL)"},
    {DECODE_ONLY, NH_PDQ_INPUT_FAST, "fast path: decode only"},
    {C_E2E, NH_PDQ_INPUT_FAST, "fast path: decode + PDQ (C)"},
    {CL_E2E, NH_PDQ_INPUT_FAST, "fast path: decode + PDQ (OpenCL)"},
    {C_HASH_ONLY, 0, "PDQ only, decoded pixels (C)"},
    {CL_HASH_ONLY, 0, "PDQ only, decoded pixels (OpenCL)"},
};

/* Runs are interleaved (run r of every contender, then run r+1) so that load from other
 * processes on a shared machine spreads over all contenders alike; wall and process-CPU
 * medians are both reported. */
static void bench_all(struct ctx *c, int runs, double *wall, double *cpu)
{
    double tw[NCONT][64], tc[NCONT][64];
    if (runs > 64)
        runs = 64;
    for (int k = 0; k < NCONT; k++)
        run_once(c, conts[k].which, conts[k].flags); /* warm-up: page cache, kernels */
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < NCONT; k++) {
            tw[k][r] = run_once(c, conts[k].which, conts[k].flags);
            tc[k][r] = last_cpu;
        }
    }
    for (int k = 0; k < NCONT; k++) {
        wall[k] = median(tw[k], runs);
        cpu[k] = median(tc[k], runs);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nhbench-pdq [--runs N] [--batch N] FILE_OR_DIR...\n\n"
               "PDQ images/s end to end (decode + hash) against decode alone, C and OpenCL,\n"
               "reference and fast input paths, one thread; and whether OpenCL gave C's bits.\n\n"
               "  --runs N     timed runs per contender (default 5)\n"
               "  --batch N    images per OpenCL batch, 1..1024 (default 32)\n"
               "  -h, --help   this help\n");
}

int main(int argc, char **argv)
{
    int runs = 5;
    size_t batch = 32;
    char **args = calloc((size_t)argc, sizeof *args);
    size_t nargs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            free(args);
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            free(args);
            usage(stderr);
            return 2;
        } else
            args[nargs++] = argv[i];
    }
    files = nh_bench_files(args, nargs, 0, 0, &nfiles);
    free(args);
    if (!nfiles || runs < 1 || batch < 1 || batch > 1024) {
        usage(stderr);
        return 2;
    }
    struct ctx c = {0};
    nh_error err = {0};
    char m[4096];
    nh_cl *cl = NULL;
    if (nh_pdq_scratch_create(0, 0, &c.s, &err) != NH_OK ||
        nh_cl_create(NULL, NULL, &cl, &err) != NH_OK ||
        nh_pdq_cl_create(cl, batch, 0, 0, &c.pcl, &err) != NH_OK) {
        fprintf(stderr, "nhbench-pdq: %s\n", nh_error_format(&err, m, sizeof m));
        return 1;
    }
    c.batch = batch;
    c.pix = malloc(batch * NH_PDQ_FILE_PIXEL_BYTES);
    c.imgs = calloc(batch, sizeof *c.imgs);
    c.all_pix = malloc(nfiles * NH_PDQ_FILE_PIXEL_BYTES);
    c.all = calloc(nfiles, sizeof *c.all);
    c.hc = calloc(nfiles, 32);
    c.hg = calloc(nfiles, 32);
    c.qc = calloc(nfiles, sizeof *c.qc);
    c.qg = calloc(nfiles, sizeof *c.qg);
    c.ok = calloc(nfiles, sizeof *c.ok);
    int *qf = calloc(nfiles, sizeof *qf);
    uint8_t *hf = calloc(nfiles, 32), *hp = calloc(nfiles, 32);
    int *big = calloc(nfiles, sizeof *big), *shrunk = calloc(nfiles, sizeof *shrunk);
    if (!c.pix || !c.imgs || !c.all_pix || !c.all || !c.hc || !c.hg || !c.qc || !c.qg || !c.ok ||
        !qf || !hf || !hp || !big || !shrunk) {
        fprintf(stderr, "nhbench-pdq: out of memory\n");
        return 1;
    }

    /* Which files decode; reference vs fast distance; source megapixels. */
    size_t good = 0, bad = 0;
    double mp = 0;
    for (size_t i = 0; i < nfiles; i++) {
        int sw = 0, sh = 0;
        if (nh_pdq_load_file(files[i], 0, c.all_pix + good * NH_PDQ_FILE_PIXEL_BYTES, &c.all[good],
                             &sw, &sh, &err) != NH_OK ||
            nh_pdq_hash_file(files[i], NH_PDQ_INPUT_FAST_ALWAYS, c.pix, c.s, hf + i * 32, &qf[i],
                             NULL, NULL, &err) != NH_OK ||
            nh_pdq_hash_file(files[i], NH_PDQ_INPUT_FAST, c.pix, c.s, hp + i * 32, &qf[i], NULL,
                             NULL, &err) != NH_OK) {
            bad++;
            continue;
        }
        c.ok[i] = 1;
        good++;
        big[i] = sw > NH_PDQ_REF_DIM || sh > NH_PDQ_REF_DIM;
        /* what the fast path does with it: shrink-on-load iff a JPEG with shorter side >= 1024 */
        const char *ext = strrchr(files[i], '.');
        shrunk[i] = ext && (!strcasecmp(ext, ".jpg") || !strcasecmp(ext, ".jpeg")) &&
                    (sw < sh ? sw : sh) >= 2 * NH_PDQ_REF_DIM;
        mp += (double)sw * sh / 1e6;
    }
    printf("nhbench-pdq: %zu files (%zu failed to decode, left out), %.1f source MP, "
           "%d runs (median), batch %zu, 1 thread\n",
           good, bad, mp, runs, batch);
    printf("OpenCL device: %s (%s)%s\n", nh_cl_info(cl)->device_name, nh_cl_info(cl)->platform_name,
           nh_pdq_cl_exact(c.pcl) ? "" : " [division not correctly rounded]");
    if (!good)
        return 1;

    /* Same bits on these files? */
    run_once(&c, C_E2E, 0);
    run_once(&c, CL_E2E, 0);
    size_t diff_files = 0, diff_bits = 0, qdiff = 0;
    for (size_t i = 0; i < nfiles; i++) {
        if (!c.ok[i])
            continue;
        unsigned d = nh_pdq_distance(c.hc + i * 32, c.hg + i * 32);
        diff_files += d != 0;
        diff_bits += d;
        qdiff += c.qc[i] != c.qg[i];
    }
    double wall[NCONT], cpu[NCONT];
    bench_all(&c, runs, wall, cpu);
    double g = (double)good;
    printf("\n%-34s %10s %10s %12s %10s\n", "contender", "images/s", "vs decode", "CPU img/s",
           "vs decode");
    for (int k = 0; k < NCONT; k++) {
        int base = k < 3 ? 0 : 3;
        if (k < 6)
            printf("%-34s %10.1f %10.2f %12.1f %10.2f\n", conts[k].name, g / wall[k],
                   wall[base] / wall[k], g / cpu[k], cpu[base] / cpu[k]);
        else
            printf("%-34s %10.1f %10s %12.1f\n", conts[k].name, g / wall[k], "", g / cpu[k]);
    }
    printf("fast vs ref path: decode %.2fx, end to end (C) %.2fx (wall)\n", wall[0] / wall[3],
           wall[1] / wall[4]);
    printf("\nOpenCL vs C on these files: %zu files differ (%zu bits), %zu qualities differ\n",
           diff_files, diff_bits, qdiff);

    /* Reference path (hc, re-run on ref pixels) vs fast path as used (hp, NH_PDQ_INPUT_FAST:
     * shrink-on-load only where it pays) and forced on every file over 512 (hf). */
    run_once(&c, C_E2E, 0);
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *other = pass ? hf : hp;
        unsigned hist[5] = {0}, maxd = 0, maxd80 = 0;
        size_t n80 = 0, over10_80 = 0, over31 = 0, used = 0;
        double sum = 0;
        for (size_t i = 0; i < nfiles; i++) {
            if (!c.ok[i])
                continue;
            unsigned d = nh_pdq_distance(c.hc + i * 32, other + i * 32);
            sum += d;
            if (d > maxd)
                maxd = d;
            hist[d == 0 ? 0 : d <= 4 ? 1 : d <= 10 ? 2 : d <= 31 ? 3 : 4]++;
            over31 += d > 31;
            used += pass ? big[i] : shrunk[i];
            if (c.qc[i] >= 80) {
                n80++;
                over10_80 += d > 10;
                if (d > maxd80)
                    maxd80 = d;
            }
        }
        printf("%s vs ref path (%zu files through FAST decode): distance mean %.2f, max %u; "
               "0: %u, 1-4: %u, 5-10: %u, 11-31: %u, >31: %u\n",
               pass ? "fast path forced" : "fast path", used, sum / g, maxd, hist[0], hist[1],
               hist[2], hist[3], hist[4]);
        printf("  quality >= 80: %zu files, max %u, %zu over 10; %zu over 31\n", n80, maxd80,
               over10_80, over31);
    }

    nh_pdq_cl_destroy(c.pcl);
    nh_cl_destroy(cl);
    nh_pdq_scratch_destroy(c.s);
    free(c.pix);
    free(c.imgs);
    free(c.all_pix);
    free(c.all);
    free(c.hc);
    free(c.hg);
    free(c.qc);
    free(c.qg);
    free(c.ok);
    free(qf);
    free(hf);
    free(hp);
    free(big);
    free(shrunk);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    return 0;
}
