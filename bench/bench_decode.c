/*
 * nhbench-decode: decode throughput of nhash's compat and fast modes on real photos, side
 * by side with libvips' own vipsthumbnail on the same files, in the same run.
 *
 * usage: nhbench-decode [--runs N] [--threads N] [--size N] FILE_OR_DIR...
 *
 * Each contender decodes every file to size x size RGB; each run is timed whole, the
 * median of N runs is reported as images/s and source MP/s, with ratios against
 * `vipsthumbnail -s SxS!` (one process, its own threading) and against the same command
 * run as one process per core over a split list (xargs -P).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_files.h"
#include "nhash/decode.h"

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
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double run_pool(nh_decode_pool *pool, const nh_decode_opts *o, uint8_t *out,
                       nh_decode_result *res, size_t batch, size_t *failed)
{
    size_t slot = nh_decode_out_bytes(o);
    (void)slot;
    double t0 = nh_time_now();
    *failed = 0;
    for (size_t b = 0; b < nfiles; b += batch) {
        size_t m = nfiles - b < batch ? nfiles - b : batch;
        nh_decode_pool_run(pool, (const char *const *)files + b, m, out, res);
        for (size_t i = 0; i < m; i++)
            *failed += res[i].status != NH_OK;
    }
    return nh_time_now() - t0;
}

static double run_cmd(const char *cmd)
{
    double t0 = nh_time_now();
    int rc = system(cmd);
    double t = nh_time_now() - t0;
    if (rc != 0)
        fprintf(stderr, "nhbench-decode: '%s' exited with %d\n", cmd, rc);
    return t;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nhbench-decode [--runs N] [--threads N] [--size N] FILE_OR_DIR...\n\n"
               "Decode throughput of nhash's compat and fast modes beside vipsthumbnail on the\n"
               "same files (median of N runs, images/s and source MP/s).\n\n"
               "  --runs N      timed runs per contender (default 5)\n"
               "  --threads N   decode workers (default: all cores)\n"
               "  --size N      target size N x N (default 360)\n"
               "  -h, --help    this help\n");
}

int main(int argc, char **argv)
{
    int runs = 5, threads = 0, size = 360;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    files = nh_bench_files(argv + i, (size_t)(argc - i), 0, 0, &nfiles);
    if (nfiles == 0 || runs < 1) {
        fprintf(stderr, "nhbench-decode: no image files given\n");
        return 2;
    }
    if (nh_decode_init(argv[0], NULL) != NH_OK)
        return 1;
    /* Source megapixels, from the headers. */
    double mp = 0;
    nh_decode_opts hdr;
    nh_decode_opts_default(&hdr);
    hdr.width = hdr.height = 8;
    hdr.mode = NH_DECODE_FAST;
    uint8_t tiny[8 * 8 * 3];
    for (size_t k = 0; k < nfiles; k++) {
        nh_decode_info info;
        if (nh_decode_file(files[k], &hdr, tiny, &info, NULL) == NH_OK)
            mp += (double)info.src_width * info.src_height / 1e6;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads <= 0)
        threads = (int)(ncpu > 0 ? ncpu : 1);

    char list[] = "/tmp/nhbench_decode_XXXXXX";
    int fd = mkstemp(list);
    FILE *lf = fdopen(fd, "w");
    for (size_t k = 0; k < nfiles; k++)
        fprintf(lf, "%s%c", files[k], 0);
    fclose(lf);
    char outdir[] = "/tmp/nhbench_vt_XXXXXX";
    if (!mkdtemp(outdir))
        return 1;
    char cmd1[8192], cmd2[8192];
    snprintf(cmd1, sizeof cmd1,
             "xargs -0 -n %zu vipsthumbnail -s %dx%d! -o '%s/%%s.v' < '%s' >/dev/null 2>&1",
             nfiles, size, size, outdir, list);
    snprintf(cmd2, sizeof cmd2,
             "xargs -0 -P %d -n %zu vipsthumbnail -s %dx%d! -o '%s/%%s.v' < '%s' >/dev/null 2>&1",
             threads, (nfiles + (size_t)threads - 1) / (size_t)threads, size, size, outdir, list);

    const char *names[] = {"nhash compat (Pillow-exact)", "nhash fast (shrink-on-load)",
                           "vipsthumbnail, 1 process", "vipsthumbnail, 1 process per core"};
    double med[4];
    size_t failed[2] = {0, 0};
    double *t = calloc((size_t)runs, sizeof *t);
    for (int c = 0; c < 4; c++) {
        for (int r = 0; r < runs + 1; r++) { /* first run warms the page cache, not counted */
            double dt;
            if (c < 2) {
                nh_decode_opts o;
                nh_decode_opts_default(&o);
                o.mode = c == 0 ? NH_DECODE_COMPAT : NH_DECODE_FAST;
                o.width = o.height = size;
                nh_decode_pool *pool = NULL;
                if (nh_decode_pool_create(&o, threads, &pool, NULL) != NH_OK)
                    return 1;
                size_t batch = (size_t)threads * 8;
                uint8_t *out = malloc(nh_decode_out_bytes(&o) * batch);
                nh_decode_result *res = calloc(batch, sizeof *res);
                dt = run_pool(pool, &o, out, res, batch, &failed[c]);
                free(out);
                free(res);
                nh_decode_pool_destroy(pool);
            } else {
                dt = run_cmd(c == 2 ? cmd1 : cmd2);
            }
            if (r > 0)
                t[r - 1] = dt;
        }
        med[c] = median(t, runs);
    }
    printf("nhbench-decode: %zu files, %.1f source MP, target %dx%d, %d threads, median of %d runs\n",
           nfiles, mp, size, size, threads, runs);
    printf("%-36s %10s %10s %10s %12s %12s\n", "contender", "seconds", "images/s", "MP/s",
           "vs vt 1proc", "vs vt P");
    for (int c = 0; c < 4; c++)
        printf("%-36s %10.3f %10.1f %10.1f %11.2fx %11.2fx\n", names[c], med[c],
               (double)nfiles / med[c], mp / med[c], med[2] / med[c], med[3] / med[c]);
    if (failed[0] || failed[1])
        printf("(files that failed to decode: compat %zu, fast %zu)\n", failed[0], failed[1]);
    char rm[512];
    snprintf(rm, sizeof rm, "rm -rf '%s' '%s'", outdir, list);
    if (system(rm) != 0)
        return 1;
    free(t);
    return 0;
}
