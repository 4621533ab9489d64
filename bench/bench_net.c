/*
 * nhbench-net: network-only throughput (no decoding) of the OpenCL runner and the C
 * reference at batch 1, 8 and 32, beside onnxruntime-node running the same ONNX model on the
 * same number of threads (scripts/net/bench_ort.js; needs `npm install` in scripts/net).
 * Prints images/s, achieved GFLOP/s (2 x multiply-adds) and ratios to onnxruntime.
 *
 *   nhbench-net [--model M.nhm] [--onnx M.onnx] [--threads N] [--runs N] [--batches 1,8,32]
 *               [--no-ref] [--no-ort]
 *
 * nhash's runners use --model (default models/nh_test.nhm); onnxruntime runs --onnx (default
 * models/nh_test.onnx, made offline by scripts/net/make_fixtures.py and not committed; its
 * weights are exactly the .nhm's binary16 values). Without the ONNX the onnxruntime column is
 * skipped.
 * The C reference is single-threaded; PoCL uses every core unless told otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nhash/net.h"

#ifndef NH_SOURCE_DIR
#define NH_SOURCE_DIR "."
#endif

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median seconds per run of a batch, after one warm-up run. */
static double time_runner(nh_runner *r, const uint8_t *rgb, size_t batch, float *out, int runs)
{
    nh_error err;
    nh_error_clear(&err);
    double t[64];
    if (runs > 64)
        runs = 64;
    if (nh_runner_run(r, rgb, batch, out, &err) != NH_OK) {
        char buf[2048];
        fprintf(stderr, "nhbench-net: %s\n", nh_error_format(&err, buf, sizeof buf));
        return -1.0;
    }
    for (int i = 0; i < runs; i++) {
        double t0 = nh_time_now();
        nh_runner_run(r, rgb, batch, out, &err);
        t[i] = nh_time_now() - t0;
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_double);
    return t[runs / 2];
}

static double time_ort(const char *onnx, size_t batch, int threads, int runs)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "node '%s/scripts/net/bench_ort.js' '%s' %zu %d %d 2>/dev/null",
             NH_SOURCE_DIR, onnx, batch, threads, runs);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1.0;
    char line[512] = {0};
    double sec = -1.0;
    if (fgets(line, sizeof line, p)) {
        const char *s = strstr(line, "\"seconds\":");
        if (s)
            sec = strtod(s + 10, NULL);
    }
    if (pclose(p) != 0)
        sec = -1.0;
    return sec;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nhbench-net [--model M.nhm] [--onnx M.onnx] [--threads N] [--runs N] "
            "[--batches 1,8,32] [--no-ref] [--no-ort]\n\n"
            "Network-only images/s of the OpenCL runner and the C reference beside\n"
            "onnxruntime-node on the same model and thread count.\n\n"
            "  --model M.nhm     nhash's model (default models/nh_test.nhm)\n"
            "  --onnx M.onnx     onnxruntime's model (default models/nh_test.onnx; skipped when\n"
            "                    missing)\n"
            "  --threads N       threads for onnxruntime and PoCL (default 2)\n"
            "  --runs N          timed runs (default 5)\n"
            "  --batches LIST    batch sizes, comma-separated, up to 8 (default 1,8,32)\n"
            "  --no-ref          skip the C reference\n"
            "  --no-ort          skip onnxruntime\n"
            "  -h, --help        this help\n");
}

int main(int argc, char **argv)
{
    const char *onnx = NH_SOURCE_DIR "/models/nh_test.onnx";
    const char *model = NH_SOURCE_DIR "/models/nh_test.nhm";
    int threads = 2, runs = 5, do_ref = 1, do_ort = 1, ort_seen = 0;
    size_t batches[8] = {1, 8, 32}, nb = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--onnx") && i + 1 < argc)
            onnx = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batches") && i + 1 < argc) {
            nb = 0;
            for (char *s = argv[++i]; *s && nb < 8;) {
                batches[nb++] = strtoul(s, &s, 10);
                if (*s == ',')
                    s++;
            }
        } else if (!strcmp(argv[i], "--no-ref"))
            do_ref = 0;
        else if (!strcmp(argv[i], "--no-ort"))
            do_ort = 0;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (runs < 1 || threads < 1 || nb == 0)
        return 2;
    nh_error err;
    nh_error_clear(&err);
    char buf[2048];
    size_t maxb = 0;
    nh_model *m = NULL;
    nh_cl *cl = NULL;
    if (nh_model_load(model, &m, &err) != NH_OK || nh_cl_create(NULL, NULL, &cl, &err) != NH_OK) {
        fprintf(stderr, "nhbench-net: %s\n", nh_error_format(&err, buf, sizeof buf));
        return 1;
    }
    FILE *of = fopen(onnx, "rb");
    if (of)
        fclose(of);
    else if (do_ort) {
        printf("(no %s: onnxruntime column skipped; run scripts/net/make_fixtures.py)\n", onnx);
        do_ort = 0;
    }
    for (size_t i = 0; i < nb; i++)
        maxb = batches[i] > maxb ? batches[i] : maxb;
    size_t img = (size_t)m->in_h * m->in_w * 3;
    uint8_t *rgb = malloc(img * maxb);
    float *out = malloc(sizeof(float) * m->out_dim * maxb);
    if (!rgb || !out)
        return 1;
    uint32_t s = 12345;
    for (size_t i = 0; i < img * maxb; i++) {
        s = s * 1103515245u + 12345u;
        rgb[i] = (uint8_t)(s >> 16);
    }
    double flops = 2.0 * (double)nh_model_macs(m);
    const nh_cl_device_info *di = nh_cl_info(cl);
    printf("nhbench-net: %s, %.1f MFLOP per image (2 x multiply-adds), median of %d runs\n", model,
           flops / 1e6, runs);
    printf("OpenCL device: %s (%s, %u compute units); C reference: 1 thread; onnxruntime-node: "
           "%d intra-op threads\n",
           di->device_name, di->platform_name, di->compute_units, threads);
    printf("%6s | %12s %8s | %12s %8s | %12s %8s | %10s %10s\n", "batch", "opencl img/s", "GFLOP/s",
           "ref img/s", "GFLOP/s", "ort img/s", "GFLOP/s", "cl/ort", "ref/ort");
    for (size_t i = 0; i < nb; i++) {
        size_t b = batches[i];
        nh_runner_opts o = {b, cl};
        nh_runner *rc = NULL, *rr = NULL;
        double tc = -1, tr = -1, to = -1;
        if (nh_runner_create(&nh_runner_cl, m, &o, &rc, &err) == NH_OK)
            tc = time_runner(rc, rgb, b, out, runs);
        else
            fprintf(stderr, "nhbench-net: %s\n", nh_error_format(&err, buf, sizeof buf));
        nh_runner_destroy(rc);
        if (do_ref && nh_runner_create(&nh_runner_ref, m, &o, &rr, &err) == NH_OK)
            tr = time_runner(rr, rgb, b, out, b >= 8 ? 1 : runs);
        nh_runner_destroy(rr);
        if (do_ort)
            to = time_ort(onnx, b, threads, runs);
        ort_seen |= to > 0;
        double ic = tc > 0 ? b / tc : 0, ir = tr > 0 ? b / tr : 0, io = to > 0 ? b / to : 0;
        printf("%6zu | %12.2f %8.2f | %12.2f %8.2f | %12.2f %8.2f | %10.2f %10.2f\n", b, ic,
               ic * flops / 1e9, ir, ir * flops / 1e9, io, io * flops / 1e9, io > 0 ? ic / io : 0,
               io > 0 ? ir / io : 0);
        fflush(stdout);
    }
    if (do_ort && !ort_seen)
        printf("(ort columns 0: onnxruntime-node not installed; run npm install in scripts/net)\n");
    free(rgb);
    free(out);
    nh_cl_destroy(cl);
    nh_model_destroy(m);
    return 0;
}
